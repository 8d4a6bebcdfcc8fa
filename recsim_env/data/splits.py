"""Splits that never leak the future into training, and seeded negative sampling.

- :func:`leave_one_out`: per user, the last interaction (by time) is test, the one before is
  validation, the rest is training. Users with fewer than 3 interactions stay wholly in training.
- :func:`temporal_split`: one global cut-off time at the given fraction of interactions; everything
  before it is training, everything at or after it is test ("later split").
- :func:`sample_negatives`: for each (user, positive) pair, items the user never interacted with,
  drawn without replacement from one seeded generator (the 99-sampled-negatives protocol).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsim_env.data.log import InteractionLog
from recsim_env.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class Split:
    """Train / validation / test logs over the same user and item index spaces."""

    train: InteractionLog
    valid: InteractionLog
    test: InteractionLog


def leave_one_out(log: InteractionLog) -> Split:
    """Temporal leave-one-out (see module docstring). ``log.interactions`` is sorted by user, time."""
    inter = log.interactions
    users = inter["user"].to_numpy()
    ends = np.searchsorted(users, np.arange(log.n_users), side="right")
    counts = np.bincount(users, minlength=log.n_users)
    eligible = counts >= 3
    test_rows = ends[eligible] - 1
    valid_rows = ends[eligible] - 2
    is_train = np.ones(len(inter), dtype=bool)
    is_train[test_rows] = False
    is_train[valid_rows] = False
    return Split(
        train=log.with_interactions(inter[is_train], f"{log.name}/train"),
        valid=log.with_interactions(inter.iloc[valid_rows], f"{log.name}/valid"),
        test=log.with_interactions(inter.iloc[test_rows], f"{log.name}/test"),
    )


def temporal_split(log: InteractionLog, train_fraction: float = 0.8) -> tuple[InteractionLog, InteractionLog]:
    """Global time cut: (earlier, later). Ties at the cut-off time all go to the later part."""
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    ts = log.interactions["timestamp"].to_numpy()
    cutoff = np.quantile(ts, train_fraction, method="lower")
    early = ts < cutoff
    if early.all() or not early.any():
        raise DataError(f"{log.name}: a temporal split at fraction {train_fraction} leaves one side empty "
                        f"(all timestamps equal?)")
    inter = log.interactions
    return (log.with_interactions(inter[early], f"{log.name}/early"),
            log.with_interactions(inter[~early], f"{log.name}/later"))


def seen_items(log: InteractionLog) -> list[set[int]]:
    """Items each user interacted with in ``log``."""
    seen: list[set[int]] = [set() for _ in range(log.n_users)]
    for u, i in zip(log.interactions["user"].to_numpy(), log.interactions["item"].to_numpy()):
        seen[u].add(int(i))
    return seen


def sample_negatives(users: np.ndarray, exclude: list[set[int]], n_items: int, n_negatives: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``(len(users), n_negatives)`` int64 items outside ``exclude[user]``, without replacement per row."""
    users = np.asarray(users, dtype=np.int64)
    out = np.empty((len(users), n_negatives), dtype=np.int64)
    for row, u in enumerate(users):
        banned = exclude[u]
        if n_items - len(banned) < n_negatives:
            raise DataError(f"user index {u} has only {n_items - len(banned)} unseen items, "
                            f"fewer than the {n_negatives} negatives asked for")
        picked: list[int] = []
        chosen: set[int] = set()
        while len(picked) < n_negatives:  # rejection sampling: |banned| << n_items on real data
            for i in rng.integers(0, n_items, size=2 * (n_negatives - len(picked))):
                i = int(i)
                if i not in banned and i not in chosen:
                    chosen.add(i)
                    picked.append(i)
                    if len(picked) == n_negatives:
                        break
        out[row] = picked
    return out
