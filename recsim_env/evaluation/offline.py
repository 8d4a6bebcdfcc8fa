"""Offline evaluation protocols for anything that scores (user, item) pairs.

- :class:`SampledRanking` — the NCF protocol (He et al. 2017): temporal leave-one-out; each user's
  held-out positive is ranked among ``n_negatives`` (99) items the user never interacted with, drawn
  once from one seed; HR@k and NDCG@k.
- :func:`full_ranking` — the positive ranked against every item the user has not interacted with in
  training (or validation): Recall@k, NDCG@k, HR@k, MRR@k and catalogue coverage of the top-k lists.
- :func:`item_cold_start` — items held out of training entirely; each user's held-out positive among
  such new items is ranked against 99 other new items the user never touched.

Ties are broken at random from the protocol's seed (a constant scorer lands at chance, neither at the
top nor at the bottom). ``recsim_env`` must not import ``baselines``: models arrive as any object with
``score(users, items) -> (n, m)`` (the :class:`Scorer` protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import sample_negatives, seen_items
from recsim_env.errors import ConfigError, DataError
from recsim_env.evaluation import metrics


class Scorer(Protocol):
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``(n,)`` user indices and ``(n, m)`` item indices -> ``(n, m)`` scores (higher is better)."""
        ...


def ranks_of_first(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0-based rank of column 0 of each row among the row's scores (``±inf`` allowed), ties at random.

    NaN is refused: it compares false with everything, so a NaN positive would rank first.
    """
    scores = np.asarray(scores, dtype=np.float64)
    nan = np.argwhere(np.isnan(scores))
    if nan.size:
        raise DataError(f"scores row {nan[0, 0]} column {nan[0, 1]} is NaN; NaN scores cannot be ranked")
    pos = scores[:, :1]
    greater = (scores[:, 1:] > pos).sum(axis=1)
    equal = (scores[:, 1:] == pos).sum(axis=1)
    return greater + rng.integers(0, equal + 1)


def _checked_scores(scorer: Scorer, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``scorer.score(users, items)`` as float64, refusing NaN with the model, user and item named:
    a NaN positive would otherwise rank first here and last under a sort, so HR means nothing."""
    scores = np.asarray(scorer.score(users, items), dtype=np.float64)
    nan = np.argwhere(np.isnan(scores))
    if nan.size:
        row = nan[0, 0]
        raise DataError(f"{type(scorer).__name__}.score returned NaN for user {int(users[row])} "
                        f"(item {int(items[row, nan[0, 1]])}); scores must be numbers (±inf allowed)")
    return scores


def _score_batched(scorer: Scorer, users: np.ndarray, items: np.ndarray, batch_size: int) -> np.ndarray:
    out = np.empty(items.shape, dtype=np.float64)
    for lo in range(0, len(users), batch_size):
        out[lo:lo + batch_size] = _checked_scores(scorer, users[lo:lo + batch_size], items[lo:lo + batch_size])
    return out


@dataclass(frozen=True, eq=False)
class SampledRanking:
    """Fixed evaluation candidates: row ``r`` ranks ``candidates[r, 0]`` (the positive) for ``users[r]``."""

    users: np.ndarray
    """``(n,)`` int64 user indices."""
    candidates: np.ndarray
    """``(n, 1 + n_negatives)`` int64 item indices; column 0 is the held-out positive."""
    seed: int = 0
    """Seed of the tie-breaking draws (the negatives were drawn from the same seed)."""

    @classmethod
    def build(cls, held_out: InteractionLog, exclude: list[set[int]], n_negatives: int = 99,
              seed: int = 0) -> "SampledRanking":
        """One row per interaction of ``held_out`` (one per user after leave-one-out); negatives avoid
        ``exclude[user]`` (every item the user interacted with anywhere)."""
        if held_out.n_interactions == 0:
            raise DataError(f"{held_out.name}: no held-out interactions to rank")
        if n_negatives < 1:
            raise ConfigError(f"n_negatives must be >= 1, got {n_negatives}")
        users = held_out.interactions["user"].to_numpy(np.int64)
        positives = held_out.interactions["item"].to_numpy(np.int64)
        negs = sample_negatives(users, exclude, held_out.n_items, n_negatives, np.random.default_rng(seed))
        return cls(users, np.column_stack([positives, negs]), seed)

    def ranks(self, scorer: Scorer, batch_size: int = 1024) -> np.ndarray:
        """``(n,)`` 0-based rank of each positive among its candidates."""
        scores = _score_batched(scorer, self.users, self.candidates, batch_size)
        return ranks_of_first(scores, np.random.default_rng([self.seed, 1]))

    def evaluate(self, scorer: Scorer, k: int = 10) -> dict[str, float]:
        ranks = self.ranks(scorer)
        return {f"HR@{k}": metrics.hit_rate_at_k(ranks, k), f"NDCG@{k}": metrics.ndcg_at_k(ranks, k)}


def ncf_protocol(train: InteractionLog, test: InteractionLog, full: InteractionLog, scorer: Scorer,
                 n_negatives: int = 99, k: int = 10, seed: int = 0) -> dict[str, float]:
    """HR@k / NDCG@k of ``test`` positives among ``n_negatives`` never-interacted items of ``full``."""
    del train  # the protocol's negatives come from the whole log; kept for a uniform signature
    return SampledRanking.build(test, seen_items(full), n_negatives, seed).evaluate(scorer, k)


def full_ranking(scorer: Scorer, known: InteractionLog, test: InteractionLog, k: int = 10,
                 seed: int = 0, batch_size: int = 256) -> dict[str, float]:
    """Each test positive ranked against all items the user has no interaction with in ``known``
    (training, plus validation when given merged); Recall@k = HR@k with one positive per user."""
    if test.n_interactions == 0:
        raise DataError(f"{test.name}: no test interactions to rank")
    n_items = test.n_items
    if k > n_items:
        raise ConfigError(f"k={k} exceeds the catalogue of {n_items} items")
    users = test.interactions["user"].to_numpy(np.int64)
    positives = test.interactions["item"].to_numpy(np.int64)
    seen = seen_items(known)
    rng = np.random.default_rng([seed, 2])
    ranks = np.empty(len(users), dtype=np.int64)
    top = np.empty((len(users), k), dtype=np.int64)
    all_items = np.arange(n_items, dtype=np.int64)
    for lo in range(0, len(users), batch_size):
        u = users[lo:lo + batch_size]
        scores = _checked_scores(scorer, u, np.broadcast_to(all_items, (len(u), n_items))).copy()
        for r, user in enumerate(u):
            banned = np.fromiter(seen[user] - {int(positives[lo + r])}, dtype=np.int64)
            scores[r, banned] = -np.inf
        # One random tie-break order serves both the top-k lists and the positive's rank, so that
        # Recall@k and HR@k agree exactly with one positive per user.
        order = np.lexsort((rng.random(scores.shape), -scores), axis=1)
        top[lo:lo + len(u)] = order[:, :k]
        ranks[lo:lo + len(u)] = np.argmax(order == positives[lo:lo + len(u), None], axis=1)
    relevant = [{int(p)} for p in positives]
    return {f"Recall@{k}": metrics.recall_at_k(top, relevant, k), f"NDCG@{k}": metrics.ndcg_at_k(ranks, k),
            f"HR@{k}": metrics.hit_rate_at_k(ranks, k), f"MRR@{k}": metrics.mrr_at_k(ranks, k),
            "coverage": metrics.catalog_coverage(top, n_items)}


def item_cold_start(log: InteractionLog, held_out_fraction: float = 0.1, n_negatives: int = 99,
                    seed: int = 0) -> tuple[InteractionLog, SampledRanking]:
    """Hold a random ``held_out_fraction`` of items out of training entirely.

    Returns the training log (every interaction with a held-out item removed) and the evaluation:
    per user with a held-out interaction, their last one (by time) ranked among ``n_negatives``
    other held-out items that user never interacted with (users with too few such items are skipped).
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise ConfigError(f"held_out_fraction must be in (0, 1), got {held_out_fraction!r}")
    rng = np.random.default_rng([seed, 3])
    n_cold = max(1, int(round(held_out_fraction * log.n_items)))
    cold = np.zeros(log.n_items, dtype=bool)
    cold[rng.choice(log.n_items, n_cold, replace=False)] = True
    inter = log.interactions
    on_cold = cold[inter["item"].to_numpy()]
    train = log.with_interactions(inter[~on_cold], f"{log.name}/warm-items")
    held = inter[on_cold]
    last = held.groupby("user", sort=True).tail(1)
    seen = seen_items(log)
    # Banning every warm item leaves only the user's untouched cold items as negatives.
    banned = [seen[u] | set(np.flatnonzero(~cold).tolist()) for u in range(log.n_users)]
    room = np.array([n_cold - len(seen[u] & set(np.flatnonzero(cold).tolist())) for u in last["user"]])
    last = last[room >= n_negatives]
    if last.empty:
        raise DataError(f"{log.name}: no user has {n_negatives} untouched held-out items to rank against; "
                        f"raise held_out_fraction or lower n_negatives")
    test = log.with_interactions(last, f"{log.name}/cold-items")
    return train, SampledRanking.build(test, banned, n_negatives, seed)
