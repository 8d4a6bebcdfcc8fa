"""Non-personalised baselines: `Popularity` (training interaction count) and `RandomScores`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from baselines.base import ScoringRecommender
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import Split


class Popularity(ScoringRecommender):
    """Scores an item by how often it was interacted with in training (the same for every user)."""

    can_score_history = True  # popularity needs no user: a cold user is served exactly like a known one

    def _fit(self, train: InteractionLog, split: Split | None) -> None:
        pass  # the counts recorded by fit() are the whole model

    def _score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.counts[items]


@dataclass(frozen=True)
class RandomConfig:
    """Configuration of :class:`RandomScores`."""

    seed: int = 0
    """Seeds the scores; a (seed, user, item) triple always gets the same score."""


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _hash_uniform(seed: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Deterministic U[0, 1) per (seed, user, item): splitmix64 finaliser over the packed triple."""
    with np.errstate(over="ignore"):
        x = (users.astype(np.uint64) << np.uint64(32)) ^ items.astype(np.uint64) ^ (np.uint64(seed) * _MIX)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class RandomScores(ScoringRecommender):
    """Uniform random scores, reproducible per (seed, user, item): the chance-level reference."""

    config_class = RandomConfig
    can_score_history = True

    def _fit(self, train: InteractionLog, split: Split | None) -> None:
        pass

    def _score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return _hash_uniform(self.config.seed, np.broadcast_to(users[:, None], items.shape), items)

    def _score_history(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        # Cold users are keyed by a user index past the known range so they still get random scores.
        return _hash_uniform(self.config.seed, np.full(items.shape, self.n_users + 1), items)
