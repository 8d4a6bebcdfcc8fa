"""Weighted rewards over per-slot responses."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsim_env.env.rewards import RewardWeights, WeightedReward
from recsim_env.errors import ConfigError
from recsim_env.protocols import Responses


def _responses() -> Responses:
    click = np.array([[0, 1, 0], [0, 0, 0]], dtype=np.float32)
    return Responses(np.array([1, -1]), click, click * 4, click, click * 30)


def test_default_reward_counts_clicks():
    np.testing.assert_array_equal(WeightedReward()(_responses()), [1.0, 0.0])


def test_weights_mix_every_response():
    reward = WeightedReward(RewardWeights(click=1, like=2, rating=0.5, dwell=0.1))(_responses())
    assert reward.dtype == np.float32
    np.testing.assert_allclose(reward, [1 + 2 + 2 + 3, 0.0])


def test_all_zero_weights_give_zero_reward():
    np.testing.assert_array_equal(WeightedReward(RewardWeights(click=0))(_responses()), [0, 0])


@pytest.mark.parametrize("field, value", [("click", float("inf")), ("like", "1"), ("dwell", True)])
def test_bad_weights_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"RewardWeights.{field}"):
        RewardWeights(**{field: value})


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.integers(1, 5),
       st.tuples(*[st.floats(-3, 3, allow_nan=False)] * 4))
def test_per_slot_rewards_sum_to_the_slate_reward(seed, n, k, w):
    rng = np.random.default_rng(seed)
    choice = rng.integers(-1, k, n)
    click = np.zeros((n, k), dtype=np.float32)
    rows = np.flatnonzero(choice >= 0)
    click[rows, choice[rows]] = 1.0
    rating = click * rng.integers(1, 6, (n, k)).astype(np.float32)
    responses = Responses(
        choice, click, rating, (rating >= 4).astype(np.float32), click * rng.random((n, k)).astype(np.float32)
    )
    fn = WeightedReward(RewardWeights(*w))
    per_slot = fn.per_slot(responses)
    assert per_slot.shape == (n, k) and per_slot.dtype == np.float32
    np.testing.assert_allclose(per_slot.sum(axis=1), fn(responses), rtol=1e-5, atol=1e-5)
    # The same from a step's info dict (what the single-item views read).
    info = {"click": click, "like": responses.like, "rating": rating, "dwell": responses.dwell}
    np.testing.assert_array_equal(fn.per_slot(info), per_slot)
    assert (per_slot[click == 0] == 0).all()  # only the chosen slot earns
