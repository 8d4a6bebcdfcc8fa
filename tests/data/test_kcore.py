"""k-core filtering: a known answer that needs several rounds, bounds, and the k-core's defining property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from datafiles import write_ml100k
from hypothesis import given, settings
from hypothesis import strategies as st

from recsim_env.data.filters import kcore, kcore_mask
from recsim_env.data.loaders import load_dataset
from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
from recsim_env.errors import ConfigError, DataError

# A chain that unravels from its end: u4 has one interaction; dropping it leaves i3 with one, which
# leaves u3 with one, then i2, then u2 -- five rounds until only u0, u1 x i0, i1 remain (each 2).
CHAIN = [("u0", "i0"), ("u0", "i1"), ("u1", "i0"), ("u1", "i1"), ("u2", "i1"), ("u2", "i2"), ("u3", "i2"),
         ("u3", "i3"), ("u4", "i3")]


def chain_log() -> InteractionLog:
    users, items = zip(*CHAIN)
    frame = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": np.arange(len(CHAIN)) * 10,
                          "rating": np.arange(len(CHAIN), dtype=float)})
    titles = pd.DataFrame({"item_id": ["i3", "i2", "i1", "i0"], "title": ["three", "two", "one", "zero"]})
    return InteractionLog.from_frames(frame, titles, mapping=ColumnMapping(rating="rating", title="title"))


def test_the_chain_needs_five_rounds_and_leaves_the_two_by_two_core():
    data = chain_log()
    keep, rounds = kcore_mask(data.interactions["user"].to_numpy(), data.interactions["item"].to_numpy(), 2, 2)
    assert rounds == 5 and keep.sum() == 4
    core = kcore(data, min_user_interactions=2, min_item_interactions=2)
    assert core.meta["kcore"] == {"min_user_interactions": 2, "min_item_interactions": 2}
    assert list(core.user_ids) == ["u0", "u1"]
    assert list(core.item_ids) == ["i1", "i0"]  # the item table's order, re-indexed from 0
    assert list(core.items["title"]) == ["one", "zero"]
    rows = [(core.user_ids[u], core.item_ids[i], t, r) for u, i, t, r in
            core.interactions[["user", "item", "timestamp", "rating"]].itertuples(index=False)]
    assert rows == [("u0", "i0", 0, 0.0), ("u0", "i1", 10, 1.0), ("u1", "i0", 20, 2.0), ("u1", "i1", 30, 3.0)]
    assert core.interactions["user"].dtype == np.int32 and core.interactions["item"].dtype == np.int32


def test_user_and_item_bounds_apply_separately():
    data = chain_log()
    # items need 1, users 2: only u4 goes, and with it nothing else
    only_users = kcore(data, min_user_interactions=2, min_item_interactions=1)
    assert (only_users.n_interactions, only_users.n_users, only_users.n_items) == (8, 4, 4)
    # users need 1, items 3: only i1 has three (u0, u1, u2), so users u3 and u4 go with i2, i3, i0
    only_items = kcore(data, min_user_interactions=1, min_item_interactions=3)
    assert (only_items.n_interactions, list(only_items.user_ids), list(only_items.item_ids)) == \
           (3, ["u0", "u1", "u2"], ["i1"])


def test_a_log_already_in_its_core_keeps_its_frames():
    data = chain_log()
    assert kcore(data) is data
    core = kcore(data, 2, 2)
    again = kcore(core, 2, 2)
    assert again.interactions is core.interactions and again.items is core.items and again.users is core.users
    assert again.meta == core.meta


def test_nothing_left_is_an_error_naming_the_bounds_and_the_largest_counts():
    with pytest.raises(DataError, match=r"min_user_interactions=3, min_item_interactions=3 \(most per user: 2, "
                                        r"most per item: 3\)"):
        kcore(chain_log(), 3, 3)


@pytest.mark.parametrize("bounds", [(0, 1), (1, -2), (2.5, 1), (True, 1), ("5", 1)])
def test_bounds_must_be_whole_numbers_from_one(bounds):
    with pytest.raises(ConfigError, match="must be a whole number >= 1"):
        kcore(chain_log(), *bounds)


def test_load_dataset_cuts_any_format_to_its_core(tmp_path):
    # ML-100K sample: item 1 is rated by all three users, item 2 by two, item 3 by one
    data = load_dataset(write_ml100k(tmp_path / "ml-100k"), min_item_interactions=3)
    assert (data.n_interactions, list(data.item_ids), list(data.user_ids)) == (3, ["1"], ["1", "2", "10"])
    assert data.meta["kcore"] == {"min_user_interactions": 1, "min_item_interactions": 3}
    assert "age" in data.users.columns  # user features follow their users


def naive_core(pairs: list[tuple[int, int]], min_user: int, min_item: int) -> list[int]:
    """Remove one offending row at a time until none offends: slow, but obviously the k-core."""
    alive = list(range(len(pairs)))
    while True:
        users = [pairs[k][0] for k in alive]
        items = [pairs[k][1] for k in alive]
        offending = [k for k in alive if users.count(pairs[k][0]) < min_user or items.count(pairs[k][1]) < min_item]
        if not offending:
            return alive
        alive.remove(offending[0])


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=40),
       min_user=st.integers(1, 4), min_item=st.integers(1, 4))
def test_the_mask_is_the_core_that_one_row_at_a_time_removal_reaches(pairs, min_user, min_item):
    users = np.array([u for u, _ in pairs], dtype=np.int64)
    items = np.array([i for _, i in pairs], dtype=np.int64)
    keep, _ = kcore_mask(users, items, min_user, min_item)
    assert np.flatnonzero(keep).tolist() == naive_core(pairs, min_user, min_item)
