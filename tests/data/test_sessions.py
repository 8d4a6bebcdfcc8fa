"""Sessions: hand-computed cases, the threshold edge, and invariants over random logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
from recsim_env.data.sessions import session_lengths, sessionize, summarize_sessions
from recsim_env.errors import ConfigError, DataError


def log_of(users: list[str], times: list[int], mapping: ColumnMapping | None = None) -> InteractionLog:
    inter = pd.DataFrame({"user_id": users, "item_id": [f"i{k}" for k in range(len(users))], "timestamp": times})
    return InteractionLog.from_frames(inter, mapping=mapping)


def test_gaps_at_or_over_the_threshold_start_a_new_session():
    data = log_of(["a"] * 5 + ["b"] * 2, [0, 100, 1900, 3699, 10_000, 50, 60])
    # a: 0, 100 | 1900 (gap 1800 == threshold) , 3699 (gap 1799) | 10000 ; b starts its own session
    assert sessionize(data).tolist() == [0, 0, 1, 1, 2, 3, 3]
    assert session_lengths(data).tolist() == [2, 2, 1, 2]
    assert session_lengths(data, gap_seconds=1801).tolist() == [4, 1, 2]


def test_summary_counts_mean_median_p90_max():
    data = log_of(["a"] * 5 + ["b"] * 2, [0, 100, 1900, 3699, 10_000, 50, 60])
    s = summarize_sessions(data)
    assert (s.count, s.mean, s.median, s.max, s.gap_seconds) == (4, 1.75, 2.0, 2, 1800.0)
    assert s.p90 == pytest.approx(2.0)
    assert s.as_dict()["count"] == 4


def test_logs_without_timestamps_are_one_session_per_user():
    data = log_of(["a", "a", "b", "a"], [0, 0, 0, 0], mapping=ColumnMapping(timestamp=None))
    assert session_lengths(data).tolist() == [3, 1]


@pytest.mark.parametrize("gap", [0, -5, float("nan"), "30m", True])
def test_bad_gap_is_a_config_error_naming_it(tiny_log, gap):
    with pytest.raises(ConfigError, match="gap_seconds must be a positive finite number"):
        sessionize(tiny_log, gap)


def test_unsorted_interactions_are_refused(tiny_log):
    shuffled = InteractionLog(tiny_log.interactions.iloc[::-1].reset_index(drop=True), tiny_log.items, tiny_log.users,
                              "shuffled")
    with pytest.raises(DataError, match="shuffled: interactions are not sorted by user, then timestamp"):
        sessionize(shuffled)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 20_000)), min_size=1, max_size=60),
       st.integers(1, 5000))
def test_sessions_partition_each_users_timeline(rows, gap):
    data = log_of([f"u{u}" for u, _ in rows], [t for _, t in rows])
    ids = sessionize(data, gap)
    users = data.interactions["user"].to_numpy()
    times = data.interactions["timestamp"].to_numpy()
    assert session_lengths(data, gap).sum() == len(rows)
    assert np.all(np.diff(ids) >= 0) and ids[0] == 0 and np.all(np.diff(ids) <= 1)
    same_session = ids[1:] == ids[:-1]
    assert np.all(users[1:][same_session] == users[:-1][same_session])  # a session never spans users
    assert np.all(np.diff(times)[same_session] < gap)
    new_same_user = ~same_session & (users[1:] == users[:-1])
    assert np.all(np.diff(times)[new_same_user] >= gap)
