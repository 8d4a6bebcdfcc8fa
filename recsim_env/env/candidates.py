"""Candidate generators: the items a policy may pick from at each step, for many users at once.

Every generator returns ``(n, n_candidates)`` int64 item indices with no item repeated within a row,
drawn from the ``rng`` it is given, in ``O(n · n_candidates)`` (times ``log n_items`` for the weighted
one) — never ``O(n · n_items)``, because this runs every step of the hot path.

* :class:`UniformCandidates` — one of ``n_orderings`` fixed random permutations of the items (drawn
  uniformly) and a uniform start ``s``; row = the ``n_candidates`` items at cyclic positions
  ``s, s+1, ...`` of that permutation. Every item is in a row with probability exactly
  ``n_candidates / n_items``; the joint law is uniform over these ``n_orderings · n_items``
  windows, not over all subsets (which would cost ``O(n_items)`` per row to sample).
* :class:`WeightedCandidates` — systematic probability-proportional-to-size sampling: item ``i``
  is in a row with probability exactly ``π_i = min(1, c·w_i)`` (``c`` chosen so that ``Σπ = n_candidates``),
  by one uniform offset on the cumulative ``π`` of one of ``n_orderings`` fixed random item orders.
  :func:`popularity_candidates` weights by logged popularity, optionally mixed with uniform
  (``popularity_share``): ``w = share·popularity + (1 - share)/n_items``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from recsim_env.errors import ConfigError

CANDIDATE_KINDS = ("uniform", "popularity", "mixed")


@runtime_checkable
class CandidateGenerator(Protocol):
    """Draws each user's candidate items for one step."""

    n_items: int
    n_candidates: int

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, n_candidates)`` int64 distinct item indices per row."""
        ...


def _check_sizes(n_items: int, n_candidates: int) -> None:
    if n_items < 1:
        raise ConfigError(f"n_items must be >= 1, got {n_items}")
    if not 1 <= n_candidates <= n_items:
        raise ConfigError(f"n_candidates must be in [1, n_items={n_items}], got {n_candidates}")


class UniformCandidates:
    """Distinct items per row: a window of ``n_candidates`` consecutive entries of a random permutation."""

    def __init__(self, n_items: int, n_candidates: int, n_orderings: int | None = None, seed: int = 0) -> None:
        _check_sizes(n_items, n_candidates)
        self.n_items = n_items
        self.n_candidates = n_candidates
        self.seed = seed
        # Enough orderings for varied co-occurrence (at least 8), but a table of ~64K indices (512 KiB)
        # where the catalogue allows: the batched step gathers 1,024 random windows from it every step,
        # and a table that stays in cache made the whole ML-100K step ~14% faster than 256 orderings (3.6 MB).
        self.n_orderings = n_orderings or int(np.clip(65_536 // (n_items + n_candidates), 8, 256))
        self._build()

    def _build(self) -> None:
        cyclic = _cyclic_orders(self.n_items, self.n_candidates, self.n_orderings, self.seed)
        # Overlapping windows as a strided view: one fancy index gathers a whole batch of rows.
        self._windows = sliding_window_view(cyclic, self.n_candidates, axis=1)[:, : self.n_items]

    def __getstate__(self) -> dict:
        # Pickling the strided view would materialise every window (hundreds of MB): rebuild instead.
        state = dict(self.__dict__)
        del state["_windows"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build()

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if n == 1:
            # The single env's path: the same two draws as below, without four array operations.
            ordering, start = rng.random(2).tolist()
            return self._windows[int(ordering * self.n_orderings), int(start * self.n_items)][None].copy()
        draws = rng.random((2, n))
        ordering = (draws[0] * self.n_orderings).astype(np.int64)
        start = (draws[1] * self.n_items).astype(np.int64)
        return self._windows[ordering, start]


@lru_cache(maxsize=8)
def _cyclic_orders(n_items: int, n_candidates: int, n_orderings: int, seed: int) -> np.ndarray:
    """Fixed random item orders, each extended by its own first ``n_candidates`` entries (a cycle).

    Cached and read-only: a ``SyncVectorEnv`` of a thousand single envs shares one table.
    """
    order_rng = np.random.default_rng(seed)
    orders = np.stack([order_rng.permutation(n_items) for _ in range(n_orderings)])
    cyclic = np.concatenate([orders, orders[:, :n_candidates]], axis=1).astype(np.int64)
    cyclic.setflags(write=False)
    return cyclic


class WeightedCandidates:
    """Distinct items per row, item ``i`` included with probability ``min(1, c·weights[i])``."""

    def __init__(self, weights: np.ndarray, n_candidates: int, n_orderings: int = 8, seed: int = 0) -> None:
        weights = np.asarray(weights, dtype=np.float64)
        _check_sizes(len(weights), n_candidates)
        if not np.all(np.isfinite(weights)) or (weights < 0).any() or weights.sum() <= 0:
            raise ConfigError("candidate weights must be finite, >= 0 and not all zero")
        if n_orderings < 1:
            raise ConfigError(f"n_orderings must be >= 1, got {n_orderings}")
        self.n_items = len(weights)
        self.n_candidates = n_candidates
        self.inclusion = inclusion_probabilities(weights, n_candidates)
        # Fixed random orders (seeded by `seed`, not the episode rng: they are part of the generator's
        # definition) so that which items share a row varies; each row draws one order and one offset.
        order_rng = np.random.default_rng(seed)
        orders = np.stack([order_rng.permutation(self.n_items) for _ in range(n_orderings)])
        cum = np.cumsum(self.inclusion[orders], axis=1)
        cum[:, -1] = n_candidates  # exact total so the last point never falls off the end
        # Orderings are laid end to end on one axis (ordering o covers [o·C, (o+1)·C)): one searchsorted.
        self._cum = (cum + n_candidates * np.arange(n_orderings)[:, None]).ravel()
        self._orders = orders.ravel().astype(np.int64)
        self._points = np.arange(n_candidates, dtype=np.float64)
        self._n_orderings = n_orderings

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        draws = rng.random((n, 2))
        base = np.floor(draws[:, 1:2] * self._n_orderings) * self.n_candidates + draws[:, 0:1]
        slots = np.searchsorted(self._cum, base + self._points, side="right")
        return self._orders[np.minimum(slots, len(self._orders) - 1)]


def inclusion_probabilities(weights: np.ndarray, n_candidates: int) -> np.ndarray:
    """``π_i = min(1, c·w_i)`` with ``Σπ = n_candidates``: items too heavy for one draw are capped at 1."""
    weights = np.asarray(weights, dtype=np.float64)
    pi = np.zeros_like(weights)
    capped = np.zeros(len(weights), dtype=bool)
    positive = weights > 0
    if positive.sum() < n_candidates:
        # Too few weighted items to fill a row: the rest are taken uniformly among the zero-weight ones.
        pi[positive] = 1.0
        rest = ~positive
        pi[rest] = (n_candidates - positive.sum()) / rest.sum()
        return pi
    while True:
        free = ~capped
        pi[free] = weights[free] * (n_candidates - capped.sum()) / weights[free].sum()
        pi[capped] = 1.0
        over = free & (pi > 1.0)
        if not over.any():
            return pi
        capped |= over


def popularity_candidates(popularity: np.ndarray, n_candidates: int, popularity_share: float = 1.0,
                          n_orderings: int = 8) -> WeightedCandidates:
    """Popularity-weighted candidates, mixed with uniform: ``w = share·p + (1 - share)/n_items``."""
    if not 0.0 <= popularity_share <= 1.0:
        raise ConfigError(f"popularity_share must be in [0, 1], got {popularity_share!r}")
    popularity = np.asarray(popularity, dtype=np.float64)
    total = popularity.sum()
    if not np.isfinite(total) or total <= 0:
        raise ConfigError("popularity must be finite with a positive sum to weight candidates by it")
    weights = popularity_share * popularity / total + (1.0 - popularity_share) / len(popularity)
    return WeightedCandidates(weights, n_candidates, n_orderings=n_orderings)


def make_candidate_generator(kind: str, n_items: int, n_candidates: int,
                             popularity: np.ndarray | None = None, popularity_share: float = 0.5
                             ) -> CandidateGenerator:
    """The generator an :class:`~recsim_env.env.rec_env.EnvConfig` names (``uniform``, ``popularity``, ``mixed``)."""
    if kind == "uniform":
        return UniformCandidates(n_items, n_candidates)
    if kind not in CANDIDATE_KINDS:
        raise ConfigError(f"candidates must be one of {CANDIDATE_KINDS}, got {kind!r}")
    if popularity is None:
        raise ConfigError(f"candidates={kind!r} needs item popularity: pass an ItemCatalog to the env")
    if len(popularity) != n_items:
        raise ConfigError(f"catalog has {len(popularity)} items but the user model has {n_items}")
    share = 1.0 if kind == "popularity" else popularity_share
    return popularity_candidates(popularity, n_candidates, popularity_share=share)
