"""Candidate generators: distinct items per row, the documented inclusion probabilities, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_env.env.candidates import (
    UniformCandidates,
    WeightedCandidates,
    inclusion_probabilities,
    make_candidate_generator,
    popularity_candidates,
)
from recsim_env.errors import ConfigError


def _distinct_rows(x: np.ndarray) -> bool:
    s = np.sort(x, axis=1)
    return bool((s[:, 1:] != s[:, :-1]).all())


@pytest.mark.parametrize("n_items, c", [(1682, 100), (7, 7), (10, 1), (97, 50)])
def test_uniform_rows_are_distinct_and_every_item_equally_likely(n_items, c, rng):
    gen = UniformCandidates(n_items, c)
    x = gen(20_000, rng)
    assert x.shape == (20_000, c) and x.dtype == np.int64
    assert x.min() >= 0 and x.max() < n_items and _distinct_rows(x)
    freq = np.bincount(x.ravel(), minlength=n_items) / 20_000
    np.testing.assert_allclose(freq, c / n_items, atol=0.015)


def test_uniform_is_seeded_by_the_rng():
    gen = UniformCandidates(100, 10)
    a = gen(5, np.random.default_rng(3))
    np.testing.assert_array_equal(a, gen(5, np.random.default_rng(3)))
    assert not np.array_equal(a, gen(5, np.random.default_rng(4)))


def test_weighted_inclusion_probabilities_are_exact_and_capped(rng):
    weights = np.array([50.0, 1, 1, 1, 2, 2, 3, 0, 5, 1])
    pi = inclusion_probabilities(weights, 4)
    assert pi.sum() == pytest.approx(4) and pi.max() == pytest.approx(1.0) and pi[7] == 0
    gen = WeightedCandidates(weights, 4)
    x = gen(40_000, rng)
    assert _distinct_rows(x)
    np.testing.assert_allclose(np.bincount(x.ravel(), minlength=10) / 40_000, pi, atol=0.01)


def test_popularity_mix_blends_with_uniform(rng):
    popularity = np.r_[np.ones(5) * 10, np.ones(45)]
    only_pop = popularity_candidates(popularity, 5, popularity_share=1.0)
    mixed = popularity_candidates(popularity, 5, popularity_share=0.0)
    assert only_pop.inclusion[:5].mean() > 2 * only_pop.inclusion[5:].mean()
    np.testing.assert_allclose(mixed.inclusion, 0.1)


def test_make_candidate_generator_validates(rng):
    assert isinstance(make_candidate_generator("uniform", 20, 5), UniformCandidates)
    with pytest.raises(ConfigError, match="candidates must be one of"):
        make_candidate_generator("bogus", 20, 5)
    with pytest.raises(ConfigError, match="needs item popularity"):
        make_candidate_generator("popularity", 20, 5)
    with pytest.raises(ConfigError, match="n_candidates must be in"):
        UniformCandidates(5, 6)
    with pytest.raises(ConfigError, match="finite, >= 0"):
        WeightedCandidates(np.array([1.0, -1.0, 2.0]), 1)


def test_uniform_reaches_every_window_start_and_ordering():
    """Every (ordering, start) window is drawn, the last ordering's and start's included."""
    gen = UniformCandidates(13, 4, n_orderings=3)
    rows = {tuple(r) for r in gen(20_000, np.random.default_rng(0))}
    assert len(rows) == 3 * 13
