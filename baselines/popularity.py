"""Non-personalised baselines: `Popularity` (training interaction count) and `RandomScores`."""

from __future__ import annotations

import hashlib
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


def _observation_keys(seed: int, observation: dict[str, np.ndarray], n_rows: int) -> np.ndarray:
    """``(n,)`` 32-bit key per observation row: a hash of the seed and every array of the row, so a
    new step (new candidates, history or context) gets a new draw while the same row gets the same."""
    parts = [np.ascontiguousarray(np.asarray(observation[name]).reshape(n_rows, -1)).view(np.uint8)
             for name in sorted(observation)]
    rows = np.concatenate(parts, axis=1)
    salt = int(seed).to_bytes(8, "little", signed=True)
    return np.array([int.from_bytes(hashlib.blake2b(salt + row.tobytes(), digest_size=4).digest(), "little")
                     for row in rows], dtype=np.uint64)


class RandomScores(ScoringRecommender):
    """Uniform random scores, reproducible per (seed, user, item): the chance-level reference.

    A known user is ranked by their own (seed, user, item) scores. A cold user (``user_index`` -1 or
    unknown) has no identity to key a ranking by, so as an env policy (:meth:`score_observation`)
    each cold observation row gets a fresh draw keyed by a hash of the whole row: never popularity's
    fallback, never one ranking shared by every cold user, and no state (the same observation always
    gets the same slate, whatever was asked before).
    """

    config_class = RandomConfig
    can_score_history = True

    def _fit(self, train: InteractionLog, split: Split | None) -> None:
        pass

    def _score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return _hash_uniform(self.config.seed, np.broadcast_to(users[:, None], items.shape), items)

    def score_observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """``(n, C)`` scores: known users' own, cold users' drawn per observation row (the base class
        would give a cold user without history popularity's scores: popularity's very slate)."""
        cands = np.asarray(observation["candidates"], dtype=np.int64)
        users = np.asarray(observation["user_index"], dtype=np.int64).reshape(len(cands))
        scores = self.score(users, cands)
        cold = ~self.known_users(users)
        if cold.any():
            keys = _observation_keys(self.config.seed, observation, len(cands))[cold]
            drawn = _hash_uniform(self.config.seed, np.broadcast_to(keys[:, None], cands[cold].shape), cands[cold])
            scores[cold] = np.where(np.isfinite(scores[cold]), drawn, -np.inf)
        return scores
