"""`FittedUserModel`: users simulated from parameters fitted to logs (see :mod:`recsim_env.fit.pipeline`).

One simulated user is drawn from one logged user and keeps that user's fitted preference. Per step:

* **Utility** of item ``i``: ``(p_u + γ·h)·v_i + b_i - φ·(g_i·F) - ρ·[i consumed recently]``, where
  ``p_u`` is the static preference, ``h`` the interest vector that drifts toward consumed items
  (``h <- (1-η)·h + η·v_i`` on each click), ``g_i`` the item's L2-normalised genre vector, ``F`` the
  fatigue vector (decays by ``fatigue_decay`` each step, ``+= g_i`` on each click) and ``ρ`` the
  penalty on re-showing one of the last ``recent_len`` consumed items.
* **Choice**: :class:`~recsim_env.users.choice.MultinomialLogit` with a no-click option and position bias.
* **Responses** to the clicked item: rating = fitted explicit-rating model + Gaussian noise with the
  fitted residual std, clipped to the logged scale and rounded to its step; like = rating >= the like
  threshold; dwell from a fitted log-normal when the log had dwell, else 0 (never invented).
  Logs without ratings give rating 0 and like 0.
* **Leaving** (the fitted leave hazard, :mod:`recsim_env.fit.leave`): after each consumed item the
  session ends with the hazard's probability given the item's 0-based position in the session, the
  rating given and its shortfall below the like threshold, the item's genre overlap with the session so
  far (a profile fading by the hazard's ``overlap_decay`` per item), the item's popularity and the
  user's activity before the session: its start activity plus the items of the simulated user's earlier
  sessions. The start (:attr:`FittedUserModel.start_activity`) is by default a training session drawn
  uniformly from all of them, with its user and its state before it (interactions, sessions so far, days
  since the first): the simulated start states are distributed as the training log's, the sessions the
  hazard and the return model were fitted on (one integer per new user from the users' stream). A
  lifetime env starts at the logged user's whole history instead (``"total"``,
  :meth:`FittedUserModel.for_lifetime`): its user continues the logged one, as its interest vector does.
  ``"drawn"`` (a uniform user at one of its own session starts) is kept for comparison. A step without a
  click ends it with the *assumed*
  no-click probability (:attr:`~recsim_env.fit.leave.LeaveHazard.no_click_probability`, 0 by default:
  a log of consumed items cannot show it). The draws are one ``Exp(1)`` leave clock per session that
  each step spends (see :mod:`recsim_env.users.fitted_longterm`): the same hazard as a Bernoulli draw
  per item, with common random numbers across policies.
* **Coming back** (the fitted return model, :mod:`recsim_env.fit.returns`; a
  :class:`~recsim_env.protocols.ReturningUserModel`): :meth:`FittedUserModel.return_gaps` draws the
  days to the next session from the ended session's length, mean rating, shares of liked and disliked
  items and genre diversity, the user's sessions so far and days since the first one; a simulated user
  continues a logged one (their logged sessions and time span count). :meth:`FittedUserModel.start_session`
  opens the next session: the user keeps interest and consumption memory, fatigue and the session's
  totals start afresh. A log without timestamps or with one session per user fits no return model:
  the session env works, ``return_gaps`` raises :class:`~recsim_env.errors.DataError` saying why.

Everything is batched over users: a step is a handful of gathers and array operations. The state
keeps each user's scoring query ``[p_u + γ·h, 1, F]`` (dotted with the item table ``[v_i, b_i, -φ·g_i]``)
and rewrites only the rows a step changes; one user (the single env) takes scalar paths of the same
rules, which update the state bit for bit as the batched path does.
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from recsim_env.errors import ArtifactError, ConfigError, DataError
from recsim_env.fit.leave import FORMAT_VERSION as LEAVE_FORMAT_VERSION
from recsim_env.fit.leave import LeaveHazard
from recsim_env.fit.returns import ReturnConfig, ReturnModel
from recsim_env.protocols import Responses
from recsim_env.users.choice import MultinomialLogit
from recsim_env.users.fitted_longterm import LeaveTerms, leave_clocks, overlap_one, overlaps, return_design

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Bumped whenever the saved arrays or their meaning change; other versions are refused on load.
2: the fitted leave hazard and return model replace the patience budget."""

START_ACTIVITY = ("sessions", "drawn", "total")
"""Where a new simulated user starts (:attr:`FittedUserModel.start_activity`)."""
DEFAULT_START_ACTIVITY = "sessions"
"""The session env's start: a training session drawn uniformly, its user and its start state."""

SEEN_TABLE_LIMIT = 1 << 25
"""Largest ``n_users x n_items`` for which the state keeps a per-item count table of recent
consumption (one byte a cell): a repeat check is then one gather instead of a scan of the ring."""


