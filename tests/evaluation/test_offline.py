"""The offline protocols against scorers whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_env.data.splits import leave_one_out, seen_items
from recsim_env.errors import ConfigError, DataError
from recsim_env.evaluation.offline import (
    SampledRanking,
    full_ranking,
    item_cold_start,
    ncf_protocol,
    ranks_of_first,
)


class Oracle:
    """Scores the held-out item of each user highest: every protocol must give it a perfect score."""

    def __init__(self, positives: dict[int, int]):
        self.positives = positives

    def score(self, users, items):
        return np.array([[1.0 if i == self.positives[u] else 0.0 for i in row] for u, row in zip(users, items)])


class Constant:
    def score(self, users, items):
        return np.zeros(np.shape(items))


def _positives(part):
    return dict(zip(part.interactions["user"].tolist(), part.interactions["item"].tolist()))


def test_ranks_of_first_counts_greater_and_breaks_ties_inside_the_tie():
    scores = np.array([[0.5, 0.9, 0.1, 0.7], [1.0, 0.0, 0.0, 0.0], [0.2, 0.2, 0.2, 0.0]])
    ranks = ranks_of_first(scores, np.random.default_rng(0))
    assert ranks[0] == 2 and ranks[1] == 0 and 0 <= ranks[2] <= 2


def test_ncf_protocol_negatives_avoid_seen_items_and_oracle_is_perfect(tiny_log):
    split = leave_one_out(tiny_log)
    seen = seen_items(tiny_log)
    ranking = SampledRanking.build(split.test, seen, n_negatives=30, seed=3)
    assert ranking.candidates.shape == (tiny_log.n_users, 31)
    for u, row in zip(ranking.users, ranking.candidates):
        assert not set(row[1:].tolist()) & seen[u] and len(set(row[1:].tolist())) == 30
    assert ranking.evaluate(Oracle(_positives(split.test))) == {"HR@10": 1.0, "NDCG@10": 1.0}
    again = SampledRanking.build(split.test, seen, n_negatives=30, seed=3)
    np.testing.assert_array_equal(again.candidates, ranking.candidates)


def test_constant_scorer_lands_at_chance_not_at_the_top(tiny_log):
    split = leave_one_out(tiny_log)
    result = SampledRanking.build(split.test, seen_items(tiny_log), 40, seed=0).evaluate(Constant())
    assert 0.05 < result["HR@10"] < 0.5  # chance is 10 / 41


def test_ncf_protocol_refuses_catalogues_too_small(tiny_log):
    split = leave_one_out(tiny_log)
    with pytest.raises(DataError, match="fewer than the 99 negatives"):
        ncf_protocol(split.train, split.test, tiny_log, Constant())


def test_full_ranking_oracle_and_known_coverage(tiny_log):
    split = leave_one_out(tiny_log)
    result = full_ranking(Oracle(_positives(split.test)), split.train, split.test, k=10)
    assert result["HR@10"] == result["Recall@10"] == result["NDCG@10"] == result["MRR@10"] == 1.0
    assert 0 < result["coverage"] <= 1.0
    constant = full_ranking(Constant(), split.train, split.test, k=10, seed=1)
    assert constant["HR@10"] == constant["Recall@10"]  # one tie-break order serves both
    with pytest.raises(ConfigError, match="k=99"):
        full_ranking(Constant(), split.train, split.test, k=99)


def test_item_cold_start_keeps_held_out_items_out_of_training(tiny_log):
    train, ranking = item_cold_start(tiny_log, held_out_fraction=0.5, n_negatives=5, seed=0)
    cold = np.unique(ranking.candidates)
    assert not np.isin(train.interactions["item"].to_numpy(), cold).any()
    assert train.n_items == tiny_log.n_items and ranking.candidates.shape[1] == 6
    with pytest.raises(ConfigError, match="held_out_fraction"):
        item_cold_start(tiny_log, held_out_fraction=1.0)


class NaNScorer:
    """A model that emits NaN: its ranks mean nothing and must not be reported."""

    def score(self, users, items):
        return np.full(np.shape(items), np.nan)


def test_ranks_of_first_refuses_nan_scores():
    with pytest.raises(DataError, match=r"scores row 0 column 0 is NaN"):
        ranks_of_first(np.array([[np.nan, 1.0, 2.0, 3.0]]), np.random.default_rng(0))


def test_protocols_refuse_a_model_that_emits_nan_naming_it(tiny_log):
    split = leave_one_out(tiny_log)
    ranking = SampledRanking.build(split.test, seen_items(tiny_log), n_negatives=30, seed=0)
    with pytest.raises(DataError, match=r"NaNScorer\.score returned NaN for user \d+ \(item \d+\)"):
        ranking.evaluate(NaNScorer())
    with pytest.raises(DataError, match=r"NaNScorer\.score returned NaN for user \d+ \(item \d+\)"):
        full_ranking(NaNScorer(), split.train, split.test, k=10)


def test_infinite_scores_still_rank():
    ranks = ranks_of_first(np.array([[np.inf, 1.0, -np.inf], [-np.inf, 0.0, 1.0]]), np.random.default_rng(0))
    assert ranks.tolist() == [0, 2]
