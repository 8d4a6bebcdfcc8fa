"""Splits never leak the future into training; negatives are seeded, unseen and distinct."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import (
    leave_one_out,
    sample_negatives,
    seen_items,
    temporal_split,
)
from recsim_env.errors import ConfigError, DataError


def random_log(rows: list[tuple[int, int, int]]) -> InteractionLog:
    inter = pd.DataFrame({"user_id": [f"u{u}" for u, _, _ in rows], "item_id": [f"i{i}" for _, i, _ in rows],
                          "timestamp": [t for _, _, t in rows]})
    return InteractionLog.from_frames(inter, on_duplicates="drop")


def per_user_times(data: InteractionLog) -> dict[int, np.ndarray]:
    inter = data.interactions
    return {int(u): g["timestamp"].to_numpy() for u, g in inter.groupby("user")}


def test_leave_one_out_sizes_and_last_two_interactions(tiny_log):
    split = leave_one_out(tiny_log)
    assert (split.test.n_interactions, split.valid.n_interactions, split.train.n_interactions) == (40, 40, 40 * 13)
    last = tiny_log.interactions.groupby("user").tail(1)
    assert split.test.interactions[["user", "item"]].values.tolist() == last[["user", "item"]].values.tolist()
    assert split.train.n_items == tiny_log.n_items and split.train.n_users == tiny_log.n_users


def test_users_with_fewer_than_three_interactions_stay_in_training():
    data = random_log([(0, 1, 10), (0, 2, 20), (1, 1, 5), (1, 2, 6), (1, 3, 7)])
    split = leave_one_out(data)
    assert split.train.interactions["user"].tolist().count(0) == 2
    assert split.test.interactions["user"].tolist() == [1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30), st.integers(0, 50)), min_size=1, max_size=80))
def test_leave_one_out_never_trains_on_the_future(rows):
    data = random_log(rows)
    split = leave_one_out(data)
    train, valid, test = (per_user_times(s) for s in (split.train, split.valid, split.test))
    assert split.train.n_interactions + split.valid.n_interactions + split.test.n_interactions == data.n_interactions
    for user, t_test in test.items():
        assert len(t_test) == 1 and len(valid[user]) == 1
        assert valid[user][0] <= t_test[0]
        assert user not in train or train[user].max() <= valid[user][0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30), st.integers(0, 50)), min_size=2, max_size=80),
       st.floats(0.05, 0.95))
def test_temporal_split_puts_every_earlier_interaction_before_every_later_one(rows, fraction):
    data = random_log(rows)
    ts = data.interactions["timestamp"].to_numpy()
    if len(np.unique(ts)) < 2:
        with pytest.raises(DataError, match="leaves one side empty"):
            temporal_split(data, fraction)
        return
    try:
        early, later = temporal_split(data, fraction)
    except DataError:  # the cut-off falls on the earliest time: nothing is strictly before it
        assert np.quantile(ts, fraction, method="lower") == ts.min()
        return
    assert early.interactions["timestamp"].max() < later.interactions["timestamp"].min()
    assert early.n_interactions + later.n_interactions == data.n_interactions


def test_temporal_split_cut_is_near_the_fraction(tiny_log):
    early, later = temporal_split(tiny_log, 0.8)
    assert early.n_interactions / tiny_log.n_interactions == pytest.approx(0.8, abs=0.02)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_temporal_split_refuses_fractions_outside_zero_one(tiny_log, fraction):
    with pytest.raises(ConfigError, match=f"train_fraction must be in \\(0, 1\\), got {fraction}"):
        temporal_split(tiny_log, fraction)


def test_negatives_are_seeded_unseen_and_distinct(tiny_log):
    seen = seen_items(tiny_log)
    users = np.repeat(np.arange(tiny_log.n_users), 2)
    first = sample_negatives(users, seen, tiny_log.n_items, 30, np.random.default_rng(7))
    again = sample_negatives(users, seen, tiny_log.n_items, 30, np.random.default_rng(7))
    other = sample_negatives(users, seen, tiny_log.n_items, 30, np.random.default_rng(8))
    assert first.shape == (80, 30) and first.dtype == np.int64
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    for row, u in zip(first, users):
        assert len(set(row.tolist())) == 30
        assert not set(row.tolist()) & seen[u]
        assert row.min() >= 0 and row.max() < tiny_log.n_items


def test_negatives_refuse_users_without_enough_unseen_items(tiny_log):
    seen = seen_items(tiny_log)
    with pytest.raises(DataError, match=r"user index 3 has only 45 unseen items, fewer than the 46"):
        sample_negatives(np.array([3]), seen, tiny_log.n_items, 46, np.random.default_rng(0))