@dataclass(frozen=True)
class Dynamics:
    """The scalar parameters of the simulated users: fitted, calibrated or documented defaults."""

    drift_rate: float = 0.1
    """``η`` in ``[0, 1]``: how far the interest vector moves toward each consumed item."""
    drift_scale: float = 1.0
    """``γ`` >= 0: weight of the interest vector against the static preference in the utility."""
    fatigue_strength: float = 0.5
    """``φ`` >= 0: utility lost per unit of genre overlap with recently consumed items."""
    fatigue_decay: float = 0.7
    """Per-step factor in ``[0, 1)`` by which accumulated fatigue fades."""
    repeat_penalty: float = 5.0
    """``ρ`` >= 0: utility lost by an item the user consumed within the last ``recent_len`` clicks."""
    recent_len: int = 16
    """How many consumed items are remembered for the repeat penalty."""
    temperature: float = 1.0
    """Choice temperature (the fitted utilities are softmax logits, so 1 is their own scale)."""
    no_click_utility: float = 0.0
    """Utility of the no-click option; calibrated to the target click-through rate."""
    position_decay: float = 0.5
    """Examination of slot ``j`` is ``1/(1+j)**position_decay``."""
    like_threshold: float = 4.0
    """A rating at or above this is a like."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = float(getattr(self, f.name))
            if not np.isfinite(value):
                raise ConfigError(f"Dynamics.{f.name} must be finite, got {value!r}")
        for name in ("drift_scale", "fatigue_strength", "repeat_penalty", "position_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"Dynamics.{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.drift_rate <= 1.0:
            raise ConfigError(f"Dynamics.drift_rate must be in [0, 1], got {self.drift_rate!r}")
        if not 0.0 <= self.fatigue_decay < 1.0:
            raise ConfigError(f"Dynamics.fatigue_decay must be in [0, 1), got {self.fatigue_decay!r}")
        if self.temperature <= 0 or self.recent_len < 1:
            raise ConfigError(f"Dynamics needs temperature > 0 and recent_len >= 1; got temperature="
                              f"{self.temperature!r}, recent_len={self.recent_len!r}")


ARRAY_NAMES = (
    "user_pref", "user_interest0", "item_vectors", "item_bias", "item_genres", "user_features",
    "rating_user", "rating_item", "rating_user_bias", "rating_item_bias", "dwell_item_log_mean",
    "session_lengths", "session_offsets", "active_users", "user_span_days",
)


ARRAY_DIMS = {
    "user_pref": ("U", "d"), "user_interest0": ("U", "d"), "item_vectors": ("I", "d"), "item_bias": ("I",),
    "item_genres": ("I", "G"), "user_features": ("U", "F"), "rating_user": ("U", "r"), "rating_item": ("I", "r"),
    "rating_user_bias": ("U",), "rating_item_bias": ("I",), "dwell_item_log_mean": ("I",),
    "session_lengths": ("S",), "session_offsets": ("U+1",), "active_users": ("A",), "user_span_days": ("U",),
    "leave__item_counts": ("I",), "leave__user_counts": ("U",), "leave__session_start_offsets": ("U+1",),
    "leave__session_starts": ("L",), "leave__session_start_days": ("L",),
}
"""Each saved array's dimensions by name (as in :class:`FittedArrays`): arrays sharing a name must
agree on its size, checked on load so that a damaged artifact fails there and not mid-rollout."""

DIM_MEANINGS = {"U": "logged users", "d": "embedding dimension", "I": "items", "G": "genres",
                "F": "user features", "r": "rating factors", "S": "sessions", "A": "active users",
                "L": "the leave hazard's session starts"}


@dataclass(frozen=True, eq=False)
class FittedArrays:
    """The fitted arrays. ``U`` logged users, ``I`` items, ``d`` embedding dim, ``G`` genres."""

    user_pref: np.ndarray
    """``(U, d)`` static preference ``p_u``."""
    user_interest0: np.ndarray
    """``(U, d)`` interest vector at the end of each user's logged history (start of a simulated session)."""
    item_vectors: np.ndarray
    """``(I, d)`` item vector ``v_i`` (id embedding + projected content features)."""
    item_bias: np.ndarray
    """``(I,)`` item bias ``b_i``."""
    item_genres: np.ndarray
    """``(I, G)`` L2-normalised genre vectors (fatigue similarity)."""
    user_features: np.ndarray
    """``(U, F)`` standardised numeric + one-hot categorical user columns."""
    rating_user: np.ndarray
    """``(U, r)`` rating-model user factors."""
    rating_item: np.ndarray
    """``(I, r)`` rating-model item factors."""
    rating_user_bias: np.ndarray
    """``(U,)`` rating-model user bias."""
    rating_item_bias: np.ndarray
    """``(I,)`` rating-model item bias."""
    dwell_item_log_mean: np.ndarray
    """``(I,)`` mean log dwell per item, or ``(0,)`` when the log has no dwell."""
    session_lengths: np.ndarray
    """``(S,)`` logged session lengths (interactions), grouped by user."""
    session_offsets: np.ndarray
    """``(U + 1,)`` user ``u``'s sessions are ``session_lengths[offsets[u]:offsets[u+1]]``."""
    active_users: np.ndarray
    """``(A,)`` users with training interactions: simulated users are drawn from these."""
    user_span_days: np.ndarray
    """``(U,)`` days from each user's first to last logged interaction (the return model's
    ``days_since_first`` where a simulated user, who continues the logged one, starts)."""


@dataclass(frozen=True)
class Scales:
    """Scalars of the response models."""

    rating_mean: float
    """Global mean rating (0 when the log has no ratings)."""
    rating_std: float
    """Residual std of the rating model on held-out training ratings."""
    rating_min: float
    """Lowest rating of the scale."""
    rating_max: float
    """Highest rating of the scale."""
    rating_step: float
    """Ratings are rounded to multiples of this (0: continuous)."""
    has_rating: bool
    """Whether the log had ratings."""
    dwell_log_std: float
    """Std of log dwell around the item mean (unused without dwell)."""


