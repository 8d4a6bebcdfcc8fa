"""Sessions: runs of one user's interactions with gaps under a threshold (default 30 minutes).

A new session starts at a user's first interaction and wherever the time since the user's
previous interaction is ``>= gap_seconds``; gaps under it stay in one session. Later work
calibrates simulated session lengths against :func:`session_lengths` of the logged data.

Logs without timestamps (``ColumnMapping(timestamp=None)``) number rows 0, 1, 2, ..., so every
gap is one second and each user is one session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from recsim_env.data.log import InteractionLog
from recsim_env.errors import ConfigError, DataError

DEFAULT_GAP_SECONDS = 1800

DAY_SECONDS = 86400.0
"""Seconds per day: session gaps, return gaps and days since a first session are counted in days."""


def _check_gap(gap_seconds: float) -> None:
    if isinstance(gap_seconds, bool) or not isinstance(gap_seconds, (int, float, np.integer, np.floating)) \
            or not np.isfinite(gap_seconds) or gap_seconds <= 0:
        raise ConfigError(f"gap_seconds must be a positive finite number of seconds, got {gap_seconds!r}")


def sessionize(log: InteractionLog, gap_seconds: float = DEFAULT_GAP_SECONDS) -> np.ndarray:
    """Session id (int64, ``0..n_sessions-1`` in row order) of each row of ``log.interactions``."""
    _check_gap(gap_seconds)
    users = log.interactions["user"].to_numpy(np.int64)
    times = log.interactions["timestamp"].to_numpy(np.int64)
    if len(users) == 0:
        return np.zeros(0, dtype=np.int64)
    same_user = users[1:] == users[:-1]
    if np.any(users[1:] < users[:-1]) or np.any(same_user & (times[1:] < times[:-1])):
        raise DataError(f"{log.name}: interactions are not sorted by user, then timestamp; build the log with "
                        f"InteractionLog.from_frames or a loader, which sort them")
    starts = np.concatenate([[True], ~same_user | (times[1:] - times[:-1] >= gap_seconds)])
    return np.cumsum(starts) - 1


def session_lengths(log: InteractionLog, gap_seconds: float = DEFAULT_GAP_SECONDS) -> np.ndarray:
    """Interactions per session (int64), sessions in the order of :func:`sessionize`."""
    return np.bincount(sessionize(log, gap_seconds)).astype(np.int64)


@dataclass(frozen=True)
class SessionSummary:
    """The distribution of session lengths of one log."""

    gap_seconds: float
    """The threshold the sessions were cut with."""
    count: int
    """Number of sessions."""
    mean: float
    """Mean interactions per session."""
    median: float
    """Median interactions per session."""
    p90: float
    """90th percentile of interactions per session."""
    max: int
    """Longest session."""

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize_sessions(log: InteractionLog, gap_seconds: float = DEFAULT_GAP_SECONDS) -> SessionSummary:
    """Count, mean, median, 90th percentile and maximum of :func:`session_lengths`."""
    lengths = session_lengths(log, gap_seconds)
    if len(lengths) == 0:
        return SessionSummary(float(gap_seconds), 0, 0.0, 0.0, 0.0, 0)
    return SessionSummary(gap_seconds=float(gap_seconds), count=int(len(lengths)), mean=float(lengths.mean()),
                          median=float(np.median(lengths)), p90=float(np.percentile(lengths, 90)),
                          max=int(lengths.max()))
