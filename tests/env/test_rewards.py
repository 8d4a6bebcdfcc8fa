"""Weighted rewards over per-slot responses."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_env.errors import ConfigError
from recsim_env.protocols import Responses
from recsim_env.rewards import RewardWeights, WeightedReward


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
