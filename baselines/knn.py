"""`ItemKNN`: item-based collaborative filtering with cosine similarity on the binary user-item matrix.

``score(u, i) = sum over the user's training items j of sim(i, j)``, where each item keeps only its
``neighbors`` most similar items and ``sim = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink)``.
Cold users are scored the same way from the observation's ``history_items``.
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

    neighbors: int = 100
    """Most similar items kept per item (0: keep all)."""
    shrink: float = 10.0
    """Added to the cosine denominator: damps similarities resting on few co-occurrences."""

    def __post_init__(self) -> None:
        if self.neighbors < 0 or self.shrink < 0:
            raise ConfigError(f"ItemKNNConfig needs neighbors >= 0 and shrink >= 0, got {self}")


class ItemKNN(ScoringRecommender):
    config_class = ItemKNNConfig
    can_score_history = True

    def _fit(self, train: InteractionLog, split: Split | None) -> None:
        users = train.interactions["user"].to_numpy()
        items = train.interactions["item"].to_numpy()
        x = sparse.csr_matrix((np.ones(len(users)), (users, items)), shape=(self.n_users, self.n_items))
        x.data[:] = 1.0  # repeated interactions count once
        co = (x.T @ x).toarray()
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.config.shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        k = self.config.neighbors
        if 0 < k < self.n_items:
            cut = np.argpartition(-sim, k - 1, axis=1)[:, k:]  # drop all but each row's k largest
            np.put_along_axis(sim, cut, 0.0, axis=1)
        # Row i holds item i's kept neighbours, so score(u, i) = (x_u @ similarity.T)[i].
        self.similarity = sparse.csr_matrix(sim)
        self._user_items = x

    def _score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        rows = (self._user_items[users] @ self.similarity.T)
        return np.take_along_axis(np.asarray(rows.todense()), items, axis=1)

    def _score_history(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        r, c = np.nonzero(history >= 0)
        h = sparse.csr_matrix((np.ones(len(r)), (r, history[r, c])), shape=(len(history), self.n_items))
        h.data[:] = 1.0
        return np.take_along_axis(np.asarray((h @ self.similarity.T).todense()), items, axis=1)

    def _state(self) -> dict[str, np.ndarray]:
        s = self.similarity
        return {"sim_data": s.data, "sim_indices": s.indices, "sim_indptr": s.indptr}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        try:
            self.similarity = sparse.csr_matrix((state["sim_data"], state["sim_indices"], state["sim_indptr"]),
                                                shape=(self.n_items, self.n_items))
        except (KeyError, ValueError) as exc:
            raise ArtifactError(f"ItemKNN checkpoint: similarity matrix missing or of the wrong shape ({exc})") from exc
        users = np.repeat(np.arange(self.n_users), np.diff(self._seen_ptr))
        self._user_items = sparse.csr_matrix((np.ones(len(users)), (users, self._seen_idx)),
                                             shape=(self.n_users, self.n_items))
