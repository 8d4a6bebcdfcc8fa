"""Known answers for every metric, computed by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsim_env.errors import ConfigError
from recsim_env.evaluation import metrics


def test_hit_rate_ndcg_mrr_known_answers():
    ranks = [0, 1, 4, 10]  # k=5: hits at ranks 0, 1, 4; rank 10 misses
    assert metrics.hit_rate_at_k(ranks, 5) == pytest.approx(3 / 4)
    # NDCG: 1/log2(2) + 1/log2(3) + 1/log2(6), over 4 users
    assert metrics.ndcg_at_k(ranks, 5) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 4)
    assert metrics.mrr_at_k(ranks, 5) == pytest.approx((1 + 1 / 2 + 1 / 5) / 4)
    assert metrics.hit_rate_at_k(ranks, 11) == 1.0
    assert metrics.ndcg_at_k([0], 10) == 1.0


def test_per_user_values_when_not_reduced():
    values = metrics.ndcg_at_k([0, 2, 20], 10, reduce=False)
    np.testing.assert_allclose(values, [1.0, 0.5, 0.0])


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_bad_k_is_refused(k):
    with pytest.raises(ConfigError, match="k must be"):
        metrics.hit_rate_at_k([0], k)


def test_negative_rank_is_refused():
    with pytest.raises(ConfigError, match="0-based"):
        metrics.ndcg_at_k([-1, 0], 10)


def test_recall_counts_relevant_items_in_top_k():
    recommended = np.array([[1, 2, 3], [4, 5, 6]])
    relevant = [{1, 9}, {6}]
    # user 0: 1 of 2 relevant in the top 2; user 1: 0 of 1 in the top 2
    assert metrics.recall_at_k(recommended, relevant, 2) == pytest.approx((0.5 + 0.0) / 2)
    assert metrics.recall_at_k(recommended, relevant, 3) == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ConfigError, match="at least 4"):
        metrics.recall_at_k(recommended, relevant, 4)


def test_auc_known_answer_with_ties():
    # pairs: (3 vs 1) win, (3 vs 2) win, (2 vs 1) win, (2 vs 2) tie -> (3 + 0.5) / 4
    assert metrics.auc([3, 2], [1, 2]) == pytest.approx(3.5 / 4)
    assert metrics.auc([1], [2]) == 0.0


def test_expected_calibration_error_known_answer():
    probs = [0.1, 0.1, 0.9, 0.9]
    outcomes = [0, 1, 1, 1]
    # bin [0.1, 0.2): mean p 0.1, mean y 0.5; bin [0.9, 1.0]: mean p 0.9, mean y 1.0
    ece, bins = metrics.expected_calibration_error(probs, outcomes, n_bins=10)
    assert ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert bins["count"].sum() == 4
    assert list(bins.columns) == ["low", "high", "count", "mean_prob", "mean_outcome"]
    perfect, _ = metrics.expected_calibration_error([1.0, 0.0], [1, 0], n_bins=5)
    assert perfect == 0.0


def test_ece_refuses_probabilities_outside_unit_interval():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        metrics.expected_calibration_error([1.5], [1])


def test_ks_statistic_known_answers():
    assert metrics.ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert metrics.ks_statistic([0, 0], [1, 1]) == 1.0
    # CDFs of {1,2} and {2,3}: at x=1 they are 0.5 and 0 -> gap 0.5
    assert metrics.ks_statistic([1, 2], [2, 3]) == pytest.approx(0.5)


def test_coverage_diversity_novelty_known_answers():
    slates = np.array([[0, 1], [1, -1]])
    assert metrics.catalog_coverage(slates, 4) == 0.5
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    # slate [0, 1]: orthogonal -> distance 1; slate [1] has one item and is skipped
    assert metrics.intra_list_diversity(slates, feats) == pytest.approx(1.0)
    assert metrics.intra_list_diversity(np.array([[0, 2]]), feats) == pytest.approx(1 - 1 / math.sqrt(2))
    pop = np.array([0.5, 0.25, 0.25, 0.0])
    # shown items 0, 1, 1 -> -log2(0.5) = 1, -log2(0.25) = 2 twice
    assert metrics.novelty(slates, pop) == pytest.approx((1 + 2 + 2) / 3)
    with pytest.raises(ConfigError, match="outside the catalogue"):
        metrics.catalog_coverage(np.array([[5]]), 4)


def test_mean_confidence_interval_matches_t_interval():
    mean, low, high = metrics.mean_confidence_interval([1.0, 2.0, 3.0])
    # sem = 1 / sqrt(3); t(0.975, 2) = 4.302653
    half = 4.302653 / math.sqrt(3)
    assert mean == 2.0
    assert low == pytest.approx(2.0 - half, rel=1e-5)
    assert high == pytest.approx(2.0 + half, rel=1e-5)
    assert metrics.mean_confidence_interval([4.0]) == (4.0, 4.0, 4.0)


@given(st.lists(st.integers(0, 200), min_size=1, max_size=50), st.integers(1, 50))
def test_ranking_metrics_are_ordered_and_bounded(ranks, k):
    hr, ndcg, mrr = metrics.hit_rate_at_k(ranks, k), metrics.ndcg_at_k(ranks, k), metrics.mrr_at_k(ranks, k)
    assert 0.0 <= mrr <= ndcg <= hr <= 1.0


def test_ece_bins_follow_floor_of_p_times_n_bins_at_exact_edges():
    # floor(0.3 * 10) = floor(0.35 * 10) = 3: one bin, mean p 0.325, mean y 0.5 -> |0.5 - 0.325| = 0.175
    ece, bins = metrics.expected_calibration_error([0.3, 0.35], [1, 0], 10)
    assert ece == pytest.approx(0.175)
    assert bins["count"].tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]
    # 0.2, 0.4, 0.6, 0.8 each open their own bin (2, 4, 6, 8); 1.0 falls in the last, closed bin
    _, edges = metrics.expected_calibration_error([0.2, 0.4, 0.6, 0.8, 1.0], [0, 0, 1, 1, 1], 10)
    assert np.flatnonzero(edges["count"].to_numpy()).tolist() == [2, 4, 6, 8, 9]


def test_novelty_floors_only_unseen_items_and_never_below_the_rarest_seen_one():
    # 64 interactions: item 1 seen once, share 1/64 (6 bits) though 1/64 < 1/(10 * 4); items 2 and 3 unseen
    pop = np.array([63, 1, 0, 0])
    assert metrics.novelty(np.array([[1]]), pop) == pytest.approx(6.0)
    # an unseen item is as novel as the rarest seen one, not less: min(1/40, 1/64) -> 6 bits
    assert metrics.novelty(np.array([[2]]), pop) == pytest.approx(6.0)
    # when every seen share is above 1/(10 n), unseen items get 1/40 -> log2(40) bits
    assert metrics.novelty(np.array([[3, 0]]), np.array([1, 1, 0, 0])) == pytest.approx((math.log2(40) + 1) / 2)


def test_personalization_known_answer_three_users_two_steps():
    slates = np.array([
        [[1, 2], [2, 3], [1, 2]],    # step 0, all three in session
        [[4, -1], [-1, 4], [4, 9]],  # step 1: user 2 has left (its slate must not count)
    ])
    active = np.array([[True, True, True], [True, True, False]])
    # Step 0, k = 2: pairs (0,1) share {2} -> 1/2, (0,2) share {1,2} -> 1, (1,2) share {2} -> 1/2; mean 2/3.
    # Step 1: only (0,1): they share {4}; the two empty slots are not a shared item -> 1/2.
    np.testing.assert_allclose(metrics.slate_overlap_by_step(slates, active), [2 / 3, 1 / 2])
    # Steps weigh alike: 1 - (2/3 + 1/2) / 2 = 5/12.
    assert metrics.personalization(slates, active) == pytest.approx(5 / 12)


def test_personalization_extremes_repeats_and_lone_steps():
    same = np.tile(np.array([3, 1, 2]), (4, 5, 1))  # 4 steps, 5 users, one slate for all
    assert metrics.personalization(same) == 0.0
    disjoint = np.arange(12).reshape(1, 4, 3)
    assert metrics.personalization(disjoint) == 1.0
    # A slate repeating an item shows it once: [5, 5] and [5, 6] share one item of two slots.
    assert metrics.personalization(np.array([[[5, 5], [5, 6]]])) == pytest.approx(1 / 2)
    lone = np.array([[[1, 2], [1, 2]], [[1, 2], [1, 2]]])
    assert metrics.personalization(lone) == 0.0
    # One user in session per step: no pair to compare, no value (not a perfect 1).
    assert math.isnan(metrics.personalization(lone, np.array([[True, False], [False, True]])))


@pytest.mark.parametrize("slates, active, match", [
    (np.zeros((2, 3), dtype=int), None, r"3-D \(steps, users, k\) integer array"),
    (np.zeros((2, 3, 2)), None, "integer array"),
    (np.zeros((2, 3, 2), dtype=int), np.ones((3, 2), dtype=bool), r"active must be \(steps, users\)"),
])
def test_personalization_refuses_bad_shapes(slates, active, match):
    with pytest.raises(ConfigError, match=match):
        metrics.personalization(slates, active)