@dataclass
class FittedState:
    """Per-user state of ``n`` simulated users (arrays; updated in place)."""

    logged: np.ndarray
    """``(n,)`` int64 logged user each simulated user was drawn from."""
    interest: np.ndarray
    """``(n, d)`` float32 drifting interest vector ``h``."""
    fatigue: np.ndarray
    """``(n, G)`` float32 decayed genre exposure of consumed items (this session's)."""
    recent: np.ndarray
    """``(n, recent_len)`` int64 ring of recently consumed items (-1: empty), across sessions."""
    patience: np.ndarray
    """``(n,)`` float32 leave clock: an ``Exp(1)`` draw at the session's start less the hazard each step
    spent (``-log(1 - p)``); the user leaves at <= 0."""
    clicks: np.ndarray
    """``(n,)`` int64 items consumed by the user over all sessions (where the ring writes next)."""
    seen: np.ndarray
    """``(n, n_items)`` uint8 count of each item in ``recent`` (``(n, 0)`` when the table would be too big)."""
    position: np.ndarray
    """``(n,)`` int64 items consumed this session: the next item's 0-based position."""
    session_profile: np.ndarray
    """``(n, G)`` float32 unit genres of this session's items, fading by the hazard's ``overlap_decay``
    per consumed item: the hazard's ``overlap`` is the next item's cosine with it."""
    session_genres: np.ndarray
    """``(n, G)`` float32 multi-hot genres summed over this session's items (its genre diversity)."""
    session_ratings: np.ndarray
    """``(n, 3)`` float32 this session's rating sum, liked items and disliked items."""
    sessions: np.ndarray
    """``(n,)`` float64 sessions of the user so far, this one included (logged ones count)."""
    days: np.ndarray
    """``(n,)`` float64 days from the user's first logged interaction to this session's start."""
    activity: np.ndarray
    """``(n,)`` float64 the leave hazard's activity (interactions before the session) at the simulated
    user's first simulated session; later sessions add the items of the earlier ones (see
    :attr:`FittedUserModel.start_activity`)."""
    query: np.ndarray | None = None
    """``(n, d + 1 [+ G])`` float32 ``[p + γ·h, 1, F]`` (``F`` only when the model has fatigue strength),
    kept in step with ``interest`` and ``fatigue`` by the model that sampled the state, so that scoring
    needs no per-step rebuild; ``None`` (a state built by hand) makes the model build it on first use.
    It holds that model's ``drift_scale``: score a state with a model of the same drift scale and
    fatigue strength (:meth:`FittedUserModel.with_dynamics` copies changing other fields are fine)."""

    @classmethod
    def for_scoring(cls, logged: np.ndarray, interest: np.ndarray, fatigue: np.ndarray,
                    recent_len: int) -> "FittedState":
        """A state that scores (utilities, ratings) users with the given interest and fatigue, at the
        start of a session with nothing consumed; built by hand, e.g. from a logged history."""
        n = len(logged)
        genres = fatigue.shape[1]
        return cls(logged=logged, interest=interest, fatigue=fatigue,
                   recent=np.full((n, recent_len), -1, np.int64), patience=np.ones(n, np.float32),
                   clicks=np.zeros(n, np.int64), seen=np.zeros((n, 0), np.uint8), position=np.zeros(n, np.int64),
                   session_profile=np.zeros((n, genres), np.float32), session_genres=np.zeros((n, genres), np.float32),
                   session_ratings=np.zeros((n, 3), np.float32), sessions=np.ones(n), days=np.zeros(n),
                   activity=np.zeros(n))


