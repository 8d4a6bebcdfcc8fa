"""The `random` baseline as an env policy: cold users get a fresh, seeded draw per observation."""

from __future__ import annotations

import numpy as np
import pytest
from tinylog import make_tiny_log

from baselines.popularity import Popularity, RandomConfig, RandomScores
from recsim_env.data.splits import leave_one_out

N_ITEMS = 80


@pytest.fixture(scope="module")
def split():
    return leave_one_out(make_tiny_log(n_users=30, n_items=N_ITEMS, per_user=12, seed=3))


def _observations(user: int, n: int, fixed_candidates: bool, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``n`` observations of one user with an empty history; only candidates and context vary."""
    rng = np.random.default_rng(seed)
    fixed = rng.choice(N_ITEMS, 20, replace=False)
    return [{"user_index": np.array([user]), "history_items": np.full(5, -1),
             "history_responses": np.zeros((5, 3), np.float32),
             "candidates": fixed if fixed_candidates else rng.choice(N_ITEMS, 20, replace=False),
             "context": np.array([step / n, 0.5, 0.0, 1.0], np.float32)} for step in range(n)]


def _slates(model, observations) -> list[tuple[int, ...]]:
    return [tuple(model.predict(obs)[0].tolist()) for obs in observations]


def test_cold_user_without_history_is_not_served_popularitys_slate(split):
    observations = _observations(-1, 200, fixed_candidates=False)
    random = _slates(RandomScores(RandomConfig(seed=0), slate_size=4).fit(split), observations)
    popular = _slates(Popularity(slate_size=4).fit(split), observations)
    assert sum(r == p for r, p in zip(random, popular)) < 5  # was 200 of 200


def test_cold_slates_are_drawn_afresh_per_observation_even_over_the_same_candidates(split):
    slates = _slates(RandomScores(RandomConfig(seed=0), slate_size=4).fit(split),
                     _observations(-1, 200, fixed_candidates=True))
    assert len(set(slates)) > 150  # 20 * 19 * 18 * 17 orderings: repeats are rare
    first_slot = np.bincount([s[0] for s in slates], minlength=20)
    assert first_slot.min() > 0  # every candidate leads some slate: no fixed ranking


def test_random_slates_are_reproducible_from_the_seed(split):
    observations = _observations(-1, 50, fixed_candidates=False)
    first = _slates(RandomScores(RandomConfig(seed=7), slate_size=4).fit(split), observations)
    model = RandomScores(RandomConfig(seed=7), slate_size=4).fit(split)
    assert _slates(model, observations[::-1])[::-1] == first  # order of calls does not matter
    assert _slates(RandomScores(RandomConfig(seed=8), slate_size=4).fit(split), observations) != first
