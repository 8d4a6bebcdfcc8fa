"""The fitted user model's long-term parts as its simulator evaluates them, batched and for one user.

* :class:`LeaveTerms`: the fitted leave hazard (:class:`~recsim_env.fit.leave.LeaveHazard`) folded into
  lookup tables, so that the log-odds of leaving after a consumed item is a few gathers and adds:
  ``position[p] + item[i] + w_a·log1p(activity) [+ first[p] in a first session] + w_r·r + w_s·max(0, t - r)
  + w_o·overlap``, every standardisation folded into the tables and the raw-unit weights; a first session is
  one at ``activity`` 0, and ``first[p]`` its own position curve (``first_session``, ``first_position_*``);
  ``activity`` is the user's interactions before the session: its start activity
  (:meth:`LeaveTerms.start_activity`, or a training session's, :meth:`LeaveTerms.session_states`) plus the
  items of its earlier simulated sessions. The one-user path does the same float64 operations in the same
  order in Python floats, so both give the same bits.
* The **leave clock**: instead of one Bernoulli draw per consumed item, each session draws one
  ``E ~ Exp(1)`` and every step spends ``-log(1 - p) = softplus(logit)`` of it; the user leaves when
  it is spent. ``P(leave at step t | still there) = 1 - exp(-(-log(1 - p_t))) = p_t``: the same
  discrete-time hazard, with one draw per session whatever the policy shows (common random numbers
  across policies) and an update that draws nothing.
* :func:`return_design`: the covariates of the session that just ended, from the running totals the
  state keeps, in the return model's design.
"""

from __future__ import annotations

import math

import numpy as np

from recsim_env.errors import ArtifactError
from recsim_env.fit.leave import LeaveHazard, first_session_feature_names, position_feature_names, raw_features
from recsim_env.fit.returns import RATING_COVARIATES, ReturnModel, genre_diversity

LINEAR_FEATURES = ("rating", "shortfall", "overlap")
"""Hazard features whose raw value is computed per step (the rest are looked up by position, item, user)."""

TINY_NORM = np.float32(1e-12)


