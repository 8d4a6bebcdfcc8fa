"""Ranking, calibration, distribution and slate metrics, each checked in tests against hand-computed cases.

Conventions
- ``ranks``: 0-based rank of a held-out positive among the items it was ranked with (0 = first).
- Ranking metrics return the mean over users; ``reduce=False`` returns the per-user values (for
  :func:`mean_confidence_interval`).
- Slates are ``(n, k)`` integer item indices; ``-1`` marks an empty slot and is ignored.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from recsim_env.errors import ConfigError


def _ranks(ranks: np.ndarray | Sequence[int], k: int) -> np.ndarray:
    if int(k) != k or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    r = np.asarray(ranks)
    if r.size and (r.min() < 0 or not np.all(np.isfinite(r))):
        raise ConfigError(f"ranks must be finite and >= 0 (0-based); got minimum {r.min()!r}")
    return r


def _reduce(values: np.ndarray, reduce: bool) -> float | np.ndarray:
    if not reduce:
        return values.astype(np.float64)
    return float(values.mean()) if values.size else float("nan")


def hit_rate_at_k(ranks: np.ndarray | Sequence[int], k: int, reduce: bool = True) -> float | np.ndarray:
    """Share of users whose positive is in the top ``k`` (HR@k)."""
    r = _ranks(ranks, k)
    return _reduce((r < k).astype(np.float64), reduce)


def ndcg_at_k(ranks: np.ndarray | Sequence[int], k: int, reduce: bool = True) -> float | np.ndarray:
    """NDCG@k with one relevant item: ``1 / log2(rank + 2)`` inside the top ``k``, else 0."""
    r = _ranks(ranks, k)
    gains = np.where(r < k, 1.0 / np.log2(r.astype(np.float64) + 2.0), 0.0)
    return _reduce(gains, reduce)


def mrr_at_k(ranks: np.ndarray | Sequence[int], k: int, reduce: bool = True) -> float | np.ndarray:
    """Reciprocal rank ``1 / (rank + 1)`` inside the top ``k``, else 0 (MRR@k)."""
    r = _ranks(ranks, k)
    return _reduce(np.where(r < k, 1.0 / (r.astype(np.float64) + 1.0), 0.0), reduce)


def recall_at_k(recommended: np.ndarray, relevant: Sequence[set[int] | Sequence[int]], k: int,
                reduce: bool = True) -> float | np.ndarray:
    """Share of each user's relevant items found in the first ``k`` of ``recommended`` (``(n, >=k)``).

    Users with no relevant item are skipped (they have no recall to measure).
    """
    _ranks([], k)
    recs = np.asarray(recommended)
    if recs.ndim != 2 or recs.shape[0] != len(relevant):
        raise ConfigError(f"recommended must be (n_users, >=k) with one row per relevant set; got shape "
                          f"{recs.shape} for {len(relevant)} users")
    if recs.shape[1] < k:
        raise ConfigError(f"recall@{k} needs at least {k} recommendations per user, got {recs.shape[1]}")
    values = [len(set(row[:k].tolist()) & set(rel)) / len(set(rel))
              for row, rel in zip(recs, relevant) if len(rel)]
    return _reduce(np.asarray(values, dtype=np.float64), reduce)


def auc(pos_scores: np.ndarray | Sequence[float], neg_scores: np.ndarray | Sequence[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count one half)."""
    pos = np.asarray(pos_scores, dtype=np.float64).ravel()
    neg = np.asarray(neg_scores, dtype=np.float64).ravel()
    if not pos.size or not neg.size:
        raise ConfigError(f"auc needs at least one positive and one negative score, got {pos.size} and {neg.size}")
    # Mann-Whitney U via average ranks: O((p + n) log(p + n)) instead of the p * n pair table.
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def expected_calibration_error(probs: np.ndarray | Sequence[float], outcomes: np.ndarray | Sequence[float],
                               n_bins: int = 10) -> tuple[float, pd.DataFrame]:
    """ECE over ``n_bins`` equal-width probability bins, and the per-bin table (for reliability plots).

    ECE = sum over bins of (share of samples in the bin) * |mean outcome - mean probability|.
    Bin ``b`` holds ``floor(p * n_bins)`` (the usual convention: 0.3 opens bin 3 of 10, as written,
    not the float edge 0.30000000000000004 that ``linspace`` would put above it); the last bin is
    closed on the right so that probability 1.0 is counted.
    """
    p = np.asarray(probs, dtype=np.float64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    if p.shape != y.shape or not p.size:
        raise ConfigError(f"probs and outcomes must be non-empty and of one length, got {p.size} and {y.size}")
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ConfigError(f"probs must lie in [0, 1]; got range [{p.min()}, {p.max()}]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.minimum(np.floor(p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    safe = np.maximum(count, 1)
    mean_p = np.bincount(which, weights=p, minlength=n_bins) / safe
    mean_y = np.bincount(which, weights=y, minlength=n_bins) / safe
    bins = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "count": count,
                         "mean_prob": np.where(count > 0, mean_p, np.nan),
                         "mean_outcome": np.where(count > 0, mean_y, np.nan)})
    ece = float(np.sum(count / p.size * np.abs(mean_y - mean_p)))
    return ece, bins


