"""Logs generated from a KNOWN leave hazard and return model, for the known-answer tests.

The generator plays a tiny simulator: users consume uniformly drawn items (one per minute), the
hazard decides after each item whether the session ends, the return model draws the gap to the next
session, and the log is cut at the horizon as a real log's end cuts it. It calls the artifacts the
way a simulator would: batched ``features`` / ``probability`` and ``covariates`` / ``sample_gaps``.
Its genre profile and session covariates are computed here, step by step, not by the fitters' code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
from recsim_env.data.sessions import DAY_SECONDS
from recsim_env.fit.leave import LeaveHazard
from recsim_env.fit.returns import ReturnModel

N_GENRES = 6
START = 1_000_000_000
"""Epoch seconds of the horizon's start."""
ITEM_SECONDS = 60
"""Seconds between consumed items within a session."""

TRUE_LEAVE = {"log1p_position": -0.3, "position_0": 0.8, "rating": -0.1, "shortfall": 0.4, "overlap": 0.8,
              "log1p_popularity": -0.2, "log1p_activity": 0.15}
TRUE_FIRST_SESSION = {"first_session": -1.5, "first_log1p_position": 0.5}
"""The first session's own curve: it rarely ends early, less so the longer it runs (only users who are new at
the log's start, ``new_share`` of :func:`true_models`, have one in the log)."""
TRUE_LEAVE_INTERCEPT = -2.0
TRUE_RETURN = {"log1p_length": -0.3, "mean_rating": 0.2, "liked_share": -0.5, "disliked_share": 0.5,
               "genre_diversity": -0.4, "log1p_sessions": -0.3, "log1p_days_since_first": 0.2}
TRUE_RETURN_INTERCEPT = 0.5
TRUE_RETURN_SCALE = 1.2


def true_models(n_users: int, n_items: int, rng: np.random.Generator,
                new_share: float = 0.0) -> tuple[LeaveHazard, ReturnModel]:
    """``new_share``: the share of users with no interaction before the log (their first generated session is
    a first session, at activity 0); the rest bring a log-normal count (never 0)."""
    item_counts = np.round(rng.lognormal(3.0, 1.0, n_items))
    user_counts = np.maximum(np.round(rng.lognormal(4.0, 0.8, n_users)), 1.0)
    if new_share > 0:
        user_counts[rng.random(n_users) < new_share] = 0.0
    hazard = LeaveHazard.from_raw(TRUE_LEAVE_INTERCEPT, TRUE_LEAVE | TRUE_FIRST_SESSION, item_counts, user_counts)
    returns = ReturnModel.from_raw(TRUE_RETURN_INTERCEPT, TRUE_RETURN, TRUE_RETURN_SCALE, "weibull")
    return hazard, returns


def _item_genres(n_items: int, rng: np.random.Generator) -> np.ndarray:
    genres = np.zeros((n_items, N_GENRES))
    genres[np.arange(n_items), rng.integers(0, N_GENRES, n_items)] = 1.0
    second = rng.random(n_items) < 0.4
    genres[np.flatnonzero(second), rng.integers(0, N_GENRES, int(second.sum()))] = 1.0
    return genres


def _session(hazard: LeaveHazard, users: np.ndarray, earlier: np.ndarray, genres: np.ndarray, user_bias: np.ndarray,
             rng: np.random.Generator, max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One session of each user, who consumed ``earlier`` items in their earlier generated sessions (their
    activity before it is ``user_counts + earlier``): (items, ratings, length), ``(n, max_length)`` grids."""
    n_users = len(users)
    items = rng.integers(0, len(genres), (n_users, max_length))
    ratings = np.clip(np.round(3 + user_bias[users, None] + rng.normal(0, 1.2, (n_users, max_length))), 1, 5)
    unit = genres / np.linalg.norm(genres, axis=1, keepdims=True)
    profile = np.zeros((n_users, N_GENRES))
    length = np.full(n_users, max_length)
    going = np.ones(n_users, dtype=bool)
    for position in range(max_length):
        vectors = unit[items[:, position]]
        norm = np.linalg.norm(profile, axis=1)
        overlap = np.where(norm > 0, (profile * vectors).sum(axis=1) / np.maximum(norm, 1e-12), 0.0)
        design = hazard.features_for(users, items[:, position], np.full(n_users, position), ratings[:, position],
                                     overlap, earlier)
        leaves = going & hazard.sample_leaves(design, rng)
        length[leaves] = position + 1
        going &= ~leaves
        profile = hazard.overlap_decay * profile + vectors
    return items, ratings, length


def generate_log(hazard: LeaveHazard, returns: ReturnModel, horizon_days: float, rng: np.random.Generator,
                 max_length: int = 120) -> tuple[InteractionLog, float]:
    """(the log cut at the horizon, the horizon's end in epoch seconds)."""
    n_users, n_items = len(hazard.user_counts), len(hazard.item_counts)
    genres = _item_genres(n_items, rng)
    user_bias = rng.normal(0, 0.5, n_users)
    end = START + horizon_days * DAY_SECONDS
    start = START + rng.uniform(0, horizon_days / 3, n_users) * DAY_SECONDS
    first_time = np.floor(start)
    sessions = np.zeros(n_users)
    consumed_before = np.zeros(n_users)
    frames = []
    active = np.flatnonzero(start < end)
    while active.size:
        items, ratings, length = _session(hazard, active, consumed_before[active], genres, user_bias, rng, max_length)
        consumed_before[active] += length
        consumed = np.arange(max_length)[None, :] < length[:, None]
        times = np.floor(start[active, None]) + ITEM_SECONDS * np.arange(max_length)[None, :]
        rows = np.nonzero(consumed)
        frames.append(pd.DataFrame({"user_id": active[rows[0]], "item_id": items[rows], "timestamp": times[rows],
                                    "rating": ratings[rows]}))
        sessions[active] += 1
        ended_at = np.floor(start[active]) + ITEM_SECONDS * (length - 1)
        mass = np.einsum("nk,nkg->ng", consumed * 1.0, genres[items])
        diversity = 1 - ((mass / mass.sum(axis=1, keepdims=True)) ** 2).sum(axis=1)
        shares = [np.where(consumed, values, 0).sum(axis=1) / length
                  for values in (ratings, ratings >= 4, ratings <= 2)]
        design = returns.covariates(length, *shares, diversity, sessions[active],
                                    (ended_at - first_time[active]) / DAY_SECONDS)
        start[active] = ended_at + np.ceil(returns.sample_gaps(design, rng) * DAY_SECONDS)
        active = active[start[active] < end]
    inter = pd.concat(frames, ignore_index=True)
    inter = inter[inter["timestamp"] < end]
    items = pd.DataFrame({"item_id": np.arange(n_items),
                          "genres": ["|".join(f"g{g}" for g in np.flatnonzero(row)) for row in genres]})
    log = InteractionLog.from_frames(inter, items, None, ColumnMapping(rating="rating", genres="genres"),
                                     name="known-truth")
    # The true counts are indexed by generated id: the log's indices must be those ids.
    assert np.array_equal(log.item_ids.astype(int), np.arange(n_items))
    assert np.array_equal(log.user_ids.astype(int), np.arange(n_users))
    return log, float(end)