class LeaveTerms:
    """A :class:`LeaveHazard` as lookup tables over positions, items and logged users (raw units)."""

    def __init__(self, hazard: LeaveHazard, n_items: int, n_users: int) -> None:
        names = hazard.feature_names
        position_names = position_feature_names(hazard.position_bins)
        first_names = first_session_feature_names(hazard.position_bins)
        known = (set(position_names) | set(first_names) | set(LINEAR_FEATURES)
                 | {"log1p_popularity", "log1p_activity"})
        if set(names) - known:
            raise ArtifactError(f"leave hazard features {sorted(set(names) - known)} are not ones the simulator "
                                f"computes ({sorted(known)})")
        if hazard.item_counts.shape != (n_items,) or hazard.user_counts.shape != (n_users,):
            raise ArtifactError(f"leave hazard counts cover {hazard.item_counts.shape} items and "
                                f"{hazard.user_counts.shape} users, the model {n_items} and {n_users}")
        weight = dict(zip(names, (hazard.coefficients / hazard.feature_scale).tolist()))
        self.hazard = hazard
        self.like_threshold = float(hazard.like_threshold)
        self.rating = weight.get("rating", 0.0)
        self.shortfall = weight.get("shortfall", 0.0)
        self.overlap = weight.get("overlap", 0.0)
        self.decay = np.float32(hazard.overlap_decay)
        # The intercept and every feature's mean go into the position table: one add fewer per step.
        self._offset = hazard.intercept - float(np.dot(hazard.coefficients / hazard.feature_scale, hazard.feature_mean))
        self._position_weights = {name: weight[name] for name in position_names if name in weight}
        # The first session's curve, by the position basis name each of its columns multiplies.
        self._first_weights = {name[len("first_"):]: weight[name] for name in first_names[1:] if name in weight}
        self._first_base = weight.get("first_session", 0.0)
        # A hazard without the curve (or with it at 0, as a hand-set one) skips its gather per step.
        self.has_first = self._first_base != 0.0 or any(w != 0.0 for w in self._first_weights.values())
        self.item = weight.get("log1p_popularity", 0.0) * np.log1p(hazard.item_counts)
        self.activity = weight.get("log1p_activity", 0.0)
        self.user_counts = np.asarray(hazard.user_counts, np.float64)
        self.session_starts = np.asarray(hazard.session_starts, np.float64)
        self.start_offsets = np.asarray(hazard.session_start_offsets, np.int64)
        if self.start_offsets.shape != (n_users + 1,):
            raise ArtifactError(f"leave hazard session starts cover {len(self.start_offsets) - 1} users, the model "
                                f"{n_users}")
        self.start_counts = np.diff(self.start_offsets)
        self.start_days = np.asarray(hazard.session_start_days, np.float64)
        # The logged user of each session start (starts are grouped by user).
        self.start_users = np.repeat(np.arange(n_users, dtype=np.int64), self.start_counts)
        self.positions, self.first_positions = self._position_table(64)
        no_click = float(hazard.no_click_probability)
        self.no_click_cost = np.float32(-math.log1p(-no_click) if no_click < 1.0 else np.inf)
        """Leave clock spent by a step without a click: ``-log(1 - q)``, ``q`` the assumed no-click probability."""

    def _position_table(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(position term, first session's extra term) of positions ``0..size-1``."""
        zeros = np.zeros(size)
        columns = raw_features(np.arange(size), None, zeros, zeros, zeros, self.like_threshold,
                               self.hazard.position_bins)
        table = np.full(size, self._offset)
        for name, weight in self._position_weights.items():
            table += weight * columns[name]
        first = np.full(size, self._first_base)
        for name, weight in self._first_weights.items():
            first += weight * columns[name]
        return table, first

    def _grow(self, longest: int) -> None:
        if longest >= len(self.positions):
            self.positions, self.first_positions = self._position_table(max(2 * len(self.positions), longest + 1))

    def position_terms(self, position: np.ndarray) -> np.ndarray:
        """``(n,)`` float64 position term of each 0-based position (the table grows as sessions do)."""
        self._grow(int(position.max(initial=0)))
        return self.positions.take(position)

    def first_session_terms(self, position: np.ndarray, activity: np.ndarray) -> np.ndarray:
        """``(n,)`` float64 first session's extra term: its curve at ``position`` where ``activity`` is 0, else 0."""
        self._grow(int(position.max(initial=0)))
        return np.where(activity == 0, self.first_positions.take(position), 0.0)

    def start_activity(self, users: np.ndarray, uniforms: np.ndarray | None) -> np.ndarray:
        """``(n,)`` float64 activity before a simulated user's first simulated session, for logged ``users``.

        ``uniforms`` (``(n,)`` draws in ``[0, 1)``, one per session): the session env's start state, a
        draw from the user's own logged session starts (:attr:`~recsim_env.fit.leave.LeaveHazard.session_starts`,
        each of the user's ``m`` sessions with probability ``1/m``: start ``floor(uniform * m)``), so that
        simulated sessions start where the logged ones did. ``None``: the logged user's whole count (a
        lifetime continues its logged user). A user without a logged session starts at its count.
        """
        users = np.asarray(users, np.int64)
        if uniforms is None:
            return self.user_counts.take(users)
        counts = self.start_counts.take(users)
        has = counts > 0
        pick = np.minimum((np.asarray(uniforms, np.float64) * counts).astype(np.int64), counts - 1)
        index = np.where(has, self.start_offsets.take(users) + pick, 0)
        drawn = self.session_starts.take(index) if len(self.session_starts) else np.zeros(len(users))
        return np.where(has, drawn, self.user_counts.take(users))

    def session_states(self, sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The start state of logged sessions (indices into :attr:`~recsim_env.fit.leave.LeaveHazard.session_starts`):
        ``(user, activity, sessions before, days)``, each ``(n,)``: its logged user (int64), interactions before
        it, the user's sessions before it and days from the user's first interaction to its start (float64).

        Examples:
            >>> users, activity, before, days = terms.session_states(np.array([0, 3]))  # doctest: +SKIP
        """
        sessions = np.asarray(sessions, np.int64)
        users = self.start_users.take(sessions)
        before = (sessions - self.start_offsets.take(users)).astype(np.float64)
        return users, self.session_starts.take(sessions), before, self.start_days.take(sessions)

    def logits(self, position: np.ndarray, items: np.ndarray, activity: np.ndarray,
               rating: np.ndarray | None, overlap: np.ndarray) -> np.ndarray:
        """``(n,)`` float64 log-odds of leaving after consumed ``items`` at 0-based session ``position``,
        by users with ``activity`` interactions before the session (float64), rated ``rating`` (``None``:
        a model without ratings), with genre ``overlap``."""
        logit = self.position_terms(position) + self.item.take(items)
        logit += self.activity * np.log1p(activity)
        if self.has_first:
            logit += self.first_session_terms(position, activity)
        if rating is not None:
            rating = rating.astype(np.float64)
            logit += self.rating * rating
            logit += self.shortfall * np.maximum(self.like_threshold - rating, 0.0)
        logit += self.overlap * overlap.astype(np.float64)
        return logit

    def costs(self, position: np.ndarray, items: np.ndarray, activity: np.ndarray,
              rating: np.ndarray | None, overlap: np.ndarray) -> np.ndarray:
        """``(n,)`` float32 leave clock spent by consumed items: ``softplus`` of :meth:`logits`."""
        return np.logaddexp(0.0, self.logits(position, items, activity, rating, overlap)).astype(np.float32)

    def cost_one(self, position: int, item: int, activity: float, rating: float | None,
                 overlap: float) -> np.float32:
        """:meth:`costs` of one consumed item: the same float64 operations, in the same order."""
        self._grow(position)
        logit = float(self.positions[position]) + float(self.item[item])
        # numpy's log1p, not math's: the batched path's bits.
        logit += self.activity * float(np.log1p(np.array([activity]))[0])
        if self.has_first:
            logit += float(self.first_positions[position]) if activity == 0 else 0.0
        if rating is not None:
            rating = float(rating)
            logit += self.rating * rating
            logit += self.shortfall * max(self.like_threshold - rating, 0.0)
        logit += self.overlap * float(overlap)
        return np.float32(np.logaddexp(0.0, logit))

    def probability(self, position: np.ndarray, items: np.ndarray, activity: np.ndarray,
                    rating: np.ndarray | None, overlap: np.ndarray) -> np.ndarray:
        """``(n,)`` float64 hazard of leaving after each consumed item (for reports and tests)."""
        return 1.0 / (1.0 + np.exp(-self.logits(position, items, activity, rating, overlap)))


def overlaps(profile: np.ndarray, genres: np.ndarray) -> np.ndarray:
    """``(n,)`` float32 cosine of each consumed item's unit genres with its session's genre profile (0 for
    an empty profile): the hazard's ``overlap`` feature."""
    dot = (profile * genres).sum(axis=1)
    norm = np.sqrt((profile * profile).sum(axis=1))
    return np.where(norm > 0, dot / np.maximum(norm, TINY_NORM), np.float32(0.0))


def overlap_one(profile: np.ndarray, genres: np.ndarray) -> np.float32:
    """:func:`overlaps` of one user (row sums in the same order: the same bits)."""
    dot = (profile * genres).sum()
    norm = np.sqrt((profile * profile).sum())
    return dot / max(norm, TINY_NORM) if norm > 0 else np.float32(0.0)


def leave_clocks(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n,)`` float32 ``Exp(1)`` draws, each session's leave clock (kept > 0: a user never leaves unseen)."""
    return np.maximum(rng.standard_exponential(n).astype(np.float32), np.float32(np.finfo(np.float32).tiny))


def return_design(returns: ReturnModel, length: np.ndarray, ratings: np.ndarray, genre_mass: np.ndarray,
                  sessions: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The return model's design of ended sessions from their running totals.

    Args:
        length: items consumed in each session.
        ratings: ``(n, 3)`` the session's rating sum, liked and disliked items.
        genre_mass: ``(n, G)`` summed multi-hot genres of its items.
        sessions: sessions of the user so far, this one included.
        days: days from the user's first session to this one's start (time within sessions, minutes
            against gaps of days, is not counted).

    A session without a consumed item (a log never shows one) gets the rating covariates' training
    means, so they add nothing to its gap.
    """
    length = np.asarray(length, np.float64)
    per_item = np.asarray(ratings, np.float64) / np.maximum(length, 1.0)[:, None]
    design = returns.covariates(length, per_item[:, 0], per_item[:, 1], per_item[:, 2],
                                genre_diversity(np.asarray(genre_mass, np.float64)), sessions, days)
    empty = length == 0
    if empty.any():
        columns = [index for index, name in enumerate(returns.covariate_names) if name in RATING_COVARIATES]
        design[np.ix_(empty.nonzero()[0], columns)] = 0.0
    return design
