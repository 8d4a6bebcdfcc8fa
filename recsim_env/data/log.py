"""`InteractionLog`: the one in-memory form of logged data that everything downstream reads.

Schema (after loading; indices are contiguous integers, original ids are kept for output):

interactions (sorted by user, then timestamp, then original row order)
    ``user``      int32   user index in ``[0, n_users)``
    ``item``      int32   item index in ``[0, n_items)``
    ``timestamp`` int64   seconds since the epoch
    ``rating``    float32 optional explicit rating
    ``click``     float32 optional 0/1
    ``dwell``     float32 optional dwell time in seconds
    ``purchase``  float32 optional 0/1 (conversion)

items (row ``i`` describes item index ``i``)
    ``item_id``   object  original id
    ``title``     str     title or free text ("" when unknown)
    ``genres``    tuple   genre / category tokens (empty tuple when unknown)
    ``year``      float   release year (NaN when unknown)
    any further numeric columns are item attributes.

users (row ``u`` describes user index ``u``)
    ``user_id``   object  original id
    any further columns are user features (numeric, or categorical strings).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from recsim_env.data.schema import ColumnMapping, index_frames

log = logging.getLogger(__name__)

RESPONSE_COLUMNS = ("rating", "click", "dwell", "purchase")
CORE_COLUMNS = ("user", "item", "timestamp")


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """Logged interactions with item content and user features, indexed contiguously.

    Build one with :meth:`from_frames` (any DataFrames and a :class:`ColumnMapping`) or a loader in
    :mod:`recsim_env.data.loaders`; construct directly only from frames already in the schema above.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    name: str = "custom"
    meta: Mapping[str, object] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    @property
    def responses(self) -> tuple[str, ...]:
        """Which of rating / click / dwell / purchase this log records."""
        return tuple(c for c in RESPONSE_COLUMNS if c in self.interactions.columns)

    @property
    def user_ids(self) -> np.ndarray:
        return self.users["user_id"].to_numpy()

    @property
    def item_ids(self) -> np.ndarray:
        return self.items["item_id"].to_numpy()

    @property
    def genre_vocabulary(self) -> list[str]:
        """Sorted distinct genre tokens over all items."""
        return sorted({g for gs in self.items["genres"] for g in gs})

    def fingerprint(self) -> str:
        """A short hash of the interactions and item ids: artifacts fitted on other data are refused."""
        h = hashlib.sha256()
        cols = [c for c in ("user", "item", "timestamp", "rating") if c in self.interactions.columns]
        h.update(np.ascontiguousarray(self.interactions[cols].to_numpy(dtype=np.float64)).tobytes())
        h.update("\x1f".join(map(str, self.item_ids)).encode())
        h.update("\x1f".join(map(str, self.user_ids)).encode())
        return h.hexdigest()[:16]

    def with_interactions(self, interactions: pd.DataFrame, name: str | None = None) -> "InteractionLog":
        """The same users and items with another set of interactions (a split keeps index spaces)."""
        inter = interactions.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
        return InteractionLog(inter, self.items, self.users, name or self.name, dict(self.meta))

    def user_sequences(self) -> list[np.ndarray]:
        """Item indices of each user in time order (index ``u`` -> array)."""
        users = self.interactions["user"].to_numpy()
        items = self.interactions["item"].to_numpy()
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def summary(self) -> dict[str, object]:
        """Counts and sparsity, for ``recsim data info``."""
        n = self.n_interactions
        return {
            "name": self.name,
            "interactions": n,
            "users": self.n_users,
            "items": self.n_items,
            "sparsity": 1.0 - n / max(1, self.n_users * self.n_items),
            "responses": list(self.responses),
            "genres": len(self.genre_vocabulary),
        }

    @classmethod
    def from_frames(
        cls,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        mapping: ColumnMapping | None = None,
        *,
        name: str = "custom",
        source: str = "<DataFrame>",
        on_duplicates: str = "drop",
        on_unknown_items: str = "error",
    ) -> "InteractionLog":
        """Validate and index raw frames. See :mod:`recsim_env.data.schema` for every check."""
        inter, item_table, user_table = index_frames(
            interactions, items, users, mapping or ColumnMapping(), source=source,
            on_duplicates=on_duplicates, on_unknown_items=on_unknown_items,
        )
        return cls(inter, item_table, user_table, name, {"source": source})
