"""The leave hazard: ``P(the session ends after this consumed item | features)``, fitted on logged sessions.

A discrete-time hazard: every consumed item of a logged session (sessions cut at gaps >=
``gap_seconds``, :func:`~recsim_env.data.sessions.sessionize`) is one Bernoulli trial, *ended* when it
is its session's last item. A logistic GLM with an L2 penalty on standardised features, fitted by
Newton's method in numpy (convex, exact, well under a second on ML-100K; no torch import). Features:

=====================  ===========================================================================
``log1p_position``     ``log(1 + p)``, ``p`` the item's 0-based position in its session
``position_a_b``       indicators of ``p`` in the bins of :attr:`LeaveConfig.position_bins`
``rating``             the rating given (left out when the log has no ratings)
``shortfall``          ``max(0, like_threshold - rating)``: how far below a like
``overlap``            cosine of the item's genre vector with the session's genre profile so far (a sum
                       of earlier items' unit genre vectors, decayed by ``overlap_decay`` per item;
                       0 at ``p = 0``): fatigue
``log1p_popularity``   ``log(1 + interactions with the item)`` in the reference (training) log
``log1p_activity``     ``log(1 + interactions of the user before this session)``: known when the session
                       starts (the user's earlier rows of the log, plus the reference log's count of
                       them for a later log; a simulated user: its start activity, by default that of
                       a training session drawn from :attr:`LeaveHazard.session_starts`, plus what it
                       consumed in earlier simulated sessions). It never counts the session itself or
                       anything after it, which would tell the hazard how long the session runs.
``first_session``      1 in a user's first session (``activity`` 0), else 0; with ``first_log1p_position``
``first_position_a_b`` and ``first_position_a_b``, the position basis times it: the first session has a
                       position curve of its own (on ML-100K a user's first session is the sign-up, where
                       at least 20 ratings are asked for: it almost never ends early; held-out log-loss
                       0.1197 -> 0.1168 with it)
=====================  ===========================================================================

Censoring: a session whose last logged item lies within ``gap_seconds`` of the log's end may still
have been going on when the log stopped; that item's outcome is unknown, so it leaves the likelihood
(its earlier items, which the user did continue after, stay in). Every other session end is an
observed leave: by the definition of a session, the user did nothing for ``gap_seconds``. A log
without timestamps (row numbers instead) has one session per user, its whole history, none censored.

What the logs cannot show, and so stays an *assumed* parameter: leaving after a step *without* a click
(ML-100K has no impressions; every logged row is a consumed item). :attr:`LeaveHazard.no_click_probability`
is :attr:`LeaveConfig.no_click_leave` (default 0: the fitted hazard of a consumed item is already the
probability that no other item follows, whatever was shown and ignored in between), or with ``None``
the constant hazard of consumed items ("an ignored slate ends a session as often as an average
consumed item"); ``meta["no_click_source"]`` says which.

A log that shows a single outcome (every observed item ends its session, as when all gaps exceed
``gap_seconds``, or none does) cannot fit any feature: :func:`fit_leave_hazard` raises a
:class:`DataError`, or with ``constant_if_degenerate`` returns the smoothed constant hazard
``(ends + 1) / (observed + 2)`` and says so in ``meta["source"]``.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.data.sessions import DAY_SECONDS, DEFAULT_GAP_SECONDS, sessionize
from recsim_env.errors import ArtifactError, ConfigError, DataError
from recsim_env.fit.artifacts import check_kind, load_parts, save_parts

logger = logging.getLogger(__name__)

BLOCK_ROWS = 65_536
"""Rows per block of the hazard's fit: its sums over the design never hold more than this many rows'
temporaries (5.8 MB of an 11-feature design)."""

FORMAT_VERSION = 5
"""Bumped whenever the saved arrays or their meaning change; other versions are refused on load (a cached
fitted model of another version is refitted).
2: ``log1p_activity`` counts the user's interactions before the session (was: outside it, which leaked
the session's own length and the user's future).
3: ``session_starts`` / ``session_start_offsets``, each logged user's activity at its sessions' starts
(the session env draws a simulated session's start activity from them).
4: ``session_start_days``, days from the user's first interaction to each of those sessions' starts (the
session env draws a whole training session's start state: its user, activity, sessions so far and days).
5: the first session's own position curve (``first_session``, ``first_log1p_position``, ``first_position_*``)."""


@dataclass(frozen=True)
class LeaveConfig:
    """How sessions are cut, which features the hazard has and how it is fitted."""

    gap_seconds: float = DEFAULT_GAP_SECONDS
    """Seconds of inactivity (>=) that end a session."""
    like_threshold: float = 4.0
    """A rating >= this is a like; the ``shortfall`` feature is the distance below it."""
    overlap_decay: float = 0.7
    """Per-item factor by which the session's genre profile fades (the fitted model's ``fatigue_decay``)."""
    position_bins: tuple[int, ...] = (1, 3, 6, 11)
    """Right edges of the position indicator bins ``[0, 1), [1, 3), [3, 6), [6, 11)``; beyond the last
    edge only ``log1p_position`` varies."""
    l2: float = 1e-4
    """L2 penalty on the standardised coefficients (not the intercept), per row of the mean log-loss."""
    max_iterations: int = 100
    """Newton steps at most."""
    no_click_leave: float | None = 0.0
    """Assumed leave probability after a step without a click (``None``: the fitted constant hazard).
    0 by default: a log of consumed items cuts a session after its last consumed item, so the fitted
    hazard already is the whole probability of leaving before the next consumed item, ignored slates
    in between included; a positive value adds leaves on top of those the log shows."""

    def __post_init__(self) -> None:
        for name in ("gap_seconds", "overlap_decay", "l2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise ConfigError(f"LeaveConfig.{name} must be a finite number >= 0, got {value!r}")
        if not self.gap_seconds > 0 or not self.overlap_decay < 1:
            raise ConfigError(f"LeaveConfig needs gap_seconds > 0 and overlap_decay in [0, 1), got "
                              f"{self.gap_seconds!r} and {self.overlap_decay!r}")
        bins = self.position_bins
        if not bins or any(not isinstance(b, int) or b < 1 for b in bins) or list(bins) != sorted(set(bins)):
            raise ConfigError(f"LeaveConfig.position_bins must be increasing positive ints, got {bins!r}")
        if isinstance(self.max_iterations, bool) or not isinstance(self.max_iterations, int) or self.max_iterations < 1:
            raise ConfigError(f"LeaveConfig.max_iterations must be a positive int, got {self.max_iterations!r}")
        if self.no_click_leave is not None and not 0.0 <= self.no_click_leave <= 1.0:
            raise ConfigError(f"LeaveConfig.no_click_leave must be in [0, 1] or None, got {self.no_click_leave!r}")


@dataclass(frozen=True, eq=False)
class LeaveInputs:
    """The raw per-item quantities of a log's consumed items (one entry per row), and their outcomes."""

    user: np.ndarray
    """``(n,)`` int64 user index."""
    position: np.ndarray
    """``(n,)`` int64 0-based position in the session."""
    rating: np.ndarray | None
    """``(n,)`` float64 rating, or ``None`` when the log has no ratings."""
    overlap: np.ndarray
    """``(n,)`` float64 genre overlap with the session so far, in ``[0, 1]``."""
    popularity: np.ndarray
    """``(n,)`` float64 interactions with the item in the reference log."""
    activity: np.ndarray
    """``(n,)`` float64 interactions of the user before this row's session: its earlier rows in the log,
    plus the reference log's count when one is given."""
    start_days: np.ndarray
    """``(n,)`` float64 days from the user's first row of this log to the first row of this row's session."""
    ended: np.ndarray
    """``(n,)`` bool: the item is the last of its session (and the end was observed)."""
    observed: np.ndarray
    """``(n,)`` bool: False for a censored item (its session may have gone on after the log's end)."""


def unit_genres(genres: np.ndarray) -> np.ndarray:
    """Rows of a multi-hot genre matrix scaled to unit length (items without genres stay 0)."""
    norm = np.linalg.norm(genres, axis=1, keepdims=True)
    return (genres / np.maximum(norm, 1e-12)).astype(np.float64)


def session_overlap(unit: np.ndarray, items: np.ndarray, position: np.ndarray, decay: float) -> np.ndarray:
    """Cosine of each item's unit genre vector with its session's decayed genre profile before it.

    Rows are a log's rows (sessions contiguous, ``position`` 0-based). One pass per position, batched
    over all sessions: the profile of a row is ``decay * profile(previous row) + unit(previous item)``.
    Only one position's profiles are held at a time (the whole table is ``(n, G)`` float64, 1.4 GB at
    8M rows and 18 genres, and its product with ``unit[items]`` as much again).
    """
    overlap = np.zeros(len(items))
    order = np.argsort(position, kind="stable")
    bounds = np.searchsorted(position[order], np.arange(int(position.max(initial=0)) + 2))
    previous_rows = order[bounds[0]:bounds[1]] if len(bounds) > 1 else order[:0]
    previous = np.zeros((len(previous_rows), unit.shape[1]))  # position 0: an empty profile, overlap 0
    for step in range(1, len(bounds) - 1):
        rows = order[bounds[step]:bounds[step + 1]]  # increasing, as are the rows before them
        profile = decay * previous[np.searchsorted(previous_rows, rows - 1)] + unit[items[rows - 1]]
        norm = np.linalg.norm(profile, axis=1)
        dot = np.einsum("ng,ng->n", profile, unit[items[rows]])
        overlap[rows] = np.where(norm > 0, dot / np.maximum(norm, 1e-12), 0.0)
        previous_rows, previous = rows, profile
    return overlap


def timestamps_are_row_numbers(times: np.ndarray) -> bool:
    """True when a log's timestamps are its row numbers, as a log loaded without a timestamp column has."""
    return len(times) > 1 and np.array_equal(np.sort(times), np.arange(len(times)))


def _check_end(times: np.ndarray, end_time: float | None, name: str) -> float:
    if end_time is None:
        return float(times.max(initial=0))
    if not np.isfinite(end_time) or end_time < times.max(initial=end_time):
        raise ConfigError(f"{name}: end_time {end_time!r} is before the log's last timestamp {times.max()}")
    return float(end_time)


def leave_inputs(log: InteractionLog, config: LeaveConfig | None = None, item_counts: np.ndarray | None = None,
                 user_counts: np.ndarray | None = None, end_time: float | None = None,
                 item_genres: np.ndarray | None = None) -> LeaveInputs:
    """The raw features and outcomes of every row of ``log`` (see the module docstring).

    Args:
        item_counts: interactions per item in the reference log (pass the training log's for a held-out
            log); ``None``: ``log``'s own, less the row itself.
        user_counts: interactions per user before ``log`` begins (the training log's for a later held-out
            log), added to the user's rows before the session; ``None``: 0 (the log is the start).
        end_time: when the log stopped (epoch seconds); ``None``: its last timestamp.
        item_genres: ``(n_items, G)`` multi-hot genres; ``None``: the log's item table.
    """
    config = config or LeaveConfig()
    inter = log.interactions
    users = inter["user"].to_numpy(np.int64)
    items = inter["item"].to_numpy(np.int64)
    times = inter["timestamp"].to_numpy(np.int64)
    session = sessionize(log, config.gap_seconds)
    n_rows = len(users)
    new_session = np.r_[True, session[1:] != session[:-1]] if n_rows else np.zeros(0, bool)
    position = np.arange(n_rows) - np.maximum.accumulate(np.where(new_session, np.arange(n_rows), 0))
    session_last = np.r_[new_session[1:], True] if n_rows else np.zeros(0, bool)
    user_last = np.r_[users[1:] != users[:-1], True] if n_rows else np.zeros(0, bool)
    end = _check_end(times, end_time, log.name)
    observed = ~(user_last & (end - times < config.gap_seconds))
    if timestamps_are_row_numbers(times):
        # No clock: each user's history is one session, and its end is the user's last row, not the log's.
        logger.info("%s: timestamps are row numbers: each user's history is one session, none censored", log.name)
        observed[:] = True
    if item_counts is None:
        popularity = np.bincount(items, minlength=log.n_items)[items] - 1.0
    else:
        popularity = np.asarray(item_counts, np.float64)[items]
    # Rows are grouped by user in time order: the user's rows before this session are the rows since the
    # user's first, less the session's own rows so far.
    new_user = np.r_[True, users[1:] != users[:-1]] if n_rows else np.zeros(0, bool)
    user_first = np.maximum.accumulate(np.where(new_user, np.arange(n_rows), 0))
    activity = (np.arange(n_rows) - user_first - position).astype(np.float64)
    session_first = np.arange(n_rows) - position
    start_days = (times[session_first] - times[user_first]).astype(np.float64) / DAY_SECONDS
    if user_counts is not None:
        activity += np.asarray(user_counts, np.float64)[users]
    genres = ItemCatalog.from_log(log).genres if item_genres is None else item_genres
    overlap = session_overlap(unit_genres(genres), items, position, config.overlap_decay)
    rating = inter["rating"].to_numpy(np.float64) if "rating" in inter.columns else None
    return LeaveInputs(user=users, position=position.astype(np.int64), rating=rating, overlap=overlap,
                       popularity=popularity.astype(np.float64), activity=activity, start_days=start_days,
                       ended=session_last & observed,
                       observed=observed)


def position_feature_names(bins: tuple[int, ...]) -> tuple[str, ...]:
    """Names of the position basis: ``log1p_position`` and one indicator per bin."""
    edges = (0,) + tuple(bins)
    indicators = tuple(f"position_{low}" if high - low == 1 else f"position_{low}_{high - 1}"
                       for low, high in itertools.pairwise(edges))
    return ("log1p_position",) + indicators


def first_session_feature_names(bins: tuple[int, ...]) -> tuple[str, ...]:
    """Names of the first session's own position curve: its indicator and the position basis times it."""
    return ("first_session",) + tuple(f"first_{name}" for name in position_feature_names(bins))


def feature_names(config: LeaveConfig, has_rating: bool) -> tuple[str, ...]:
    """Every feature of the full hazard, in design-column order."""
    rating = ("rating", "shortfall") if has_rating else ()
    return (position_feature_names(config.position_bins) + rating + ("overlap", "log1p_popularity", "log1p_activity")
            + first_session_feature_names(config.position_bins))


def raw_features(position: np.ndarray, rating: np.ndarray | None, overlap: np.ndarray, popularity: np.ndarray,
                 activity: np.ndarray, like_threshold: float, bins: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Each feature's column (unstandardised), by name; rating columns only when ``rating`` is given."""
    rated = ("rating", "shortfall") if rating is not None else ()
    names = (position_feature_names(tuple(bins)) + rated + ("overlap", "log1p_popularity", "log1p_activity")
             + first_session_feature_names(tuple(bins)))
    return {name: raw_column(name, position, rating, overlap, popularity, activity, like_threshold, bins)
            for name in names}


def raw_column(name: str, position: np.ndarray, rating: np.ndarray | None, overlap: np.ndarray,
               popularity: np.ndarray, activity: np.ndarray, like_threshold: float,
               bins: tuple[int, ...]) -> np.ndarray:
    """One feature's column (unstandardised, float64) by its name in :func:`feature_names`."""
    if name == "first_session":
        return (np.asarray(activity) == 0).astype(np.float64)
    if name.startswith("first_"):
        first = np.asarray(activity) == 0
        return np.where(first, raw_column(name[len("first_"):], position, rating, overlap, popularity, activity,
                                          like_threshold, bins), 0.0)
    if name == "log1p_position":
        return np.log1p(np.asarray(position, np.float64))
    if name.startswith("position_"):
        edges = (0,) + tuple(bins)
        low, high = dict(zip(position_feature_names(bins)[1:], itertools.pairwise(edges)))[name]
        return ((position >= low) & (position < high)).astype(np.float64)
    if name in ("rating", "shortfall"):
        rating = np.asarray(rating, np.float64)
        return rating if name == "rating" else np.maximum(like_threshold - rating, 0.0)
    if name == "overlap":
        return np.asarray(overlap, np.float64)
    if name == "log1p_popularity":
        return np.log1p(np.asarray(popularity, np.float64))
    if name == "log1p_activity":
        return np.log1p(np.asarray(activity, np.float64))
    raise ConfigError(f"unknown leave hazard feature {name!r}")


def raw_design(names: tuple[str, ...], position: np.ndarray, rating: np.ndarray | None, overlap: np.ndarray,
               popularity: np.ndarray, activity: np.ndarray, like_threshold: float,
               bins: tuple[int, ...]) -> np.ndarray:
    """``(n, F)`` float64 raw design, columns ``names``, filled one column at a time (a dict of columns
    and then their stack would hold the design twice: 0.7 GB each at 8M rows)."""
    design = np.empty((len(np.asarray(position)), len(names)))
    for column, name in enumerate(names):
        design[:, column] = raw_column(name, position, rating, overlap, popularity, activity, like_threshold, bins)
    return design


def standardise(design: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(design - mean) / scale`` in place (no copy of the design); returns ``design``."""
    design -= mean
    design /= scale
    return design


def column_moments(design: np.ndarray, block_rows: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard deviation) of each column, over blocks of rows (two passes; ``design.std`` would
    make a centred copy of the whole design)."""
    n_rows = max(len(design), 1)
    total = np.zeros(design.shape[1])
    for start in range(0, len(design), block_rows):
        total += design[start:start + block_rows].sum(axis=0)
    mean = total / n_rows
    squares = np.zeros(design.shape[1])
    for start in range(0, len(design), block_rows):
        squares += ((design[start:start + block_rows] - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(squares / n_rows)


@dataclass(frozen=True, eq=False)
class LeaveHazard:
    """A fitted (or hand-set) leave hazard: ``P(leave) = sigmoid(intercept + design · coefficients)``.

    ``design`` is the standardised feature matrix :meth:`features` builds from raw arrays, so a
    simulator calls ``probability(features(...))`` on a whole batch of consumed items at once.
    """

    feature_names: tuple[str, ...]
    """Design columns, in order."""
    intercept: float
    """Log-odds of leaving at the mean of every feature."""
    coefficients: np.ndarray
    """``(F,)`` log-odds per standard deviation of each feature."""
    feature_mean: np.ndarray
    """``(F,)`` mean of each raw feature on the fitting rows."""
    feature_scale: np.ndarray
    """``(F,)`` standard deviation of each raw feature on the fitting rows (1 where constant)."""
    covariance: np.ndarray
    """``(F + 1, F + 1)`` covariance of ``(intercept, coefficients)`` (inverse penalised Hessian)."""
    item_counts: np.ndarray
    """``(I,)`` interactions per item in the fitting log: the popularity of an item a simulator shows."""
    user_counts: np.ndarray
    """``(U,)`` interactions per user in the fitting log: the activity before a lifetime's first simulated
    session (a simulated user there continues its logged user)."""
    session_starts: np.ndarray
    """``(S,)`` float64 ``log1p_activity``'s raw value (interactions before the session) at the start of
    every session of the fitting log, grouped by user in time order: the empirical start-state
    distribution the session env draws a simulated session's activity from."""
    session_start_offsets: np.ndarray
    """``(U + 1,)`` int64: user ``u``'s session starts are ``session_starts[offsets[u]:offsets[u + 1]]``."""
    session_start_days: np.ndarray
    """``(S,)`` float64 days from the user's first interaction in the fitting log to each of those sessions'
    first interaction (with the session's index within its user, the return model's ``sessions so far``:
    the rest of a training session's start state)."""
    like_threshold: float = 4.0
    """As :attr:`LeaveConfig.like_threshold`."""
    overlap_decay: float = 0.7
    """As :attr:`LeaveConfig.overlap_decay`: a simulator's genre profile must fade at this rate."""
    position_bins: tuple[int, ...] = (1, 3, 6, 11)
    """As :attr:`LeaveConfig.position_bins`."""
    gap_seconds: float = DEFAULT_GAP_SECONDS
    """The session gap the hazard was fitted with."""
    no_click_probability: float = 0.0
    """Assumed (never fitted) probability of leaving after a step without a click."""
    meta: dict = field(default_factory=dict)
    """Provenance: dataset, fingerprint, rows, events, censored rows, fit seconds, training log-loss."""

    @property
    def has_rating(self) -> bool:
        return "rating" in self.feature_names

    def features(self, position: np.ndarray, rating: np.ndarray | None, overlap: np.ndarray,
                 popularity: np.ndarray, activity: np.ndarray) -> np.ndarray:
        """``(n, F)`` standardised design of ``n`` consumed items from their raw ``(n,)`` quantities.

        Args:
            position: 0-based position of the item in its session.
            rating: the rating given (``None`` only for a hazard fitted without ratings).
            overlap: cosine of the item's genres with the session's decayed genre profile (see
                :func:`session_overlap`; the profile must fade by :attr:`overlap_decay`).
            popularity: interactions with the item in the reference log (``item_counts[items]``).
            activity: interactions of the user before this session (for a simulated logged user
                ``user_counts[users]`` plus its items of earlier simulated sessions).
        """
        if self.has_rating and rating is None:
            raise ConfigError("LeaveHazard.features: this hazard was fitted with ratings; pass rating")
        raw = raw_design(self.feature_names, position, rating if self.has_rating else None, overlap, popularity,
                         activity, self.like_threshold, self.position_bins)
        return standardise(raw, self.feature_mean, self.feature_scale)

    def features_for(self, users: np.ndarray, items: np.ndarray, position: np.ndarray, rating: np.ndarray | None,
                     overlap: np.ndarray, earlier: np.ndarray | float = 0.0) -> np.ndarray:
        """:meth:`features` with popularity and activity looked up from the fitting log's counts; ``earlier``:
        the users' items of sessions after the log and before this one (0 in a first simulated session)."""
        return self.features(position, rating, overlap, self.item_counts[np.asarray(items)],
                             self.user_counts[np.asarray(users)] + np.asarray(earlier, np.float64))

    def design(self, inputs: LeaveInputs) -> np.ndarray:
        """:meth:`features` of a log's rows (:func:`leave_inputs`)."""
        return self.features(inputs.position, inputs.rating, inputs.overlap, inputs.popularity, inputs.activity)

    def probability(self, design: np.ndarray) -> np.ndarray:
        """``(n,)`` float64 probability that each item is its session's last."""
        return expit(self.intercept + np.asarray(design, np.float64) @ self.coefficients)

    def sample_leaves(self, design: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n,)`` bool: which users leave after these items (one uniform draw each)."""
        return rng.random(len(design)) < self.probability(design)

    def raw_coefficients(self) -> tuple[float, dict[str, float], float, dict[str, float]]:
        """(intercept, coefficient per raw feature unit, and their standard errors) on the raw scale."""
        transform = self._raw_transform()
        params = transform @ np.r_[self.intercept, self.coefficients]
        errors = np.sqrt(np.maximum(np.diag(transform @ self.covariance @ transform.T), 0.0))
        names = self.feature_names
        return (float(params[0]), dict(zip(names, params[1:].tolist())), float(errors[0]),
                dict(zip(names, errors[1:].tolist())))

    def _raw_transform(self) -> np.ndarray:
        """Linear map from (intercept, standardised coefficients) to the raw-scale parameters."""
        n_features = len(self.feature_names)
        transform = np.zeros((n_features + 1, n_features + 1))
        transform[0, 0] = 1.0
        transform[0, 1:] = -self.feature_mean / self.feature_scale
        transform[1:, 1:] = np.diag(1.0 / self.feature_scale)
        return transform

    @classmethod
    def from_raw(cls, intercept: float, coefficients: dict[str, float], item_counts: np.ndarray,
                 user_counts: np.ndarray, config: LeaveConfig | None = None,
                 session_starts: tuple[np.ndarray, np.ndarray] | None = None) -> LeaveHazard:
        """A hand-set hazard on raw features (ground truth for synthetic logs); unnamed features get 0.

        ``session_starts``: ``(starts, offsets)`` or ``(starts, offsets, days)`` as :attr:`session_starts`,
        :attr:`session_start_offsets` and :attr:`session_start_days` (days default to 0); ``None``: one start
        per user, at its ``user_counts`` and day 0 (every simulated session starts at the total).
        """
        config = config or LeaveConfig()
        if session_starts is None:
            session_starts = (np.asarray(user_counts, np.float64), np.arange(len(user_counts) + 1))
        if len(session_starts) == 2:
            session_starts = (*session_starts, np.zeros(len(session_starts[0])))
        names = feature_names(config, has_rating=any(k in coefficients for k in ("rating", "shortfall")))
        unknown = set(coefficients) - set(names)
        if unknown:
            raise ConfigError(f"LeaveHazard.from_raw: unknown feature(s) {sorted(unknown)}; known: {list(names)}")
        n_features = len(names)
        return cls(names, float(intercept), np.array([coefficients.get(k, 0.0) for k in names], np.float64),
                   np.zeros(n_features), np.ones(n_features), np.zeros((n_features + 1, n_features + 1)),
                   np.asarray(item_counts, np.float64), np.asarray(user_counts, np.float64),
                   *_start_arrays(*session_starts, len(user_counts), "LeaveHazard.from_raw"),
                   config.like_threshold, config.overlap_decay, tuple(config.position_bins), config.gap_seconds,
                   config.no_click_leave or 0.0, {"source": "hand-set"})

    # ------------------------------------------------------------------ artifact
    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able header, plain arrays): what :meth:`save` writes, and what a fitted user model's
        artifact embeds (read back with :meth:`from_parts`)."""
        header = {"format_version": FORMAT_VERSION, "kind": "leave_hazard", "feature_names": list(self.feature_names),
                  "intercept": self.intercept, "like_threshold": self.like_threshold,
                  "overlap_decay": self.overlap_decay, "position_bins": list(self.position_bins),
                  "gap_seconds": self.gap_seconds, "no_click_probability": self.no_click_probability,
                  "meta": self.meta}
        return header, {name: getattr(self, name) for name in ARRAY_FIELDS}

    @classmethod
    def from_parts(cls, header: dict, arrays: dict[str, np.ndarray], where: str) -> LeaveHazard:
        """:meth:`to_parts`' output back; :class:`ArtifactError` naming ``where`` on another kind or format."""
        _check_kind(header, where)
        n_features = len(header["feature_names"])
        shapes = {"coefficients": (n_features,), "feature_mean": (n_features,), "feature_scale": (n_features,),
                  "covariance": (n_features + 1, n_features + 1)}
        for name, shape in shapes.items():
            if arrays[name].shape != shape:
                raise ArtifactError(f"{where}: leave hazard array {name!r} has shape {arrays[name].shape}, expected "
                                    f"{shape} for {n_features} features; the artifact is damaged: refit it")
        starts = _start_arrays(arrays["session_starts"], arrays["session_start_offsets"], arrays["session_start_days"],
                               len(arrays["user_counts"]), f"{where}: the artifact is damaged, refit it;")
        return cls(tuple(header["feature_names"]), float(header["intercept"]), arrays["coefficients"],
                   arrays["feature_mean"], arrays["feature_scale"], arrays["covariance"], arrays["item_counts"],
                   arrays["user_counts"], *starts, header["like_threshold"], header["overlap_decay"],
                   tuple(header["position_bins"]), header["gap_seconds"], header["no_click_probability"],
                   header["meta"])

    def save(self, path: str | Path) -> Path:
        """Write plain arrays and a JSON header to ``.npz`` (read back with ``allow_pickle=False``)."""
        header, arrays = self.to_parts()
        return save_parts(path, header, arrays)

    @classmethod
    def load(cls, path: str | Path) -> LeaveHazard:
        """Read :meth:`save`'s file; :class:`ArtifactError` on another kind or format version."""
        header, arrays = load_parts(path, "leave_hazard", FORMAT_VERSION, ARRAY_FIELDS, "leave hazard")
        return cls.from_parts(header, arrays, str(path))


def _check_kind(header: dict, where: str) -> None:
    check_kind(header, where, "leave_hazard", FORMAT_VERSION)


ARRAY_FIELDS = ("coefficients", "feature_mean", "feature_scale", "covariance", "item_counts", "user_counts",
                "session_starts", "session_start_offsets", "session_start_days")
"""The array fields of :class:`LeaveHazard`, saved as they are."""


def _start_arrays(starts: np.ndarray, offsets: np.ndarray, days: np.ndarray, n_users: int,
                  where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(starts, offsets, days)`` checked as a CSR of per-user session start states over ``n_users`` users."""
    starts, offsets, days = np.asarray(starts, np.float64), np.asarray(offsets), np.asarray(days, np.float64)
    if (offsets.shape != (n_users + 1,) or not np.issubdtype(offsets.dtype, np.integer) or offsets[0] != 0
            or offsets[-1] != len(starts) or starts.ndim != 1 or (np.diff(offsets) < 0).any()
            or days.shape != starts.shape or not (np.isfinite(starts).all() and np.isfinite(days).all())
            or (starts < 0).any() or (days < 0).any()):
        raise ArtifactError(f"{where} session starts must be a CSR over {n_users} users: offsets (U + 1,) "
                            f"ints from 0 rising to len(starts), starts and days finite >= 0 and one per start; "
                            f"got offsets of shape {offsets.shape}, {starts.shape} starts and {days.shape} days")
    return starts, offsets.astype(np.int64), days


def session_start_activity(inputs: LeaveInputs, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(starts, offsets, days)``: the activity before every session of ``inputs`` (its rows at position 0,
    censored sessions included: their start is known), as a CSR grouped by user in time order, and the
    days from the user's first row to each session's start."""
    first = np.flatnonzero(inputs.position == 0)
    users = inputs.user[first]
    order = np.argsort(users, kind="stable")  # rows are grouped by user already; stable keeps time order
    offsets = np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))].astype(np.int64)
    return (inputs.activity[first][order].astype(np.float64), offsets,
            inputs.start_days[first][order].astype(np.float64))


# ---------------------------------------------------------------------------- fitting
def _logistic_newton(design: np.ndarray, labels: np.ndarray, l2: float, max_iterations: int,
                     block_rows: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray, bool]:
    """Penalised logistic regression: (params [intercept, coefficients], covariance, converged).

    The gradient, Hessian and objective are sums over blocks of ``block_rows`` rows, so neither the
    design with its column of ones nor its weighted copy exists whole (0.7 GB each at 8M x 11).
    """
    n_rows = len(labels)
    penalty = np.full(design.shape[1] + 1, l2)
    penalty[0] = 0.0  # the intercept carries the base rate: never shrunk
    rate = np.clip(labels.mean(), 1e-6, 1 - 1e-6)
    params = np.zeros(design.shape[1] + 1)
    params[0] = np.log(rate / (1 - rate))

    def blocks():
        for start in range(0, n_rows, block_rows):
            rows = slice(start, start + block_rows)
            yield design[rows], labels[rows]

    def objective(candidate: np.ndarray) -> float:
        total = 0.0
        for block, block_labels in blocks():
            logits = candidate[0] + block @ candidate[1:]
            total += float(np.sum(np.logaddexp(0.0, logits) - block_labels * logits))
        return total / n_rows + 0.5 * float(penalty @ candidate ** 2)

    converged = False
    for _ in range(max_iterations):
        gradient, hessian = _newton_terms(blocks(), params, design.shape[1])
        gradient = gradient / n_rows + penalty * params
        hessian = hessian / n_rows + np.diag(penalty)
        if np.max(np.abs(gradient)) < 1e-9:
            converged = True
            break
        step = np.linalg.solve(hessian + 1e-12 * np.eye(len(params)), gradient)
        current, size = objective(params), 1.0
        while objective(params - size * step) > current and size > 1e-8:  # backtracking: Newton may overshoot
            size /= 2
        params = params - size * step
    covariance = np.linalg.pinv(hessian * n_rows)
    return params, covariance, converged


def _newton_terms(blocks, params: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Unnormalised ``X^T (p - y)`` and ``X^T W X`` (``X`` the design with a leading column of ones,
    ``W = diag(p (1 - p))``) summed over ``blocks`` of (design rows, labels)."""
    gradient = np.zeros(n_features + 1)
    hessian = np.zeros((n_features + 1, n_features + 1))
    for block, block_labels in blocks:
        prob = expit(params[0] + block @ params[1:])
        residual = prob - block_labels
        weight = prob * (1 - prob)
        gradient[0] += residual.sum()
        gradient[1:] += block.T @ residual
        cross = block.T @ weight
        hessian[0, 0] += weight.sum()
        hessian[0, 1:] += cross
        hessian[1:, 0] += cross
        hessian[1:, 1:] += (block.T * weight) @ block
    return gradient, hessian


def _no_click(config: LeaveConfig, constant: float) -> tuple[float, str]:
    """(assumed no-click leave probability, where it comes from)."""
    if config.no_click_leave is None:
        return constant, "assumed: the constant hazard of consumed items (LeaveConfig.no_click_leave=None)"
    return float(config.no_click_leave), f"assumed: LeaveConfig.no_click_leave = {config.no_click_leave:g}"


def fit_hazard(inputs: LeaveInputs, names: tuple[str, ...], config: LeaveConfig, item_counts: np.ndarray,
               user_counts: np.ndarray, meta: dict | None = None) -> LeaveHazard:
    """Fit a hazard with the features ``names`` on the observed rows of ``inputs``.

    ``names=()`` is the constant hazard, :func:`position_feature_names` the position-only one.
    """
    rows = np.flatnonzero(inputs.observed)
    labels = inputs.ended[rows].astype(np.float64)
    if rows.size == 0 or labels.min() == labels.max():
        raise DataError(f"{(meta or {}).get('dataset', 'log')}: the leave hazard needs observed items that "
                        f"end a session and items that are followed by another; got {int(labels.sum())} "
                        f"session end(s) among {rows.size} observed item(s)")
    if inputs.rating is None and any(k in names for k in ("rating", "shortfall")):
        raise DataError(f"{(meta or {}).get('dataset', 'log')}: the leave hazard's rating features need a "
                        f"rating column; the log has none")
    design = raw_design(names, inputs.position[rows], None if inputs.rating is None else inputs.rating[rows],
                        inputs.overlap[rows], inputs.popularity[rows], inputs.activity[rows], config.like_threshold,
                        config.position_bins)
    mean, scale = column_moments(design)
    scale = np.where(scale > 1e-12, scale, 1.0)
    params, covariance, converged = _logistic_newton(standardise(design, mean, scale), labels, config.l2,
                                                     config.max_iterations)
    if not converged:
        logger.warning("leave hazard: Newton's method stopped after %d steps before converging", config.max_iterations)
    constant = float(labels.mean())
    no_click, no_click_source = _no_click(config, constant)
    meta = dict(meta or {}) | {"rows": int(rows.size), "events": int(labels.sum()),
                               "censored": int((~inputs.observed).sum()), "constant_hazard": constant,
                               "converged": converged, "no_click_source": no_click_source}
    return LeaveHazard(tuple(names), float(params[0]), params[1:], mean, scale, covariance,
                       np.asarray(item_counts, np.float64), np.asarray(user_counts, np.float64),
                       *session_start_activity(inputs, len(user_counts)),
                       config.like_threshold, config.overlap_decay, tuple(config.position_bins), config.gap_seconds,
                       float(no_click), meta)


def default_feature_names(config: LeaveConfig, inputs: LeaveInputs) -> tuple[str, ...]:
    """:func:`feature_names`, less the first session's curve where the observed rows are all of first sessions
    (a log without timestamps: one session per user; the curve would copy the position basis) or none are."""
    names = feature_names(config, inputs.rating is not None)
    first = inputs.activity[inputs.observed] == 0
    if first.all() or not first.any():
        names = tuple(n for n in names if n not in first_session_feature_names(config.position_bins))
    return names


def fit_leave_hazard(log: InteractionLog, config: LeaveConfig | None = None, names: tuple[str, ...] | None = None,
                     end_time: float | None = None, constant_if_degenerate: bool = False) -> LeaveHazard:
    """Fit the leave hazard on ``log`` (pass the training split); ``names`` default to every feature.

    ``constant_if_degenerate``: where the log shows a single outcome, return :func:`smoothed_constant`
    (with a warning) instead of raising :class:`DataError`.
    """
    config = config or LeaveConfig()
    began = time.perf_counter()
    inputs = leave_inputs(log, config, end_time=end_time)
    names = default_feature_names(config, inputs) if names is None else tuple(names)
    item_counts = np.bincount(log.interactions["item"].to_numpy(), minlength=log.n_items)
    user_counts = np.bincount(log.interactions["user"].to_numpy(), minlength=log.n_users)
    meta = {"dataset": log.name, "fingerprint": log.fingerprint()}
    if constant_if_degenerate and single_outcome(inputs):
        hazard = smoothed_constant(inputs, config, item_counts, user_counts, meta)
        logger.warning("%s: %s", log.name, hazard.meta["source"])
    else:
        hazard = fit_hazard(inputs, names, config, item_counts, user_counts, meta)
        hazard.meta["source"] = "fitted"
    hazard.meta["fit_seconds"] = time.perf_counter() - began
    hazard.meta["train_log_loss"] = log_loss(hazard.probability(hazard.design(inputs)), inputs)
    return hazard


def single_outcome(inputs: LeaveInputs) -> bool:
    """True when the observed items of ``inputs`` all ended their sessions, or none did (or none is observed)."""
    ended = inputs.ended[inputs.observed]
    return ended.size == 0 or bool(ended.all()) or not ended.any()


def smoothed_constant(inputs: LeaveInputs, config: LeaveConfig, item_counts: np.ndarray, user_counts: np.ndarray,
                      meta: dict | None = None) -> LeaveHazard:
    """The constant hazard ``(ends + 1) / (observed + 2)`` (Laplace's rule of succession: never exactly 0
    or 1, so a simulated session neither never ends nor always ends at its first item)."""
    observed = int(inputs.observed.sum())
    events = int(inputs.ended[inputs.observed].sum())
    rate = (events + 1) / (observed + 2)
    no_click, no_click_source = _no_click(config, rate)
    source = (f"constant fallback: {events} of {observed} observed items end their session, a single outcome "
              f"that no feature can be fitted on; hazard (ends + 1) / (observed + 2) = {rate:.4f}")
    meta = dict(meta or {}) | {"rows": observed, "events": events, "censored": int((~inputs.observed).sum()),
                               "constant_hazard": rate, "converged": True, "source": source,
                               "no_click_source": no_click_source}
    return LeaveHazard((), float(np.log(rate / (1 - rate))), np.zeros(0), np.zeros(0), np.ones(0), np.zeros((1, 1)),
                       np.asarray(item_counts, np.float64), np.asarray(user_counts, np.float64),
                       *session_start_activity(inputs, len(user_counts)), config.like_threshold,
                       config.overlap_decay, tuple(config.position_bins), config.gap_seconds, float(no_click), meta)


def log_loss(probability: np.ndarray, inputs: LeaveInputs) -> float:
    """Mean negative log-likelihood (nats) of the observed rows' outcomes."""
    rows = inputs.observed
    prob = np.clip(np.broadcast_to(probability, inputs.ended.shape)[rows], 1e-12, 1 - 1e-12)
    ended = inputs.ended[rows]
    return float(-np.mean(np.where(ended, np.log(prob), np.log1p(-prob))))


# ---------------------------------------------------------------------------- held-out figures
def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of binomial proportions (NaN where ``trials`` is 0)."""
    trials = np.asarray(trials, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.asarray(successes, np.float64) / trials
        centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
        half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


@dataclass(frozen=True, eq=False)
class HazardTable:
    """The hazard by one key (rating or position): logged share with 95 % intervals beside a model's."""

    key: str
    """What the rows are grouped by."""
    values: np.ndarray
    """``(K,)`` key value of each row."""
    at_risk: np.ndarray
    """``(K,)`` observed items with that key."""
    leaves: np.ndarray
    """``(K,)`` of those, items that ended their session."""
    logged: np.ndarray
    """``(K,)`` ``leaves / at_risk`` (NaN where none at risk)."""
    low: np.ndarray
    """``(K,)`` lower end of the Wilson 95 % interval."""
    high: np.ndarray
    """``(K,)`` upper end of the Wilson 95 % interval."""
    predicted: np.ndarray
    """``(K,)`` mean predicted hazard over the same items (NaN where none)."""

    def rows(self) -> list[dict[str, float]]:
        """One plain dict per key value (for a report)."""
        return [{self.key: float(v), "at_risk": int(n), "leaves": int(k), "logged": float(p), "low": float(lo),
                 "high": float(hi), "predicted": float(q)}
                for v, n, k, p, lo, hi, q in zip(self.values, self.at_risk, self.leaves, self.logged, self.low,
                                                 self.high, self.predicted)]


def hazard_table(key: str, keys: np.ndarray, ended: np.ndarray, predicted: np.ndarray,
                 values: np.ndarray) -> HazardTable:
    """Group observed items by ``keys`` (items whose key is not in ``values`` are left out)."""
    values = np.asarray(values)
    index = np.minimum(np.searchsorted(values, keys), max(len(values) - 1, 0))
    hit = values[index] == keys if len(values) else np.zeros(len(keys), dtype=bool)
    at_risk = np.bincount(index[hit], minlength=len(values))
    leaves = np.bincount(index[hit], weights=ended[hit].astype(np.float64), minlength=len(values))
    mass = np.bincount(index[hit], weights=predicted[hit], minlength=len(values))
    low, high = wilson_interval(leaves, at_risk)
    with np.errstate(invalid="ignore", divide="ignore"):
        return HazardTable(key, values, at_risk, leaves.astype(np.int64), leaves / at_risk, low, high, mass / at_risk)


def hazard_tables(hazard: LeaveHazard, inputs: LeaveInputs, max_position: int = 20,
                  ratings: np.ndarray | None = None) -> dict[str, HazardTable]:
    """Logged against predicted hazard by rating (positions ``0..max_position``; the rows are ``ratings``,
    default the log's own) and by position."""
    rows = inputs.observed
    predicted = hazard.probability(hazard.design(inputs))[rows]
    position, ended = inputs.position[rows], inputs.ended[rows]
    tables = {"position": hazard_table("position", position, ended, predicted, np.arange(max_position + 1))}
    if inputs.rating is not None:
        early = position <= max_position
        rating = inputs.rating[rows][early]
        values = np.unique(rating) if ratings is None else np.asarray(ratings)
        tables["rating"] = hazard_table("rating", rating, ended[early], predicted[early], values)
    return tables


@dataclass(frozen=True, eq=False)
class LeaveValidation:
    """Held-out figures of a leave hazard against the simpler hazards fitted on the same training rows."""

    log_loss: dict[str, float]
    """Held-out mean log-loss (nats per observed item) of ``constant``, ``position`` and ``full``."""
    train_log_loss: dict[str, float]
    """The same on the training rows."""
    tables: dict[str, HazardTable]
    """Held-out logged vs full-model hazard by ``rating`` and ``position`` (:func:`hazard_tables`)."""
    train_tables: dict[str, HazardTable]
    """The same on the training log (the rows the hazard was fitted on), by the held-out table's ratings."""
    rows: int
    """Observed held-out items."""
    events: int
    """Of those, session ends."""


def validate_leave_hazard(hazard: LeaveHazard, train: InteractionLog, test: InteractionLog,
                          config: LeaveConfig | None = None, max_position: int = 20) -> LeaveValidation:
    """Score ``hazard`` (fitted on ``train``) on ``test`` beside constant and position-only hazards.

    The held-out rows take popularity from the training counts the hazard carries, and activity from the
    user's training count plus their held-out rows before the session.
    """
    config = config or LeaveConfig(gap_seconds=hazard.gap_seconds, like_threshold=hazard.like_threshold,
                                   overlap_decay=hazard.overlap_decay, position_bins=hazard.position_bins)
    train_inputs = leave_inputs(train, config)
    test_inputs = leave_inputs(test, config, hazard.item_counts, hazard.user_counts)
    if single_outcome(train_inputs):  # no feature can be fitted: every baseline is the smoothed constant
        constant = smoothed_constant(train_inputs, config, hazard.item_counts, hazard.user_counts)
        models = {"constant": constant, "position": constant, "full": hazard}
    else:
        models = {"constant": fit_hazard(train_inputs, (), config, hazard.item_counts, hazard.user_counts),
                  "position": fit_hazard(train_inputs, position_feature_names(config.position_bins), config,
                                         hazard.item_counts, hazard.user_counts),
                  "full": hazard}
    held_out = {name: log_loss(model.probability(model.design(test_inputs)), test_inputs)
                for name, model in models.items()}
    trained = {name: log_loss(model.probability(model.design(train_inputs)), train_inputs)
               for name, model in models.items()}
    tables = hazard_tables(hazard, test_inputs, max_position)
    ratings = tables["rating"].values if "rating" in tables else None
    return LeaveValidation(held_out, trained, tables, hazard_tables(hazard, train_inputs, max_position, ratings),
                           int(test_inputs.observed.sum()), int(test_inputs.ended.sum()))
