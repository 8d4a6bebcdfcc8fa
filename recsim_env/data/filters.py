"""k-core filtering: keep the part of a log where every user and every item has enough interactions.

Users of the Amazon and Yelp logs expect it (the "5-core" subsets): most of their users review one
item once, which no learner can use. Dropping the sparse users lowers other items' counts, which may
push them below their bound in turn, so the filter repeats until nothing changes. The result is the
k-core: the largest subset of the interactions in which every user has at least ``min_user`` and
every item at least ``min_item`` interactions (it is unique, so the order of removal does not
matter). Interactions are counted as rows: a user who rated one item twice counts 2, as RecBole's
``user_inter_num_interval`` counts.
"""

from __future__ import annotations

import logging

import numpy as np

from recsim_env.data.log import InteractionLog
from recsim_env.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def check_bounds(min_user: int, min_item: int) -> None:
    """Refuse bounds that are not whole numbers >= 1 (1 and 1 keep everything)."""
    for field, value in (("min_user_interactions", min_user), ("min_item_interactions", min_item)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{field} must be a whole number >= 1, got {value!r}")


def kcore_mask(users: np.ndarray, items: np.ndarray, min_user: int, min_item: int) -> tuple[np.ndarray, int]:
    """Which rows of ``(users, items)`` (non-negative integer codes) lie in the k-core, and after how
    many rounds of removal it was reached (0: every row already qualified)."""
    check_bounds(min_user, min_item)
    keep = np.ones(len(users), dtype=bool)
    rows = np.arange(len(users))
    rounds = 0
    while True:
        kept_users = users[rows]
        kept_items = items[rows]
        user_counts = np.bincount(kept_users)
        item_counts = np.bincount(kept_items)
        ok = (user_counts[kept_users] >= min_user) & (item_counts[kept_items] >= min_item)
        if ok.all():
            return keep, rounds
        keep[rows[~ok]] = False
        rows = rows[ok]  # later rounds look only at the rows still kept
        rounds += 1


def kcore(data: InteractionLog, min_user_interactions: int = 1, min_item_interactions: int = 1) -> InteractionLog:
    """The k-core of ``data`` (see the module docstring), re-indexed over the users and items left.

    Users and items keep their relative order; ``meta["kcore"]`` records the bounds. Bounds of 1 and 1
    return ``data`` itself; a log already in its k-core comes back with the same frames.

    Examples:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c"], "item_id": [1, 2, 1, 2, 2],
        ...                       "timestamp": [0, 1, 2, 3, 4]})
        >>> core = kcore(InteractionLog.from_frames(frame), min_user_interactions=2, min_item_interactions=2)
        >>> list(core.user_ids), list(core.item_ids), core.n_interactions  # c had one: gone
        (['a', 'b'], ['1', '2'], 4)
    """
    inter = data.interactions
    keep, rounds = kcore_mask(inter["user"].to_numpy(), inter["item"].to_numpy(), min_user_interactions,
                              min_item_interactions)
    if (min_user_interactions, min_item_interactions) == (1, 1):
        return data
    meta = dict(data.meta) | {"kcore": {"min_user_interactions": min_user_interactions,
                                        "min_item_interactions": min_item_interactions}}
    if rounds == 0:
        return InteractionLog(data.interactions, data.items, data.users, data.name, meta)
    if not keep.any():
        raise DataError(f"{data.name}: no interactions are left after k-core filtering with "
                        f"min_user_interactions={min_user_interactions}, min_item_interactions={min_item_interactions} "
                        f"(most per user: {np.bincount(inter['user']).max()}, most per item: "
                        f"{np.bincount(inter['item']).max()}); lower the bounds")
    kept = inter[keep]
    users = np.unique(kept["user"].to_numpy())
    items = np.unique(kept["item"].to_numpy())
    # np.unique sorts, so searchsorted maps each old index to its rank: the new contiguous index
    renumbered = kept.assign(user=np.searchsorted(users, kept["user"].to_numpy()).astype(np.int32),
                             item=np.searchsorted(items, kept["item"].to_numpy()).astype(np.int32))
    log.info("%s: k-core (users >= %d, items >= %d) kept %d of %d interactions, %d of %d users, %d of %d items "
             "after %d round(s)", data.name, min_user_interactions, min_item_interactions, len(kept), len(inter),
             len(users), data.n_users, len(items), data.n_items, rounds)
    return InteractionLog(renumbered.reset_index(drop=True), data.items.iloc[items].reset_index(drop=True),
                          data.users.iloc[users].reset_index(drop=True), data.name, meta)
