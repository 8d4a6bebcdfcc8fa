"""`ItemCatalog`: item indices <-> original ids, and the item features every model reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsim_env.data.log import InteractionLog


@dataclass(frozen=True, eq=False)
class ItemCatalog:
    """Items of one log as arrays. Row ``i`` of every array describes item index ``i``."""

    item_ids: np.ndarray
    """Original ids, for output."""
    titles: np.ndarray
    """Title / text of each item (object array of str)."""
    genres: np.ndarray
    """``(n_items, n_genres)`` float32 multi-hot genre matrix."""
    genre_names: tuple[str, ...]
    """Column names of :attr:`genres`."""
    years: np.ndarray
    """``(n_items,)`` float32 release year, NaN where unknown."""
    popularity: np.ndarray
    """``(n_items,)`` float32 share of logged interactions with each item (sums to 1)."""

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_genres(self) -> int:
        return len(self.genre_names)

    def content_features(self) -> np.ndarray:
        """``(n_items, n_genres + 2)`` float32: genres, standardised year, year-unknown flag."""
        known = ~np.isnan(self.years)
        mean = float(self.years[known].mean()) if known.any() else 0.0
        std = float(self.years[known].std()) if known.sum() > 1 else 1.0
        year = np.where(known, (self.years - mean) / max(std, 1e-6), 0.0)
        return np.column_stack([self.genres, year, (~known).astype(np.float32)]).astype(np.float32)

    @classmethod
    def from_log(cls, log: InteractionLog) -> "ItemCatalog":
        names = tuple(log.genre_vocabulary)
        col = {g: j for j, g in enumerate(names)}
        genres = np.zeros((log.n_items, len(names)), dtype=np.float32)
        for i, gs in enumerate(log.items["genres"]):
            for g in gs:
                genres[i, col[g]] = 1.0
        counts = np.bincount(log.interactions["item"].to_numpy(), minlength=log.n_items).astype(np.float64)
        return cls(
            item_ids=log.item_ids,
            titles=log.items["title"].to_numpy(dtype=object),
            genres=genres,
            genre_names=names,
            years=log.items["year"].to_numpy(dtype=np.float32),
            popularity=(counts / max(counts.sum(), 1.0)).astype(np.float32),
        )
