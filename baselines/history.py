"""Recency-weighted item histories: the per-user (or per-interaction) context of history-aware models.

A history is a pair of ``(n, length)`` arrays: item indices (``0`` where there is no item) and weights
(``0`` there). The most recent item weighs most; a weight halves with every ``halflife`` more recent
items, and the weights of a row sum to 1 (a weighted mean), or to 0 for a row without items. All three
builders are causal by construction:

- :func:`causal_histories`: for each interaction of a log, the user's items *before* it (training
  pairs never see their own or a later item);
- :func:`latest_histories`: for each user, their last ``length`` items of the log (what scoring
  uses: the training log during model selection, training + validation after the refit);
- :func:`observation_histories`: from an env observation's ``history_items`` (oldest first, ``-1``
  padding).
"""

from __future__ import annotations

import numpy as np


def _window(items: np.ndarray, ends: np.ndarray, starts: np.ndarray, length: int,
            halflife: float) -> tuple[np.ndarray, np.ndarray]:
    """Items at positions ``[ends - length, ends)`` not before ``starts``, with their weights."""
    cols = ends[:, None] - length + np.arange(length)
    valid = cols >= starts[:, None]
    idx = np.where(valid, items[np.clip(cols, 0, max(len(items) - 1, 0))] if len(items) else 0, 0)
    return idx.astype(np.int64), _weights(valid, halflife)


def _weights(valid: np.ndarray, halflife: float) -> np.ndarray:
    """Row-normalised ``0.5 ** (age / halflife)`` over ``valid``, the last column being age 0."""
    age = valid.shape[1] - 1 - np.arange(valid.shape[1])
    w = np.where(valid, 0.5 ** (age / halflife), 0.0)
    total = w.sum(axis=1, keepdims=True)
    return (w / np.where(total > 0, total, 1.0)).astype(np.float32)


def causal_histories(users: np.ndarray, items: np.ndarray, length: int,
                     halflife: float) -> tuple[np.ndarray, np.ndarray]:
    """Per interaction, the same user's ``length`` previous items. ``users`` must be grouped and
    time-ordered within a user (an InteractionLog's order)."""
    starts = np.searchsorted(users, users, side="left")
    return _window(np.asarray(items), np.arange(len(users)), starts, length, halflife)


def latest_histories(users: np.ndarray, items: np.ndarray, n_users: int, length: int,
                     halflife: float) -> tuple[np.ndarray, np.ndarray]:
    """Per user index ``0..n_users-1``, their last ``length`` items (grouped, time-ordered input)."""
    bounds = np.searchsorted(users, np.arange(n_users + 1), side="left")
    return _window(np.asarray(items), bounds[1:], bounds[:-1], length, halflife)


def observation_histories(history_items: np.ndarray, n_items: int, length: int,
                          halflife: float) -> tuple[np.ndarray, np.ndarray]:
    """From ``(n, H)`` observed items (oldest first, ``-1`` padding; indices outside the catalogue are
    ignored): the last ``length`` columns, ages counted from the right."""
    hist = np.asarray(history_items, dtype=np.int64)[:, -length:]
    if hist.shape[1] < length:
        hist = np.concatenate([np.full((len(hist), length - hist.shape[1]), -1), hist], axis=1)
    valid = (hist >= 0) & (hist < n_items)
    return np.where(valid, hist, 0), _weights(valid, halflife)
