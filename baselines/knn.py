"""`ItemKNN`: item-based collaborative filtering with cosine similarity on the binary user-item matrix.

``score(u, i) = sum over the user's training items j of w_j * sim(i, j)``, where each item keeps only
its ``neighbors`` most similar items, ``sim = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink)``, and
``w_j = 0.5 ** (later items of the user / recency_half_life)`` weighs recent items up (all 1 when
``recency_half_life`` is None). Cold users are scored the same way from the observation's
``history_items`` (oldest first, so the rightmost item is the most recent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from baselines.base import ScoringRecommender
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import Split
from recsim_env.errors import ArtifactError, ConfigError


@dataclass(frozen=True)
class ItemKNNConfig:
    """Configuration of :class:`ItemKNN`."""

    neighbors: int = 200
    """Most similar items kept per item (0: keep all)."""
    shrink: float = 10.0
    """Added to the cosine denominator: damps similarities resting on few co-occurrences."""
    recency_half_life: float | None = 3.0
    """A history item's weight halves every this many later items of the user (ML-100K's next item
    follows the last few closely); ``None`` weighs the whole history equally (classic item-KNN)."""

    def __post_init__(self) -> None:
        if self.recency_half_life is not None and self.recency_half_life <= 0:
            raise ConfigError(f"ItemKNNConfig.recency_half_life must be > 0 or None, got {self.recency_half_life}")
        if self.neighbors < 0 or self.shrink < 0:
            raise ConfigError(f"ItemKNNConfig needs neighbors >= 0 and shrink >= 0, got {self}")


class ItemKNN(ScoringRecommender):
    config_class = ItemKNNConfig
    can_score_history = True

    def _fit(self, train: InteractionLog, split: Split | None) -> None:
        users = train.interactions["user"].to_numpy()
        items = train.interactions["item"].to_numpy()
        x = sparse.csr_matrix((np.ones(len(users)), (users, items)), shape=(self.n_users, self.n_items))
        self.similarity = self._similarity(x)
        self._user_items = self._history_matrix(users, np.searchsorted(users, users, side="right") - 1
                                                - np.arange(len(users)), items, self.n_users)

    def _similarity(self, x: sparse.csr_matrix) -> sparse.csr_matrix:
        """Sparse shrunk cosine, each row cut to its ``neighbors`` largest entries (row i: item i's
        neighbours, so ``score(u, i) = (x_u @ similarity.T)[i]``). Memory follows the co-occurrences,
        not ``n_items ** 2``."""
        x = x.copy()
        x.sum_duplicates()
        x.data[:] = 1.0  # repeated interactions count once
        co = (x.T @ x).tocsr()
        co.setdiag(0.0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        rows = np.repeat(np.arange(self.n_items), np.diff(co.indptr))
        co.data = co.data / (norms[rows] * norms[co.indices] + self.config.shrink + 1e-12)
        k = self.config.neighbors
        if k == 0:
            return co
        for i in range(self.n_items):  # keep each row's k largest; rows are short next to the catalogue
            lo = co.indptr[i]
            hi = co.indptr[i + 1]
            if hi - lo > k:
                row = co.data[lo:hi]
                row[np.argpartition(-row, k - 1)[k:]] = 0.0
        co.eliminate_zeros()
        return co

    def _history_matrix(self, rows: np.ndarray, later: np.ndarray, items: np.ndarray, n_rows: int) -> sparse.csr_matrix:
        """Rows of recency-weighted consumed items (``later``: how many items of the row came after)."""
        h = self.config.recency_half_life
        weights = np.ones(len(rows)) if h is None else 0.5 ** (later / h)
        return sparse.csr_matrix((weights, (rows, items)), shape=(n_rows, self.n_items))

    def _score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        rows = (self._user_items[users] @ self.similarity.T)
        return np.take_along_axis(np.asarray(rows.todense()), items, axis=1)

    def _score_history(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        valid = history >= 0
        r, c = np.nonzero(valid)
        later = (np.cumsum(valid[:, ::-1], axis=1)[:, ::-1] - 1)[r, c]
        h = self._history_matrix(r, later, history[r, c], len(history))
        return np.take_along_axis(np.asarray((h @ self.similarity.T).todense()), items, axis=1)

    def _state(self) -> dict[str, np.ndarray]:
        s = self.similarity
        x = self._user_items
        return {"sim_data": s.data, "sim_indices": s.indices, "sim_indptr": s.indptr,
                "user_data": x.data, "user_indices": x.indices, "user_indptr": x.indptr}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        try:
            self.similarity = sparse.csr_matrix((state["sim_data"], state["sim_indices"], state["sim_indptr"]),
                                                shape=(self.n_items, self.n_items))
            self._user_items = sparse.csr_matrix((state["user_data"], state["user_indices"], state["user_indptr"]),
                                                 shape=(self.n_users, self.n_items))
        except (KeyError, ValueError) as exc:
            raise ArtifactError(f"ItemKNN checkpoint: similarity or history matrix missing or of the wrong shape "
                                f"({exc})") from exc