class FittedUserModel:
    """Batched :class:`~recsim_env.protocols.ReturningUserModel` with parameters fitted from an interaction log.

    Args:
        arrays, scales, dynamics, meta: the fitted arrays, response scales, scalar dynamics and provenance.
        leave: the fitted leave hazard (its item and user counts index this model's items and users).
        returns: the fitted return model, or ``None`` where the log could not fit one (``meta
            ["return_model_error"]`` says why; :meth:`return_gaps` raises it).
    """

    def __init__(self, arrays: FittedArrays, scales: Scales, dynamics: Dynamics, meta: dict, leave: LeaveHazard,
                 returns: ReturnModel | None = None, start_activity: str = DEFAULT_START_ACTIVITY) -> None:
        if start_activity not in START_ACTIVITY:
            raise ConfigError(f"FittedUserModel start_activity must be one of {START_ACTIVITY}, got {start_activity!r}")
        self.arrays, self.scales, self.dynamics, self.meta = arrays, scales, dynamics, dict(meta)
        self.leave, self.returns = leave, returns
        self.start_activity = start_activity
        """Where a new simulated user starts (its logged user, and the leave hazard's activity, sessions so far
        and days since the first session, the return model's covariates):

        * ``"sessions"`` (default, the session env): a training session drawn uniformly from all of them
          (:attr:`~recsim_env.fit.leave.LeaveHazard.session_starts` of active users, so a user weighs by its
          session count) gives the user and its state before that session. The simulated start states are
          distributed as the training log's, by construction.
        * ``"total"``: a uniform active user at its whole history (count, sessions, span): the user continues
          its logged one, as its interest does; the lifetime env's start (:meth:`for_lifetime`).
        * ``"drawn"``: a uniform active user at a uniform one of its own session starts' activity (sessions
          and days as ``"total"``). It overshoots: 59 % of ML-100K's active users have one training session,
          their first, so 72 % of drawn starts are at activity 0 against 35 % of the training sessions.

        Every mode keeps the logged user's interest vector at the end of its history (the fitted model has no
        interest vector per session). Measured on ML-100K in BENCHMARKS.md."""
        self.n_items = int(arrays.item_vectors.shape[0])
        self.n_user_features = int(arrays.user_features.shape[1])
        self.n_logged_users = int(arrays.user_pref.shape[0])
        self.choice = MultinomialLogit(dynamics.temperature, dynamics.no_click_utility, dynamics.position_decay)
        # One gather per step: [v_i, b_i, -φg_i] side by side, dotted with the state's query
        # [p+γh, 1, F]; φ sits in the table so the query's fatigue columns are plain copies of F.
        # Without fatigue the genre columns are left out (a third fewer bytes gathered on ML-100K).
        columns = [arrays.item_vectors, arrays.item_bias[:, None]]
        columns += [arrays.item_genres * np.float32(-dynamics.fatigue_strength)] if dynamics.fatigue_strength else []
        self._item_table = np.ascontiguousarray(np.column_stack(columns).astype(np.float32))
        self._rating_table = np.column_stack([arrays.rating_item, arrays.rating_item_bias[:, None]]).astype(np.float32)
        self._dim = int(arrays.item_vectors.shape[1])
        self._offsets = np.zeros(0, dtype=np.int64)  # row offsets into a flattened seen table, grown on demand
        # Each logged user's query at the start of a session ([p + γ·h0, 1, 0]): a new user is one row copy.
        self._start_query = np.zeros((self.n_logged_users, self._item_table.shape[1]), dtype=np.float32)
        self._start_query[:, :self._dim] = arrays.user_pref + arrays.user_interest0 * np.float32(dynamics.drift_scale)
        self._start_query[:, self._dim] = 1.0
        self._leave = LeaveTerms(leave, self.n_items, self.n_logged_users)
        # Multi-hot genres (the return model's genre diversity counts genres, not unit vectors).
        self._multi_hot = (arrays.item_genres > 0).astype(np.float32)
        self._logged_sessions = np.diff(arrays.session_offsets).astype(np.float64)
        # The training sessions a "sessions" start draws from: those of users simulated users are drawn from.
        active = np.zeros(self.n_logged_users, dtype=bool)
        active[arrays.active_users] = True
        self._session_pool = np.flatnonzero(active.take(self._leave.start_users))
        if start_activity == "sessions" and not self._session_pool.size:
            raise DataError(f"{meta.get('dataset')}: start_activity='sessions' draws a training session of an "
                            f"active user, and the leave hazard has none; use 'total'")
        self._dislike = float(returns.dislike_threshold if returns is not None else ReturnConfig().dislike_threshold)

    @property
    def max_rating(self) -> float:
        """Top of the rating scale (the env normalises the last rating by it); 1 without ratings."""
        return self.scales.rating_max if self.scales.has_rating else 1.0

    # ------------------------------------------------------------------ users
    def sample(self, n: int, rng: np.random.Generator) -> FittedState:
        genres = self.arrays.item_genres.shape[1]
        state = FittedState(
            logged=np.zeros(n, dtype=np.int64),
            interest=np.empty((n, self._dim), dtype=np.float32),
            fatigue=np.empty((n, genres), dtype=np.float32),
            recent=np.empty((n, self.dynamics.recent_len), dtype=np.int64),
            patience=np.empty(n, dtype=np.float32),
            clicks=np.empty(n, dtype=np.int64),
            seen=np.zeros((n, self.n_items if n * self.n_items <= SEEN_TABLE_LIMIT else 0), dtype=np.uint8),
            position=np.empty(n, dtype=np.int64),
            session_profile=np.empty((n, genres), dtype=np.float32),
            session_genres=np.empty((n, genres), dtype=np.float32),
            session_ratings=np.empty((n, 3), dtype=np.float32),
            sessions=np.empty(n, dtype=np.float64),
            days=np.empty(n, dtype=np.float64),
            activity=np.empty(n, dtype=np.float64),
            query=np.empty((n, self._item_table.shape[1]), dtype=np.float32),
        )
        self._start(state, np.arange(n), rng, seen_clear=False)
        return state

    def _start(self, state: FittedState, rows: np.ndarray, rng: np.random.Generator, seen_clear: bool = True) -> None:
        """New users in ``rows``, written in place (the same draws, in the same order, for any row set)."""
        a = self.arrays
        logged, activity, before, days = self._start_states(rows.size, rng)
        state.logged[rows] = logged
        state.interest[rows] = a.user_interest0.take(logged, axis=0)
        state.recent[rows] = -1
        state.clicks[rows] = 0
        if seen_clear and state.seen.shape[1]:
            state.seen[rows] = 0
        state.sessions[rows] = before  # _open counts the new session
        state.days[rows] = days
        if state.query is not None:
            state.query[rows] = self._start_query.take(logged, axis=0)
        state.activity[rows] = activity
        self._open(state, rows, rng)

    def _start_states(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(logged user, activity, sessions before, days)`` of ``n`` new users (see :attr:`start_activity`)."""
        if self.start_activity == "sessions":  # (user, start state) jointly: one draw per new user
            return self._leave.session_states(self._session_pool.take(rng.integers(0, len(self._session_pool), size=n)))
        a = self.arrays
        logged = a.active_users[rng.integers(0, len(a.active_users), size=n)].astype(np.int64)
        # "drawn" takes one uniform per new user ("total" draws nothing, so its streams are those of a model
        # before the option existed); both continue the logged user's sessions and time span.
        uniforms = rng.random(n) if self.start_activity == "drawn" else None
        activity = self._leave.start_activity(logged, uniforms)
        return logged, activity, self._logged_sessions.take(logged), a.user_span_days.take(logged)

    def _open(self, state: FittedState, rows: np.ndarray, rng: np.random.Generator) -> None:
        """A new session for ``rows``: a fresh leave clock, fatigue and session totals (one draw per row)."""
        state.patience[rows] = leave_clocks(rng, rows.size)
        state.sessions[rows] += 1.0
        state.position[rows] = 0
        for per_session in (state.fatigue, state.session_profile, state.session_genres, state.session_ratings):
            per_session[rows] = 0.0
        if state.query is not None and state.query.shape[1] > self._dim + 1:
            state.query[rows, self._dim + 1:] = 0.0

    # ------------------------------------------------------------------ between sessions
    def return_gaps(self, state: FittedState, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(len(rows),)`` float64 days until each of ``rows``, whose session just ended, starts the next.

        One draw per row from the fitted return model, given the ended session's length, mean rating,
        liked and disliked shares and genre diversity, and the user's sessions and days so far.
        :class:`DataError` when the log fitted no return model (no timestamps, one session per user).

        Examples:
            >>> gaps = model.return_gaps(state, np.arange(len(state.logged)), rng)  # doctest: +SKIP
        """
        if self.returns is None:
            raise DataError(f"{self.meta.get('dataset')}: return_gaps needs the return model, which was not "
                            f"fitted: {self.meta.get('return_model_error', 'no return model in this artifact')}")
        rows = np.asarray(rows, dtype=np.int64)
        design = return_design(self.returns, state.position.take(rows), state.session_ratings[rows],
                               state.session_genres[rows], state.sessions.take(rows), state.days.take(rows))
        return self.returns.sample_gaps(design, rng)

    def start_session(self, state: FittedState, rows: np.ndarray, days_elapsed: np.ndarray,
                      rng: np.random.Generator) -> None:
        """Open the next session of ``rows``, ``days_elapsed`` days after their last one ended: the same users
        with their interest and consumption memory; fatigue, the session's totals and the leave clock
        start afresh (one ``Exp(1)`` draw per row)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size:
            self._query(state)
            state.days[rows] += np.asarray(days_elapsed, dtype=np.float64)
            self._open(state, rows, rng)

    def _refresh(self, state: FittedState, rows: np.ndarray, interest: np.ndarray | None = None) -> None:
        """Rewrite the query's ``p + γ·h`` part of ``rows`` from their interest (given, or read from the state)."""
        pref = self.arrays.user_pref.take(state.logged.take(rows), axis=0)
        pref += (state.interest[rows] if interest is None else interest) * np.float32(self.dynamics.drift_scale)
        state.query[rows, :self._dim] = pref

    def _query(self, state: FittedState) -> np.ndarray:
        """The state's query, built once for a state made by hand (see :attr:`FittedState.query`)."""
        if state.query is None:
            n = len(state.logged)
            state.query = np.empty((n, self._item_table.shape[1]), dtype=np.float32)
            self._refresh(state, np.arange(n))
            state.query[:, self._dim] = 1.0
            state.query[:, self._dim + 1:] = state.fatigue[:, :state.query.shape[1] - self._dim - 1]
        return state.query

    def replace(self, state: FittedState, mask: np.ndarray, rng: np.random.Generator) -> None:
        rows = mask.nonzero()[0]
        if rows.size:
            self._query(state)
            self._start(state, rows, rng)

    def features(self, state: FittedState) -> np.ndarray:
        return self.arrays.user_features.take(state.logged, axis=0)

    def user_index(self, state: FittedState) -> np.ndarray:
        return state.logged

    def left(self, state: FittedState) -> np.ndarray:
        return state.patience <= 0.0

    # ------------------------------------------------------------------ scoring
    def utilities(self, state: FittedState, slates: np.ndarray) -> np.ndarray:
        """``(n, k)`` float32 utility of each shown item for each user (any ``k``: slates or candidates)."""
        query = self._query(state)
        # ndarray.take is several times faster than fancy indexing for this row gather.
        util = np.matmul(self._item_table.take(slates, axis=0), query[:, :, None])[..., 0]
        if self.dynamics.repeat_penalty:
            np.subtract(util, np.float32(self.dynamics.repeat_penalty), out=util, where=self._repeats(state, slates))
        return util

    def true_utilities(self, state: FittedState, items: np.ndarray) -> np.ndarray:
        """``(n, m)`` utilities the simulated users choose by (:meth:`utilities`), for the oracle and the planner.

        In a simulator built from this model they are the ground truth: the myopic oracle is greedy on them
        and the rollout planner rolls this model out. They are the fitted model's, not the logged users'
        (which no one knows)."""
        return self.utilities(state, items)

    def _utilities_one(self, state: FittedState, slate: np.ndarray) -> np.ndarray:
        """``(k,)`` utilities of one user's slate: :meth:`utilities` without the batch axes."""
        util = self._item_table.take(slate, axis=0).dot(self._query(state)[0])
        if self.dynamics.repeat_penalty:
            if state.seen.shape[1]:
                seen = state.seen[0].take(slate) > 0
            else:  # the filled part of the ring only, as in _repeats
                seen = np.isin(slate, state.recent[0, :min(self.dynamics.recent_len, int(state.clicks[0]))])
            util -= np.float32(self.dynamics.repeat_penalty) * seen
        return util

    def _repeats(self, state: FittedState, slates: np.ndarray) -> np.ndarray:
        """``(n, k)`` bool: which shown items are among each user's recently consumed ones."""
        n = len(slates)
        if state.seen.shape[1]:
            if len(self._offsets) < n:
                self._offsets = np.arange(n, dtype=np.int64)[:, None] * self.n_items
            return state.seen.reshape(-1).take(slates + self._offsets[:n]) > 0
        repeats = np.zeros(slates.shape, dtype=bool)
        for column in range(min(state.recent.shape[1], int(state.clicks.max(initial=0)))):  # filled part only
            repeats |= slates == state.recent[:, column:column + 1]
        return repeats

    def expected_rating(self, state: FittedState, items: np.ndarray) -> np.ndarray:
        """``(n, k)`` mean rating the users would give ``items`` (``(n, k)``), before noise and rounding."""
        a = self.arrays
        user = np.column_stack([a.rating_user[state.logged], np.ones(len(state.logged), np.float32)])
        raw = np.matmul(self._rating_table[items], user[:, :, None])[..., 0]
        return raw + (a.rating_user_bias[state.logged][:, None] + np.float32(self.scales.rating_mean))

    def choice_probabilities(self, state: FittedState, slates: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``(n, k + 1)`` probabilities of each slot and (last column) of no click."""
        return self.choice.probabilities(self.utilities(state, slates), valid)

    # ------------------------------------------------------------------ a step
    def respond(self, state: FittedState, slates: np.ndarray, valid: np.ndarray,
                rng: np.random.Generator) -> Responses:
        n, k = slates.shape
        click, rating, like, dwell = np.zeros((4, n, k), dtype=np.float32)
        if n == 1:
            # One user (the single env): the same draws in scalars, without ~20 tiny array operations.
            choice = self.choice.sample(self._utilities_one(state, slates[0])[None], valid, rng)
            slot = int(choice[0])
            if slot >= 0:
                item = int(slates[0, slot])
                click[0, slot] = 1.0
                if self.scales.has_rating:
                    rating[0, slot] = r = self._sample_rating_one(int(state.logged[0]), item, rng)
                    like[0, slot] = r >= self.dynamics.like_threshold
                if self.arrays.dwell_item_log_mean.size:
                    noise = rng.standard_normal() * self.scales.dwell_log_std
                    dwell[0, slot] = math.exp(self.arrays.dwell_item_log_mean[item] + noise)
            return Responses(choice, click, rating, like, dwell)
        choice = self.choice.sample(self.utilities(state, slates), valid, rng)
        rows = (choice >= 0).nonzero()[0]
        slots = choice[rows]
        items = slates[rows, slots]
        click[rows, slots] = 1.0
        if rows.size and self.scales.has_rating:
            r = self._sample_ratings(state.logged[rows], items, rng)
            rating[rows, slots] = r
            like[rows, slots] = r >= self.dynamics.like_threshold
        if rows.size and self.arrays.dwell_item_log_mean.size:
            noise = rng.standard_normal(rows.size) * self.scales.dwell_log_std
            dwell[rows, slots] = np.exp(self.arrays.dwell_item_log_mean[items] + noise)
        return Responses(choice, click, rating, like, dwell)

    def _sample_rating_one(self, logged: int, item: int, rng: np.random.Generator) -> float:
        """:meth:`_sample_ratings` for one user and item, in scalars (the same single normal draw)."""
        a, s = self.arrays, self.scales
        mean = (s.rating_mean + float(a.rating_user_bias[logged]) + float(a.rating_item_bias[item])
                + float(a.rating_user[logged].dot(a.rating_item[item])))
        r = mean + rng.standard_normal() * s.rating_std
        if s.rating_step > 0:
            r = s.rating_min + round((r - s.rating_min) / s.rating_step) * s.rating_step
        return min(max(r, s.rating_min), s.rating_max)

    def _sample_ratings(self, logged: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a, s = self.arrays, self.scales
        mean = (s.rating_mean + a.rating_user_bias.take(logged) + a.rating_item_bias.take(items)
                + np.einsum("nd,nd->n", a.rating_user.take(logged, axis=0), a.rating_item.take(items, axis=0)))
        r = mean + rng.standard_normal(len(items)) * s.rating_std
        if s.rating_step > 0:
            r = s.rating_min + np.round((r - s.rating_min) / s.rating_step) * s.rating_step
        return np.clip(r, s.rating_min, s.rating_max).astype(np.float32)

    def update(self, state: FittedState, slates: np.ndarray, responses: Responses,
               rng: np.random.Generator) -> None:
        d = self.dynamics
        query = self._query(state)
        decay = np.float32(d.fatigue_decay)
        state.fatigue *= decay
        if query.shape[1] > self._dim + 1:  # the query's copy of F decays alike (same float op)
            query[:, self._dim + 1:] *= decay
        if len(state.patience) == 1:
            self._update_one(state, slates[0], responses)
            return
        rows = (responses.choice >= 0).nonzero()[0]
        cost = np.full(len(state.patience), self._leave.no_click_cost, dtype=np.float32)
        if rows.size:
            slots = responses.choice[rows]
            items = slates[rows, slots]
            genres = self.arrays.item_genres.take(items, axis=0)
            interest = state.interest[rows]
            interest += np.float32(d.drift_rate) * (self.arrays.item_vectors.take(items, axis=0) - interest)
            state.interest[rows] = interest
            fatigue = state.fatigue[rows]
            fatigue += genres
            state.fatigue[rows] = fatigue
            self._refresh(state, rows, interest)
            if query.shape[1] > self._dim + 1:
                query[rows, self._dim + 1:] = fatigue
            self._remember(state, rows, items)
            rating = responses.rating[rows, slots] if self.scales.has_rating else None
            cost[rows] = self._consume(state, rows, items, genres, rating)
        state.patience -= cost

    def _consume(self, state: FittedState, rows: np.ndarray, items: np.ndarray, genres: np.ndarray,
                 rating: np.ndarray | None) -> np.ndarray:
        """The leave clock spent by the consumed ``items`` (the session before them), then the items added
        to their sessions' position, genre profile and totals."""
        profile = state.session_profile[rows]
        position = state.position.take(rows)
        # Items of earlier simulated sessions: every consumed one (clicks, this one counted) less this session's.
        earlier = state.clicks.take(rows) - 1 - position
        cost = self._leave.costs(position, items, state.activity.take(rows) + earlier, rating,
                                 overlaps(profile, genres))
        profile *= self._leave.decay
        profile += genres
        state.session_profile[rows] = profile
        state.position[rows] = position + 1
        state.session_genres[rows] += self._multi_hot.take(items, axis=0)
        if rating is not None:
            totals = np.column_stack([rating, rating >= self.dynamics.like_threshold, rating <= self._dislike])
            state.session_ratings[rows] += totals.astype(np.float32)
        return cost

    def _update_one(self, state: FittedState, slate: np.ndarray, responses: Responses) -> None:
        """:meth:`update` of one user after the fatigue decay, in scalars: the same float32 results."""
        d = self.dynamics
        slot = int(responses.choice[0])
        if slot < 0:
            state.patience[0] -= self._leave.no_click_cost
            return
        item = int(slate[slot])
        genres = self.arrays.item_genres[item]
        fatigue, interest = state.fatigue[0], state.interest[0]  # views: written in place
        interest += np.float32(d.drift_rate) * (self.arrays.item_vectors[item] - interest)
        fatigue += genres
        self._refresh(state, np.zeros(1, dtype=np.int64))
        if state.query.shape[1] > self._dim + 1:
            state.query[0, self._dim + 1:] = fatigue
        ring = int(state.clicks[0]) % d.recent_len
        if state.seen.shape[1]:
            dropped = int(state.recent[0, ring])
            if dropped >= 0:
                state.seen[0, dropped] -= 1
            state.seen[0, item] += 1
        state.recent[0, ring] = item
        state.clicks[0] += 1
        rating = responses.rating[0, slot] if self.scales.has_rating else None
        state.patience[0] -= self._consume_one(state, item, genres, rating)

    def _consume_one(self, state: FittedState, item: int, genres: np.ndarray, rating: np.float32 | None) -> np.float32:
        """:meth:`_consume` of one user, in scalars (the same float operations)."""
        profile = state.session_profile[0]  # a view: written in place
        position = int(state.position[0])
        cost = self._leave.cost_one(position, item, float(state.activity[0]) + (int(state.clicks[0]) - 1 - position),
                                    rating, overlap_one(profile, genres))
        profile *= self._leave.decay
        profile += genres
        state.position[0] = position + 1
        state.session_genres[0] += self._multi_hot[item]
        if rating is not None:
            totals = np.array([rating, rating >= self.dynamics.like_threshold, rating <= self._dislike], np.float32)
            state.session_ratings[0] += totals
        return cost

    def _remember(self, state: FittedState, rows: np.ndarray, items: np.ndarray) -> None:
        """Put consumed ``items`` into the users' rings of recent items (and the count table)."""
        recent_len = self.dynamics.recent_len
        ring = state.clicks.take(rows) % recent_len
        if not (state.recent.flags.c_contiguous and state.seen.flags.c_contiguous):  # a hand-made view
            if state.seen.shape[1]:
                dropped = state.recent[rows, ring]
                had = dropped >= 0
                state.seen[rows[had], dropped[had]] -= 1
                state.seen[rows, items] += 1
            state.recent[rows, ring] = items
            state.clicks[rows] += 1
            return
        # Flat indices into the contiguous arrays (rows are distinct): 1-D gathers and scatters cost
        # a fraction of 2-D fancy indexing.
        cells = rows * recent_len + ring
        recent = state.recent.reshape(-1)
        if state.seen.shape[1]:
            seen = state.seen.reshape(-1)
            dropped = recent.take(cells)
            had = (dropped >= 0).nonzero()[0]
            seen[rows.take(had) * self.n_items + dropped.take(had)] -= 1
            seen[rows * self.n_items + items] += 1
        recent[cells] = items
        state.clicks[rows] += 1

    # ------------------------------------------------------------------ artifact
    def save(self, path: str | Path) -> Path:
        """Write a versioned ``.npz`` artifact (format/library version, dataset, fingerprint, config, arrays,
        the leave hazard and the return model: one file, read back with ``allow_pickle=False``)."""
        from recsim_env import __version__

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        leave_header, leave_arrays = self.leave.to_parts()
        header = {"format_version": FORMAT_VERSION, "library_version": __version__,
                  "scales": asdict(self.scales), "dynamics": asdict(self.dynamics), "meta": self.meta,
                  "leave": leave_header, "returns": None}
        arrays = {name: getattr(self.arrays, name) for name in ARRAY_NAMES}
        arrays |= {f"{LEAVE_PREFIX}{name}": values for name, values in leave_arrays.items()}
        if self.returns is not None:
            header["returns"], return_arrays = self.returns.to_parts()
            arrays |= {f"{RETURNS_PREFIX}{name}": values for name, values in return_arrays.items()}
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:  # write-then-rename: a crash never leaves a half artifact in the cache
            np.savez(fh, __header__=np.array(json.dumps(header)), **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, expected_fingerprint: str | None = None) -> "FittedUserModel":
        """Read an artifact; :class:`ArtifactError` on another format/library version or dataset fingerprint."""
        from recsim_env import __version__

        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                header = json.loads(str(npz["__header__"]))
                arrays = {name: npz[name] for name in npz.files if name != "__header__"}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            # BadZipFile / EOFError: a truncated file, which the cache's refit path must see as ArtifactError
            raise ArtifactError(f"{path}: not a readable fitted user model artifact ({exc})") from exc
        _check_versions(path, header, __version__)
        found = header["meta"].get("fingerprint")
        if expected_fingerprint is not None and found != expected_fingerprint:
            raise ArtifactError(
                f"{path}: fitted on dataset {header['meta'].get('dataset')!r} with fingerprint {found}, "
                f"expected fingerprint {expected_fingerprint}; refit it on this data")
        leave_version = (header.get("leave") or {}).get("format_version")
        if leave_version != LEAVE_FORMAT_VERSION:  # before the array check: an older hazard lacks arrays
            raise ArtifactError(f"{path}: its leave hazard is of format {leave_version}, this library reads "
                                f"{LEAVE_FORMAT_VERSION}; refit it (a cached model is refitted on load)")
        missing = [name for name in (*ARRAY_NAMES, *ARRAY_DIMS) if name not in arrays]
        if missing:
            raise ArtifactError(f"{path}: not a readable fitted user model artifact (arrays {missing} missing)")
        check_arrays(path, arrays)
        leave = LeaveHazard.from_parts(header["leave"], _parts(arrays, LEAVE_PREFIX), f"{path} (leave hazard)")
        returns = None
        if header["returns"] is not None:
            returns = ReturnModel.from_parts(header["returns"], _parts(arrays, RETURNS_PREFIX),
                                             f"{path} (return model)")
        return cls(FittedArrays(**{name: arrays[name] for name in ARRAY_NAMES}), Scales(**header["scales"]),
                   Dynamics(**header["dynamics"]), header["meta"], leave, returns)

    def with_dynamics(self, **changes: float) -> "FittedUserModel":
        """A copy with some :class:`Dynamics` fields changed (e.g. for ablations); arrays are shared."""
        from dataclasses import replace

        return FittedUserModel(self.arrays, self.scales, replace(self.dynamics, **changes), self.meta, self.leave,
                               self.returns, self.start_activity)

    def with_long_term(self, leave: LeaveHazard | None = None, returns: ReturnModel | None = None) -> "FittedUserModel":
        """A copy with another leave hazard and/or return model (``None``: keep this model's), e.g. a
        hand-set one with known coefficients; arrays are shared."""
        return FittedUserModel(self.arrays, self.scales, self.dynamics, self.meta, leave or self.leave,
                               returns or self.returns, self.start_activity)

    def with_start_activity(self, start_activity: str) -> "FittedUserModel":
        """A copy whose new users start as ``start_activity`` says: ``"sessions"`` (the default), ``"total"``
        (the lifetime env's, :meth:`for_lifetime`) or ``"drawn"``; see :attr:`start_activity`.

        Examples:
            >>> model.with_start_activity("total").start_activity  # doctest: +SKIP
            'total'
        """
        return FittedUserModel(self.arrays, self.scales, self.dynamics, self.meta, self.leave, self.returns,
                               start_activity)

    def for_lifetime(self) -> "FittedUserModel":
        """The model a lifetime env runs (it calls this): new users start at their logged user's whole history
        (``"total"``), since a lifetime continues the logged user."""
        return self if self.start_activity == "total" else self.with_start_activity("total")

    def with_no_click_leave(self, probability: float) -> "FittedUserModel":
        """A copy whose users leave after a step without a click with ``probability``: the assumed parameter
        the log cannot inform, e.g. to see how much a result depends on it."""
        from dataclasses import replace

        if isinstance(probability, bool) or not 0.0 <= probability <= 1.0:
            raise ConfigError(f"no-click leave probability must be in [0, 1], got {probability!r}")
        leave = replace(self.leave, no_click_probability=float(probability),
                        meta=self.leave.meta | {"no_click_source": f"assumed: set to {probability:g}"})
        return self.with_long_term(leave=leave)

    def __repr__(self) -> str:
        return (f"FittedUserModel(dataset={self.meta.get('dataset')!r}, users={self.n_logged_users}, "
                f"items={self.n_items}, dim={self.arrays.item_vectors.shape[1]})")


LEAVE_PREFIX = "leave__"
"""Prefix of the leave hazard's arrays in the artifact."""
RETURNS_PREFIX = "returns__"
"""Prefix of the return model's arrays in the artifact."""


def _parts(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix):]: values for name, values in arrays.items() if name.startswith(prefix)}


