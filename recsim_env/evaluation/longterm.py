"""Long-term metrics of lifetime episodes: return rate, days to return, sessions per user, lifetime clicks.

:func:`~recsim_env.evaluation.rollout.evaluate` adds them when the env is a lifetime env (its step info
has ``session_end``, ``returned`` and ``gap_days``: :mod:`recsim_env.env.lifetime`).

``return_rate_7d``
    Share of sessions followed by a return within :data:`RETURN_WINDOW_DAYS` days, pooled over the
    sessions of every episode. It is read from the gaps the user model drew, the last one of an
    episode included even where it runs past the horizon: a simulator sees every gap, so nothing is
    censored (a log would lose the returns after its end).
``days_to_return``
    Mean drawn gap in days over the sessions whose user comes back at all (a finite gap), pooled.
``sessions_per_user``
    Sessions in an episode (one user's horizon), averaged over episodes.
``lifetime_clicks``
    Clicks over an episode, averaged over episodes.

Intervals: the two pooled shares are ratio estimators whose sessions are clustered by user, so their
interval is the delta method's with episodes as clusters (one seed), or a t-interval over the seeds'
ratios (several seeds, as :meth:`EpisodeStats.summary` does for every metric); the two per-episode
metrics take t-intervals over episodes or seeds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from recsim_env.evaluation import metrics

RETURN_WINDOW_DAYS = 7.0
"""A return within this many days of a session's end counts toward ``return_rate_7d``."""
LONGTERM_METRICS = ("return_rate_7d", "days_to_return", "sessions_per_user", "lifetime_clicks")
"""The metrics, in report order."""
RATIOS = {"return_rate_7d": ("returns_7d", "session_ends"), "days_to_return": ("gap_days_total", "finite_gaps")}
"""Pooled metrics: (numerator, denominator) per-episode count columns."""
BOUNDS = {"return_rate_7d": (0.0, 1.0), "days_to_return": (0.0, np.inf), "sessions_per_user": (1.0, np.inf),
          "lifetime_clicks": (0.0, np.inf)}
"""Natural ranges the interval ends are clipped to."""
COUNT_COLUMNS = ("session_ends", "returns_7d", "finite_gaps", "gap_days_total", "returns")
"""Per-episode sums kept beside the metrics, so that any grouping can pool them again."""


def is_lifetime(info: dict[str, Any]) -> bool:
    """True for the (merged) step info of a lifetime env."""
    return "session_end" in info and "gap_days" in info


def accumulate(sums: dict[str, np.ndarray], info: dict[str, Any], active: np.ndarray) -> None:
    """Add one step's sessions to the per-slot ``sums`` (created on first use) of the slots still ``active``."""
    for name in COUNT_COLUMNS:
        if name not in sums:
            sums[name] = np.zeros(len(active))
    ended = np.asarray(info["session_end"], dtype=bool).reshape(-1) & active
    gap = np.asarray(info["gap_days"], dtype=np.float64).reshape(-1)
    finite = ended & np.isfinite(gap)
    sums["session_ends"] += ended
    sums["returns_7d"] += ended & (gap <= RETURN_WINDOW_DAYS)
    sums["finite_gaps"] += finite
    sums["gap_days_total"] += np.where(finite, gap, 0.0)
    sums["returns"] += np.asarray(info["returned"], dtype=bool).reshape(-1) & active


def episode_columns(sums: dict[str, np.ndarray], counted: np.ndarray) -> dict[str, np.ndarray]:
    """Per-episode columns of the counted slots: the metrics and the counts they pool."""
    counts = {name: sums[name][counted] for name in COUNT_COLUMNS}
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = {name: counts[top] / counts[bottom] for name, (top, bottom) in RATIOS.items()}
    columns["sessions_per_user"] = 1.0 + counts["returns"]
    columns["lifetime_clicks"] = sums["click"][counted]
    return columns | counts


def has_longterm(episodes: pd.DataFrame) -> bool:
    return all(name in episodes.columns for name in COUNT_COLUMNS + LONGTERM_METRICS)


def per_group(episodes: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """:data:`LONGTERM_METRICS` per group of ``keys`` (e.g. one seed of one policy): the pooled shares
    pooled over the group's sessions, the per-episode metrics averaged over its episodes.

    Examples:
        >>> episodes = pd.DataFrame({"seed": [0, 0], "session_ends": [1.0, 3.0], "returns_7d": [1.0, 0.0],
        ...     "finite_gaps": [1.0, 2.0], "gap_days_total": [2.0, 10.0], "sessions_per_user": [2.0, 3.0],
        ...     "lifetime_clicks": [4.0, 8.0]})
        >>> per_group(episodes, ["seed"]).iloc[0].tolist()  # 1 of 4 sessions back in 7 days, 12 days / 3 gaps
        [0.0, 0.25, 4.0, 2.5, 6.0]
    """
    groups = episodes.groupby(keys, sort=False)
    totals = groups[[column for pair in RATIOS.values() for column in pair]].sum()
    out = pd.DataFrame(index=totals.index)
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, (top, bottom) in RATIOS.items():
            out[name] = totals[top] / totals[bottom].where(totals[bottom] > 0)
    for name in LONGTERM_METRICS:
        if name not in RATIOS:
            out[name] = groups[name].mean()
    return out[list(LONGTERM_METRICS)].reset_index()


def summarize_longterm(episodes: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """``metric, mean, ci_low, ci_high, n`` of :data:`LONGTERM_METRICS` (``n``: episodes, or seeds when
    there are several)."""
    several = episodes["seed"].nunique() > 1
    rows = []
    for name in LONGTERM_METRICS:
        if name in RATIOS:
            top, bottom = RATIOS[name]
            if several:
                sums = episodes.groupby("seed")[[top, bottom]].sum()
                row = _mean_row(sums[top] / sums[bottom], confidence)
            else:
                row = ratio_interval(episodes[top].to_numpy(np.float64), episodes[bottom].to_numpy(np.float64),
                                     confidence)
        else:
            values = episodes.groupby("seed")[name].mean() if several else episodes[name]
            row = _mean_row(values, confidence)
        low, high = BOUNDS[name]
        rows.append({"metric": name, "mean": row[0], "ci_low": max(row[1], low), "ci_high": min(row[2], high),
                     "n": row[3]})
    return pd.DataFrame(rows, columns=["metric", "mean", "ci_low", "ci_high", "n"])


def ratio_interval(numerator: np.ndarray, denominator: np.ndarray,
                   confidence: float = 0.95) -> tuple[float, float, float, int]:
    """``(Σ numerator / Σ denominator, low, high, clusters)``: the delta method's t-interval of a ratio
    whose terms come in clusters (one entry per cluster); NaN when the denominator sums to 0.

    Examples:
        >>> ratio_interval(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 4.0]))[0]
        0.75
    """
    clusters = len(numerator)
    total = float(denominator.sum())
    if total <= 0:
        return float("nan"), float("nan"), float("nan"), clusters
    ratio = float(numerator.sum()) / total
    if clusters < 2:
        return ratio, ratio, ratio, clusters
    residual = numerator - ratio * denominator
    standard_error = np.sqrt(clusters / (clusters - 1) * float(residual @ residual)) / total
    half = standard_error * float(stats.t.ppf((1.0 + confidence) / 2.0, clusters - 1))
    return ratio, ratio - half, ratio + half, clusters


def _mean_row(values: pd.Series | np.ndarray, confidence: float) -> tuple[float, float, float, int]:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return float("nan"), float("nan"), float("nan"), 0
    mean, low, high = metrics.mean_confidence_interval(finite, confidence)
    return mean, low, high, int(finite.size)