def ks_statistic(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if not a.size or not b.size:
        raise ConfigError(f"ks_statistic needs two non-empty samples, got sizes {a.size} and {b.size}")
    return float(stats.ks_2samp(a, b).statistic)


def _slate_items(slates: np.ndarray) -> np.ndarray:
    s = np.asarray(slates)
    if s.ndim != 2:
        raise ConfigError(f"slates must be a 2-D (n, k) array of item indices, got shape {s.shape}")
    return s


def catalog_coverage(slates: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one slate."""
    if n_items < 1:
        raise ConfigError(f"n_items must be >= 1, got {n_items}")
    s = _slate_items(slates)
    shown = np.unique(s[s >= 0])
    if shown.size and shown.max() >= n_items:
        raise ConfigError(f"slates name item {int(shown.max())}, outside the catalogue of {n_items} items")
    return float(shown.size / n_items)


def intra_list_diversity(slates: np.ndarray, item_features: np.ndarray) -> float:
    """Mean over slates of the mean pairwise cosine distance (1 - cosine) between the slate's items.

    Slates with fewer than two items are skipped; items with all-zero features count as distance 1.
    """
    s = _slate_items(slates)
    feats = np.asarray(item_features, dtype=np.float64)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    unit = np.divide(feats, norms, out=np.zeros_like(feats), where=norms > 0)
    values = []
    for row in s:
        items = row[row >= 0]
        if items.size < 2:
            continue
        sim = unit[items] @ unit[items].T
        upper = np.triu_indices(items.size, k=1)
        values.append(float(np.mean(1.0 - sim[upper])))
    return float(np.mean(values)) if values else float("nan")


def novelty(slates: np.ndarray, popularity: np.ndarray) -> float:
    """Mean self-information ``-log2 p(item)`` of the shown items, ``p`` = popularity share.

    Items never seen in the log (popularity 0) get a small positive share instead of infinite
    novelty: ``1 / (10 * n_items)``, or the rarest seen item's share when that is smaller, so that an
    unseen item is never less novel than a seen one. Seen items keep their own share.
    """
    s = _slate_items(slates)
    pop = np.asarray(popularity, dtype=np.float64)
    total = pop.sum()
    if total <= 0:
        raise ConfigError("popularity must have a positive sum")
    share = pop / total
    unseen = share <= 0
    share[unseen] = min(1.0 / (10.0 * pop.size), share[~unseen].min())
    shown = s[s >= 0]
    return float(np.mean(-np.log2(share[shown]))) if shown.size else float("nan")


def slate_overlap_by_step(slates: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """Mean pairwise overlap of the slates shown to different users at each step.

    ``slates`` is ``(steps, users, k)``: what each user was shown at each step; ``active``
    (``(steps, users)`` bool, default all) says which users were in session then. The overlap of two
    slates ``A`` and ``B`` is ``|A ∩ B| / k``: the items both show (each item once, however often a
    slate repeats it) over the slate size, so an empty slot (``-1``) shows nothing and matches nothing.
    For slates without empty slots it is the cosine of their binary item vectors. Each step's value is
    the mean over all unordered pairs of its active users; steps with fewer than two are left out, so
    the result has one value per remaining step.
    """
    shown, in_session = _step_slates(slates, active)
    steps = shown.shape[0]
    slate_size = shown.shape[2]
    shown = np.where(in_session[:, :, None], np.sort(shown, axis=2), -1)
    repeated = np.zeros_like(shown, dtype=bool)
    repeated[:, :, 1:] = shown[:, :, 1:] == shown[:, :, :-1]  # sorted: a repeat sits beside its first
    valid = (shown >= 0) & ~repeated
    # Shared items summed over pairs = sum over (step, item) of C(users showing it, 2): no pair loop.
    n_keys = int(shown.max(initial=0)) + 1
    step_of = np.broadcast_to(np.arange(steps)[:, None, None], shown.shape)[valid]
    step_items, showing = np.unique(step_of * n_keys + shown[valid], return_counts=True)
    shared = np.bincount(step_items // n_keys, weights=showing * (showing - 1) / 2.0, minlength=steps)
    n_active = in_session.sum(axis=1)
    pairs = n_active * (n_active - 1) / 2.0
    return shared[pairs > 0] / (pairs[pairs > 0] * slate_size)


def personalization(slates: np.ndarray, active: np.ndarray | None = None) -> float:
    """Inter-user dissimilarity: ``1 -`` the mean over steps of :func:`slate_overlap_by_step`.

    0 when every user is shown the same slate at each step, 1 when no two users share an item; each
    step with two or more active users weighs the same. NaN when no step has two active users.

    Examples:
        >>> slates = np.array([[[1, 2], [2, 3], [1, 2]]])  # one step, three users, k = 2
        >>> round(personalization(slates), 4)  # overlaps 1/2, 1, 1/2: mean 2/3
        0.3333
    """
    overlaps = slate_overlap_by_step(slates, active)
    return float(1.0 - overlaps.mean()) if overlaps.size else float("nan")


def _step_slates(slates: np.ndarray, active: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    shown = np.asarray(slates)
    if shown.ndim != 3 or not np.issubdtype(shown.dtype, np.integer):
        raise ConfigError(f"slates must be a 3-D (steps, users, k) integer array of item indices, got shape "
                          f"{shown.shape} and dtype {shown.dtype}")
    if shown.shape[2] < 1:
        raise ConfigError(f"slates must have at least one slot, got shape {shown.shape}")
    in_session = np.ones(shown.shape[:2], dtype=bool) if active is None else np.asarray(active, dtype=bool)
    if in_session.shape != shown.shape[:2]:
        raise ConfigError(f"active must be (steps, users) = {shown.shape[:2]}, got shape {in_session.shape}")
    return shown.astype(np.int64), in_session


def mean_confidence_interval(values: np.ndarray | Sequence[float],
                             confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student-t interval of the mean. One value gives a zero-width interval."""
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    if not v.size:
        raise ConfigError("mean_confidence_interval needs at least one value")
    mean = float(v.mean())
    if v.size < 2 or np.all(v == v[0]):
        return mean, mean, mean
    half = float(stats.sem(v) * stats.t.ppf((1.0 + confidence) / 2.0, v.size - 1))
    return mean, mean - half, mean + half