def _check_versions(path: Path, header: dict, library_version: str) -> None:
    if header.get("format_version") != FORMAT_VERSION or header.get("library_version") != library_version:
        raise ArtifactError(
            f"{path}: fitted with format version {header.get('format_version')} / recsim-env "
            f"{header.get('library_version')}, this is format {FORMAT_VERSION} / recsim-env {library_version}; "
            f"refit it (recsim fit) or delete it")


def check_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse a loaded artifact whose arrays are non-finite, disagree in shape or index out of range:
    all-NaN item vectors would load and make every user click every step; half the item rows would
    fail later as a bare numpy error."""
    for name, values in arrays.items():
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            bad = int(values.size - np.isfinite(values).sum())
            raise ArtifactError(f"{path}: array {name!r} has {bad} non-finite values (NaN or inf); "
                                f"the artifact is damaged: refit it")
    _check_shapes(path, arrays)
    _check_indices(path, arrays)


def _check_shapes(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Every dimension named in :data:`ARRAY_DIMS` has one size across the arrays that share it."""
    first: dict[str, tuple[int, str]] = {}  # dimension -> (size, array that set it)
    for name, dims in ARRAY_DIMS.items():
        shape = arrays[name].shape
        if name == "dwell_item_log_mean" and shape == (0,):
            continue  # a log without dwell saves no per-item dwell
        if len(shape) != len(dims):
            raise ArtifactError(f"{path}: array {name!r} must be {len(dims)}-D ({', '.join(dims)}), got shape {shape}")
        for axis, dim in enumerate(dims):
            size = shape[axis] - 1 if dim == "U+1" else shape[axis]
            key = "U" if dim == "U+1" else dim
            if key not in first:
                first[key] = (size, name)
            elif first[key][0] != size:
                owner = first[key][1]
                raise ArtifactError(f"{path}: array {name!r} has shape {shape} but {owner!r} has shape "
                                    f"{arrays[owner].shape}: they disagree on the number of {DIM_MEANINGS[key]}; "
                                    f"the artifact is damaged: refit it")


def _check_indices(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``active_users`` are rows of the user arrays; ``session_offsets`` rise from 0 to the sessions."""
    for name in ("session_lengths", "session_offsets", "active_users"):
        if arrays[name].dtype.kind not in "iu":
            raise ArtifactError(f"{path}: array {name!r} must hold integers, got dtype {arrays[name].dtype}")
    n_users = arrays["user_pref"].shape[0]
    active = arrays["active_users"]
    outside = active[(active < 0) | (active >= n_users)]
    if outside.size:
        raise ArtifactError(f"{path}: array 'active_users' names user {int(outside[0])}, outside the "
                            f"{n_users} users of 'user_pref'")
    offsets = arrays["session_offsets"]
    n_sessions = arrays["session_lengths"].shape[0]
    if offsets[0] != 0 or offsets[-1] != n_sessions or (np.diff(offsets) < 0).any():
        raise ArtifactError(f"{path}: array 'session_offsets' must rise from 0 to the {n_sessions} sessions of "
                            f"'session_lengths', got {int(offsets[0])} .. {int(offsets[-1])}")
