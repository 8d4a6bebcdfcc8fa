"""A synthetic user model with known ground truth, in the spirit of RecSim's interest-evolution env.

Items have one topic and a quality. Low-quality topics are *clickbait*: more attractive to click,
but watching them costs the user more of their time budget than it gives back. Users have an
interest per topic (drifting toward what they consume), fatigue per topic (on repetition), and a
time budget; the session ends when the budget runs out. So a policy that greedily maximises the
click probability of each step shortens sessions and collects fewer clicks per episode than one
that trades a little attractiveness for quality: long-term optimisation has something to win.

Per step, for user ``u`` and item ``i`` with topic ``t``:

* utility ``U = interest[u, t] + clickbait_appeal · (-topic_quality[t]) - fatigue_weight · fatigue[u, t]``;
  the choice among slots is :class:`~recsim_env.users.choice.MultinomialLogit` over ``U``;
* a clicked item gets ``rating = clip(round(3 + rating_scale · (quality_i + interest[u, t]) + ε), 1, 5)``
  with ``ε ~ N(0, rating_noise)``, ``like = rating >= like_threshold`` and
  ``dwell = 60 · length_i · sigmoid(quality_i + interest[u, t])`` seconds;
* budget (minutes): a click costs ``length_i - quality_bonus · quality_i``, a step without a click
  costs ``step_cost``; interest of the consumed topic moves ``drift_rate`` of the way to
  ``max_interest``; all fatigue decays by ``fatigue_decay`` and the consumed topic's grows by 1.

Users who come back (the lifetime env's :class:`~recsim_env.protocols.ReturningUserModel`):
:class:`ReturningSyntheticUserModel` ends a session by a logistic hazard after each consumed item
(position, rating, shortfall below a like, topic overlap with the session so far) and draws the gap to
the next session from a Weibull model of the session's covariates (length, ratings, topic diversity,
sessions so far, days since the first), both with the known coefficients of :class:`LongTermConfig`,
written on the features of :mod:`recsim_env.fit.leave` and :mod:`recsim_env.fit.returns` so that
fitting them on its logs (``generate_log(..., horizon_days=60)``) gives those coefficients back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.data.sessions import DAY_SECONDS
from recsim_env.errors import ConfigError
from recsim_env.protocols import Responses
from recsim_env.users.choice import MultinomialLogit

_POSITIVE = ("n_items", "n_topics", "n_users", "time_budget", "item_length_min", "max_interest")
_INTEGER = ("n_items", "n_topics", "n_users", "seed")
_NON_NEGATIVE = ("quality_spread", "quality_noise", "clickbait_appeal", "interest_scale", "drift_rate",
                 "fatigue_weight", "quality_bonus", "step_cost", "rating_scale", "rating_noise",
                 "position_decay")


@dataclass(frozen=True)
class SyntheticConfig:
    """Ground-truth parameters of :class:`SyntheticUserModel`."""

    n_items: int = 500
    """Number of items in the catalogue."""
    n_topics: int = 10
    """Number of topics; each item has exactly one (its genre in generated logs)."""
    n_users: int = 1000
    """Size of the user population simulated users are drawn from (the logged-user index space)."""
    quality_spread: float = 1.0
    """Topic mean qualities are evenly spaced in ``[-quality_spread, quality_spread]``."""
    quality_noise: float = 0.2
    """Standard deviation of an item's quality around its topic's mean."""
    clickbait_appeal: float = 1.0
    """Extra click utility per unit of *low* topic quality: what makes clickbait attractive."""
    interest_scale: float = 1.0
    """Standard deviation of users' initial topic interests."""
    max_interest: float = 2.0
    """Interest a topic approaches under repeated consumption."""
    drift_rate: float = 0.05
    """Fraction of the way to ``max_interest`` a consumed topic's interest moves per click."""
    fatigue_weight: float = 0.5
    """Utility penalty per unit of topic fatigue."""
    fatigue_decay: float = 0.8
    """Per-step multiplicative decay of fatigue, in ``[0, 1)``."""
    time_budget: float = 60.0
    """Minutes each user starts with; the session ends when it reaches 0."""
    item_length_min: float = 2.0
    """Item lengths (minutes) are uniform in ``[item_length_min, 2 · item_length_min]``."""
    quality_bonus: float = 3.0
    """Minutes of budget a click gives back per unit of item quality (negative quality drains)."""
    step_cost: float = 1.0
    """Minutes a step without a click costs."""
    rating_scale: float = 1.0
    """Rating points per unit of quality + interest."""
    rating_noise: float = 0.5
    """Standard deviation of rating noise before rounding."""
    like_threshold: float = 4.0
    """Ratings at or above this count as a like."""
    temperature: float = 1.0
    """Choice-model temperature."""
    no_click_utility: float = 1.0
    """Utility of not clicking (sets the click-through rate)."""
    position_decay: float = 0.5
    """Position bias of the choice model: examination of slot ``j`` is ``1/(1+j)**position_decay``."""
    seed: int = 0
    """Seed of the world (items, user population); episode randomness comes from the env's rng."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # Checked before any comparison: a string from a config file would raise a bare TypeError there.
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ConfigError(f"SyntheticConfig.{f.name} must be a number, got {value!r}")
            if not np.isfinite(value):
                raise ConfigError(f"SyntheticConfig.{f.name} must be finite, got {value!r}")
        for name in _INTEGER:
            if not isinstance(getattr(self, name), (int, np.integer)):
                raise ConfigError(f"SyntheticConfig.{name} must be an integer, got {getattr(self, name)!r}")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"SyntheticConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ConfigError(f"SyntheticConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.fatigue_decay < 1.0:
            raise ConfigError(f"SyntheticConfig.fatigue_decay must be in [0, 1), got {self.fatigue_decay!r}")
        if self.temperature <= 0:
            raise ConfigError(f"SyntheticConfig.temperature must be > 0, got {self.temperature!r}")


@dataclass
class SyntheticState:
    """Per-user arrays of ``n`` simulated users (mutated in place by the model)."""

    user: np.ndarray
    """``(n,)`` int64 population index."""
    interest: np.ndarray
    """``(n, n_topics)`` current topic interests."""
    fatigue: np.ndarray
    """``(n, n_topics)`` topic fatigue."""
    budget: np.ndarray
    """``(n,)`` minutes left."""
    features: np.ndarray
    """``(n, n_topics)`` float32 observable features: the user's initial interest profile."""


class SyntheticUserModel:
    """``UserModel`` with known ground truth; see the module docstring for the dynamics."""

    max_rating = 5.0
    """Ratings are whole stars from 1 to 5."""

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self.config = c = config or SyntheticConfig()
        world = np.random.default_rng(c.seed)
        self.n_items, self.n_user_features, self.n_logged_users = c.n_items, c.n_topics, c.n_users
        self.topic_quality = np.linspace(-c.quality_spread, c.quality_spread, c.n_topics)
        self.item_topic = world.integers(0, c.n_topics, c.n_items)
        self.item_quality = self.topic_quality[self.item_topic] + world.normal(0, c.quality_noise, c.n_items)
        self.item_length = world.uniform(c.item_length_min, 2 * c.item_length_min, c.n_items)
        self.item_appeal = -c.clickbait_appeal * self.topic_quality[self.item_topic]
        self.population_interest = world.normal(0, c.interest_scale, (c.n_users, c.n_topics))
        self.choice = MultinomialLogit(c.temperature, c.no_click_utility, c.position_decay)
        # Budget change of a click on each item, precomputed: one gather per step.
        self._click_cost = self.item_length - c.quality_bonus * self.item_quality

    # --- UserModel -------------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> SyntheticState:
        return self.state_for(rng.integers(0, self.n_logged_users, n))

    def state_for(self, users: np.ndarray) -> SyntheticState:
        """Fresh state of the given population users (for logs of a fixed cohort)."""
        users = np.asarray(users, dtype=np.int64)
        interest = self.population_interest[users].copy()
        return SyntheticState(users, interest, np.zeros_like(interest),
                              np.full(len(users), self.config.time_budget), interest.astype(np.float32))

    def replace(self, state: SyntheticState, mask: np.ndarray, rng: np.random.Generator) -> None:
        rows = mask.nonzero()[0]  # integer rows: cheaper than boolean masks for the few that left
        fresh = self.sample(len(rows), rng)
        for f in fields(state):  # the state's own class: a subclass's extra fields are replaced too
            getattr(state, f.name)[rows] = getattr(fresh, f.name)

    def features(self, state: SyntheticState) -> np.ndarray:
        return state.features

    def user_index(self, state: SyntheticState) -> np.ndarray:
        return state.user

    def true_utilities(self, state: SyntheticState, items: np.ndarray) -> np.ndarray:
        """``(n, m)`` ground-truth click utilities of ``(n, m)`` item indices (for oracle policies)."""
        # Flat gathers of (user, topic) cells: cheaper than take_along_axis on the hot path.
        cell = self.item_topic[items]
        if len(items) > 1:  # row offsets; a single user's cells are its topics
            cell += (np.arange(len(items)) * self.config.n_topics)[:, None]
        utility = state.interest.ravel()[cell]
        utility += self.item_appeal[items]
        if self.config.fatigue_weight:
            utility -= self.config.fatigue_weight * state.fatigue.ravel()[cell]
        return utility

    def respond(self, state: SyntheticState, slates: np.ndarray, valid: np.ndarray,
                rng: np.random.Generator) -> Responses:
        n, k = slates.shape
        choice = self.choice.sample(self.true_utilities(state, slates), valid, rng)
        click, rating, like, dwell = np.zeros((4, n, k), dtype=np.float32)
        if n == 1:
            # One user (the single env): the same response in scalars, without ~20 tiny array operations.
            slot = int(choice[0])
            if slot >= 0:
                item = int(slates[0, slot])
                engagement = float(self.item_quality[item] + state.interest[0, self.item_topic[item]])
                c = self.config
                r = float(min(max(round(3.0 + c.rating_scale * engagement + rng.normal(0.0, c.rating_noise)), 1),
                              self.max_rating))
                click[0, slot], rating[0, slot], like[0, slot] = 1.0, r, r >= c.like_threshold
                dwell[0, slot] = 60.0 * self.item_length[item] / (1.0 + math.exp(-engagement))
            return Responses(choice, click, rating, like, dwell)
        rows = (choice >= 0).nonzero()[0]
        if len(rows):
            slots = choice[rows]
            item = slates[rows, slots]
            engagement = self.item_quality[item] + state.interest[rows, self.item_topic[item]]
            c = self.config
            raw = 3.0 + c.rating_scale * engagement + rng.normal(0.0, c.rating_noise, len(rows))
            r = np.minimum(np.maximum(np.round(raw), 1.0), self.max_rating)
            click[rows, slots] = 1.0
            rating[rows, slots] = r
            like[rows, slots] = r >= c.like_threshold
            dwell[rows, slots] = 60.0 * self.item_length[item] / (1.0 + np.exp(-engagement))
        return Responses(choice, click, rating, like, dwell)

    def update(self, state: SyntheticState, slates: np.ndarray, responses: Responses,
               rng: np.random.Generator) -> None:
        c = self.config
        state.fatigue *= c.fatigue_decay
        state.budget -= c.step_cost
        if len(state.budget) == 1:  # one user: scalar updates of the same rule
            slot = int(responses.choice[0])
            if slot >= 0:
                item = int(slates[0, slot])
                topic = int(self.item_topic[item])
                state.interest[0, topic] += c.drift_rate * (c.max_interest - state.interest[0, topic])
                state.fatigue[0, topic] += 1.0
                state.budget[0] -= self._click_cost[item] - c.step_cost
            return
        rows = (responses.choice >= 0).nonzero()[0]
        if not len(rows):
            return
        item = slates[rows, responses.choice[rows]]
        topic = self.item_topic[item]
        state.interest[rows, topic] += c.drift_rate * (c.max_interest - state.interest[rows, topic])
        state.fatigue[rows, topic] += 1.0
        # A click replaces the step cost by the item's own cost.
        state.budget[rows] -= self._click_cost[item] - c.step_cost

    def left(self, state: SyntheticState) -> np.ndarray:
        return state.budget <= 0.0

    # --- the world as data -----------------------------------------------------------------------
    def catalog(self) -> ItemCatalog:
        """Items as an :class:`ItemCatalog`; popularity = population-mean click attractiveness."""
        c = self.config
        genres = np.zeros((c.n_items, c.n_topics), dtype=np.float32)
        genres[np.arange(c.n_items), self.item_topic] = 1.0
        # Per topic, then gathered: every item of a topic shares its appeal, so the (users, items) table
        # of the direct form repeats (users, topics) columns bit for bit (and needs 16 GB at 100k x 20k).
        topic_appeal = -c.clickbait_appeal * self.topic_quality
        attract = np.exp(self.population_interest + topic_appeal).mean(axis=0)[self.item_topic]
        return ItemCatalog(
            item_ids=np.array([f"item{i}" for i in range(c.n_items)], dtype=object),
            titles=np.array([f"topic {t} item {i}" for i, t in enumerate(self.item_topic)], dtype=object),
            genres=genres,
            genre_names=tuple(f"topic{t}" for t in range(c.n_topics)),
            years=self._years(),
            popularity=(attract / attract.sum()).astype(np.float32),
        )

    def _years(self) -> np.ndarray:
        # Release years carry no signal: uniform noise, so content models cannot cheat with them.
        return np.random.default_rng(self.config.seed + 1).integers(1990, 2021, self.n_items).astype(np.float32)

    def generate_log(self, n_users: int, rng: np.random.Generator, policy=None, slate_size: int = 10,
                     n_candidates: int = 100, step_cap: int = 100) -> InteractionLog:
        """One session each of population users ``0..n_users-1`` as an :class:`InteractionLog`.

        Slates come from ``policy`` (any ``Recommender``) or, by default, the first ``slate_size`` of
        the uniform candidates (a random logging policy). Only clicks are logged, with rating and
        dwell; timestamps are one minute apart within a session, sessions one day apart between users.
        """
        if not 1 <= n_users <= self.n_logged_users:
            raise ConfigError(f"n_users must be in [1, {self.n_logged_users}] (the population), got {n_users}")
        rows = rollout_log_rows(self, n_users, rng, policy, slate_size, n_candidates, step_cap)
        return self._as_log(rows, n_users)

    def _as_log(self, rows: pd.DataFrame, n_users: int, extra_meta: dict | None = None) -> InteractionLog:
        cat = self.catalog()
        items = pd.DataFrame({"item_id": cat.item_ids, "title": cat.titles,
                              "genres": [(f"topic{t}",) for t in self.item_topic], "year": cat.years})
        users = pd.DataFrame({"user_id": [f"user{u}" for u in range(n_users)]})
        inter = pd.DataFrame({
            "user": rows["user"].to_numpy(np.int32), "item": rows["item"].to_numpy(np.int32),
            "timestamp": rows["timestamp"].to_numpy(np.int64), "rating": rows["rating"].to_numpy(np.float32),
            "dwell": rows["dwell"].to_numpy(np.float32),
        }).sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
        meta = {"generator": "SyntheticUserModel", "config": {f.name: getattr(self.config, f.name)
                                                              for f in fields(self.config)}}
        return InteractionLog(inter, items, users, name="synthetic", meta=meta | (extra_meta or {}))


# ---------------------------------------------------------------------------- users who come back
LEAVE_RULES = ("hazard", "budget")
ITEM_SECONDS = 60.0
"""Seconds of the user's clock a consumed item takes (a slate without a click takes none): log timestamps."""


@dataclass(frozen=True)
class LongTermConfig:
    """Ground-truth leave hazard and return gaps of :class:`ReturningSyntheticUserModel`, with KNOWN coefficients.

    Both are written on the features of the fitters, :mod:`recsim_env.fit.leave` and
    :mod:`recsim_env.fit.returns` (same names, same raw units), so that fitting them on a log from
    :meth:`ReturningSyntheticUserModel.generate_log` with ``horizon_days`` must give these numbers back
    (the known-answer test, ``tests/users/test_synthetic_longterm.py``). Leave hazard, after each
    consumed item at 0-based session position ``p`` with rating ``r``:
    ``P(leave) = sigmoid(leave_intercept + leave_log1p_position · log(1 + p) + leave_rating · r
    + leave_shortfall · max(0, like_threshold - r) + leave_overlap · overlap)``, ``overlap`` the cosine
    of the item's topic with the session's topic profile so far (decayed by ``overlap_decay`` per item).
    Return gap (days) after a session: ``session_gap_seconds / 86400 + exp(μ + return_scale · W)``, ``W``
    standard minimum-extreme-value (a Weibull gap), ``μ`` linear in the session's covariates.
    """

    leave_rule: str = "hazard"
    """``hazard``: sessions end by the hazard below; ``budget``: by the time budget, as in
    :class:`SyntheticUserModel` (the session env ids), with these return gaps between sessions."""
    leave_intercept: float = -1.2
    """Log-odds of leaving after an item at position 0 with rating 0, no shortfall and no overlap."""
    leave_log1p_position: float = -0.3
    """Per unit of ``log(1 + position)``: users deep into a session leave less often (as in ML-100K)."""
    leave_rating: float = -0.3
    """Per rating point: a liked item keeps the user."""
    leave_shortfall: float = 0.3
    """Per rating point below ``SyntheticConfig.like_threshold``: a disappointment drives the user away."""
    leave_overlap: float = 1.0
    """Per unit of topic overlap with the session so far: repetition tires."""
    no_click_leave: float = 0.02
    """Probability of leaving after a slate without a click. A log of consumed items cannot show it
    (the fitter's ``no_click_leave`` is assumed for the same reason); 0 for a log to fit on."""
    overlap_decay: float = 0.7
    """Per-item fade of the session's topic profile (must equal ``LeaveConfig.overlap_decay`` to be recovered)."""
    return_intercept: float = 3.7
    """``μ`` (log days beyond the session gap) of a session whose covariates are all 0."""
    return_log1p_length: float = -0.3
    """Per unit of ``log(1 + items consumed in the session)``: long sessions bring users back sooner."""
    return_mean_rating: float = -0.3
    """Per point of the session's mean rating."""
    return_liked_share: float = -0.3
    """Per unit share of liked items (rating >= ``SyntheticConfig.like_threshold``)."""
    return_disliked_share: float = 0.5
    """Per unit share of disliked items (rating <= ``dislike_threshold``): users stay away longer."""
    return_genre_diversity: float = -0.5
    """Per unit of the session's topic diversity (Gini-Simpson ``1 - Σ p_t²``): variety brings users back."""
    return_log1p_sessions: float = -0.2
    """Per unit of ``log(1 + sessions so far)``, this one included: habit."""
    return_log1p_days_since_first: float = 0.1
    """Per unit of ``log(1 + days since the user's first session)``."""
    return_scale: float = 1.0
    """``σ`` of the Weibull error: 1 is an exponential excess gap given the covariates."""
    dislike_threshold: float = 2.0
    """A rating <= this is a dislike (``ReturnConfig.dislike_threshold``)."""
    session_gap_seconds: float = 1800.0
    """The shortest gap between sessions (``ReturnConfig.gap_seconds``: a log is cut into sessions there)."""

    def __post_init__(self) -> None:
        if self.leave_rule not in LEAVE_RULES:
            raise ConfigError(f"LongTermConfig.leave_rule must be one of {LEAVE_RULES}, got {self.leave_rule!r}")
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"LongTermConfig.{f.name} must be a finite number, got {value!r}")
        if not 0.0 <= self.no_click_leave <= 1.0:
            raise ConfigError(f"LongTermConfig.no_click_leave must be in [0, 1], got {self.no_click_leave!r}")
        if not 0.0 <= self.overlap_decay < 1.0:
            raise ConfigError(f"LongTermConfig.overlap_decay must be in [0, 1), got {self.overlap_decay!r}")
        for name in ("return_scale", "session_gap_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"LongTermConfig.{name} must be > 0, got {getattr(self, name)!r}")

    def leave_coefficients(self) -> dict[str, float]:
        """The hazard's coefficients under the leave fitter's feature names (the others are 0)."""
        return {name: getattr(self, f"leave_{name}") for name in ("log1p_position", "rating", "shortfall", "overlap")}

    def return_coefficients(self) -> dict[str, float]:
        """The return model's coefficients under the return fitter's covariate names."""
        names = ("log1p_length", "mean_rating", "liked_share", "disliked_share", "genre_diversity",
                 "log1p_sessions", "log1p_days_since_first")
        return {name: getattr(self, f"return_{name}") for name in names}


@dataclass
class ReturningSyntheticState(SyntheticState):
    """:class:`SyntheticState` plus what a session has been so far and the user's history of sessions."""

    session_items: np.ndarray
    """``(n,)`` items consumed in this session (the next item's 0-based position)."""
    session_ratings: np.ndarray
    """``(n, 3)`` this session's rating sum, liked items and disliked items."""
    session_topics: np.ndarray
    """``(n, n_topics)`` items consumed this session per topic (its genre mass)."""
    session_profile: np.ndarray
    """``(n, n_topics)`` topic profile of this session's items, faded by ``overlap_decay`` per item."""
    session_left: np.ndarray
    """``(n,)`` bool: the hazard ended this session."""
    sessions: np.ndarray
    """``(n,)`` sessions of the user so far, this one included."""
    session_start_day: np.ndarray
    """``(n,)`` days from the start of the user's first session to the start of this one."""


class ReturningSyntheticUserModel(SyntheticUserModel):
    """:class:`SyntheticUserModel` whose users end sessions by a known hazard and come back after known
    gaps: a :class:`~recsim_env.protocols.ReturningUserModel` (see :class:`LongTermConfig`).

    Within a session everything is as in the parent (choice, ratings, drift, fatigue, budget); a user's
    interests carry over to the next session, their topic fatigue and time budget start afresh.

    Examples:
        >>> import numpy as np
        >>> model = ReturningSyntheticUserModel()
        >>> state = model.sample(3, np.random.default_rng(0))
        >>> gaps = model.return_gaps(state, np.arange(3), np.random.default_rng(1))
        >>> bool((gaps >= 1800 / 86400).all())
        True
    """

    def __init__(self, config: SyntheticConfig | None = None, longterm: LongTermConfig | None = None) -> None:
        super().__init__(config)
        self.longterm = longterm or LongTermConfig()

    def state_for(self, users: np.ndarray) -> ReturningSyntheticState:
        base = super().state_for(users)
        n_users, n_topics = base.interest.shape
        return ReturningSyntheticState(
            **{f.name: getattr(base, f.name) for f in fields(SyntheticState)},
            session_items=np.zeros(n_users), session_ratings=np.zeros((n_users, 3)),
            session_topics=np.zeros((n_users, n_topics)), session_profile=np.zeros((n_users, n_topics)),
            session_left=np.zeros(n_users, dtype=bool), sessions=np.ones(n_users),
            session_start_day=np.zeros(n_users))

    def update(self, state: ReturningSyntheticState, slates: np.ndarray, responses: Responses,
               rng: np.random.Generator) -> None:
        super().update(state, slates, responses, rng)
        rows = (responses.choice >= 0).nonzero()[0]
        item = slates[rows, responses.choice[rows]]
        topic = self.item_topic[item]
        rating = responses.rating[rows, responses.choice[rows]].astype(np.float64)
        if self.longterm.leave_rule == "hazard":
            # One uniform per user and step, whatever was shown: the draw count never depends on the policy.
            leave = np.full(len(state.budget), self.longterm.no_click_leave)
            leave[rows] = self.leave_probability(state, rows, topic, rating)
            state.session_left |= rng.random(len(leave)) < leave
        self._consume(state, rows, topic, rating)

    def leave_probability(self, state: ReturningSyntheticState, rows: np.ndarray, topic: np.ndarray,
                          rating: np.ndarray) -> np.ndarray:
        """The true hazard after ``rows`` consumed items of ``topic`` rated ``rating`` (state before the item)."""
        truth = self.longterm
        profile = state.session_profile[rows]
        norm = np.sqrt(np.einsum("nt,nt->n", profile, profile))
        overlap = np.where(norm > 0, profile[np.arange(len(rows)), topic] / np.maximum(norm, 1e-12), 0.0)
        logit = (truth.leave_intercept + truth.leave_log1p_position * np.log1p(state.session_items[rows])
                 + truth.leave_rating * rating
                 + truth.leave_shortfall * np.maximum(self.config.like_threshold - rating, 0.0)
                 + truth.leave_overlap * overlap)
        return 1.0 / (1.0 + np.exp(-logit))

    def _consume(self, state: ReturningSyntheticState, rows: np.ndarray, topic: np.ndarray,
                 rating: np.ndarray) -> None:
        """Add the consumed items to their sessions' statistics and topic profiles."""
        state.session_items[rows] += 1.0
        state.session_ratings[rows] += np.column_stack([rating, rating >= self.config.like_threshold,
                                                        rating <= self.longterm.dislike_threshold])
        state.session_topics[rows, topic] += 1.0
        profile = state.session_profile[rows] * self.longterm.overlap_decay
        profile[np.arange(len(rows)), topic] += 1.0
        state.session_profile[rows] = profile

    def left(self, state: ReturningSyntheticState) -> np.ndarray:
        if self.longterm.leave_rule == "hazard":
            return state.session_left
        return super().left(state)

    # --- ReturningUserModel ----------------------------------------------------------------------
    def return_mean_log_gap(self, state: ReturningSyntheticState, rows: np.ndarray) -> np.ndarray:
        """``μ``: the true mean log excess gap (days) after the session ``rows`` just ended."""
        truth = self.longterm
        items = state.session_items[rows]
        per_item = state.session_ratings[rows] / np.maximum(items, 1.0)[:, None]
        topics = state.session_topics[rows]
        share = topics / np.maximum(topics.sum(axis=1, keepdims=True), 1.0)
        diversity = np.where(items > 0, 1.0 - (share ** 2).sum(axis=1), 0.0)
        days_since_first = state.session_start_day[rows] + self.session_days(state, rows)
        return (truth.return_intercept + truth.return_log1p_length * np.log1p(items)
                + truth.return_mean_rating * per_item[:, 0] + truth.return_liked_share * per_item[:, 1]
                + truth.return_disliked_share * per_item[:, 2] + truth.return_genre_diversity * diversity
                + truth.return_log1p_sessions * np.log1p(state.sessions[rows])
                + truth.return_log1p_days_since_first * np.log1p(days_since_first))

    def session_days(self, state: ReturningSyntheticState, rows: np.ndarray) -> np.ndarray:
        """Days from the first to the last consumed item of the sessions ``rows`` (``ITEM_SECONDS`` apart)."""
        return np.maximum(state.session_items[rows] - 1.0, 0.0) * ITEM_SECONDS / DAY_SECONDS

    def return_gaps(self, state: ReturningSyntheticState, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Days from the last consumed item of each ended session to the user's next session (a Weibull draw)."""
        rows = np.asarray(rows, dtype=np.int64)
        minimum_error = np.log(rng.standard_exponential(len(rows)))  # log of a unit exponential
        excess = np.exp(self.return_mean_log_gap(state, rows) + self.longterm.return_scale * minimum_error)
        return self.longterm.session_gap_seconds / DAY_SECONDS + excess

    def start_session(self, state: ReturningSyntheticState, rows: np.ndarray, days_elapsed: np.ndarray,
                      rng: np.random.Generator) -> None:
        """The users of ``rows`` come back ``days_elapsed`` days after their last session's last item."""
        rows = np.asarray(rows, dtype=np.int64)
        state.session_start_day[rows] += self.session_days(state, rows) + np.asarray(days_elapsed, np.float64)
        state.sessions[rows] += 1.0
        state.budget[rows] = self.config.time_budget
        for per_session in (state.fatigue, state.session_items, state.session_ratings, state.session_topics,
                            state.session_profile, state.session_left):
            per_session[rows] = 0

    # --- logs --------------------------------------------------------------------------------------
    def generate_log(self, n_users: int, rng: np.random.Generator, policy=None, slate_size: int = 10,
                     n_candidates: int = 100, step_cap: int = 100, horizon_days: float | None = None) -> InteractionLog:
        """:meth:`SyntheticUserModel.generate_log`, or with ``horizon_days`` every session of each user over
        that many days: the users' first sessions start uniformly over the first third of the horizon,
        consumed items are ``ITEM_SECONDS`` apart, sessions follow each other by the true return gaps,
        and the log ends at the horizon (``log.meta["end_time"]``, epoch seconds: pass it to the fitters
        as ``end_time``, the sessions still going on are censored there)."""
        if horizon_days is None:
            return super().generate_log(n_users, rng, policy, slate_size, n_candidates, step_cap)
        if not 1 <= n_users <= self.n_logged_users:
            raise ConfigError(f"n_users must be in [1, {self.n_logged_users}] (the population), got {n_users}")
        if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, float)) or not 0 < horizon_days < 1e5:
            raise ConfigError(f"horizon_days must be a number of days in (0, 1e5), got {horizon_days!r}")
        rows, end_time = simulate_lifetimes(self, n_users, rng, policy, slate_size, n_candidates, step_cap,
                                            float(horizon_days))
        return self._as_log(rows, n_users, {"end_time": end_time, "horizon_days": float(horizon_days),
                                            "longterm": {f.name: getattr(self.longterm, f.name)
                                                         for f in fields(self.longterm)}})


def rollout_log_rows(model, n_users: int, rng: np.random.Generator, policy, slate_size: int,
                      n_candidates: int, step_cap: int) -> pd.DataFrame:
    """Clicks of one session of each of users ``0..n_users-1``, stepped in one batch by the vector env."""
    # Imported here: the env composes user models, so a user model only reaches for it to make data.
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv, merge_final_info

    config = EnvConfig(slate_size=slate_size, n_candidates=n_candidates, step_cap=step_cap)
    env = RecVectorEnv(_Cohort(model, n_users), config=config, num_envs=n_users)
    obs, _ = env.reset(seed=int(rng.integers(2**63 - 1)))
    active = np.ones(n_users, dtype=bool)
    out: list[tuple[np.ndarray, ...]] = []
    for step in range(step_cap):
        if policy is None:
            action = np.tile(np.arange(slate_size), (n_users, 1))
        else:
            action, _ = policy.predict(obs, deterministic=False)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated | truncated
        responses = merge_final_info(info, done)
        rows, slots = np.nonzero((responses["click"] > 0) & active[:, None])
        out.append((rows, responses["slate"][rows, slots], np.full(len(rows), step),
                    responses["rating"][rows, slots], responses["dwell"][rows, slots]))
        active &= ~done
        if not active.any():
            break
    users, items, steps, ratings, dwells = (np.concatenate(c) for c in zip(*out))
    return pd.DataFrame({"user": users, "item": items, "timestamp": 1_000_000_000 + users * 86_400 + steps * 60,
                         "rating": ratings, "dwell": dwells})


LOG_START = 1_000_000_000
"""Epoch seconds at which generated logs begin."""


def simulate_lifetimes(model: ReturningSyntheticUserModel, n_users: int, rng: np.random.Generator, policy,
                       slate_size: int, n_candidates: int, step_cap: int,
                       horizon_days: float) -> tuple[pd.DataFrame, float]:
    """Clicks of every session of users ``0..n_users-1`` over the horizon, stepped by the lifetime vector env;
    and the log's end (epoch seconds). Timestamps follow the model's clock: ``ITEM_SECONDS`` per consumed
    item, the drawn gap (rounded up to a second) from a session's last item to the next session's first."""
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.lifetime import LifetimeConfig, LifetimeVectorEnv
    from recsim_env.env.vector import merge_final_info

    # No time per step and a day's margin: the env must outlast the log's window, which the cut below ends.
    lifetime = LifetimeConfig(horizon=horizon_days + 1.0, step_minutes=0.0, max_steps=10**7)
    env = LifetimeVectorEnv(_Cohort(model, n_users), config=EnvConfig(slate_size=slate_size, n_candidates=n_candidates,
                                                                       step_cap=step_cap),
                            lifetime=lifetime, num_envs=n_users)
    obs, _ = env.reset(seed=int(rng.integers(2**63 - 1)))
    end_time = LOG_START + horizon_days * DAY_SECONDS
    session_start = np.floor(LOG_START + rng.uniform(0.0, horizon_days / 3, n_users) * DAY_SECONDS)
    session_items = np.zeros(n_users)
    active = np.ones(n_users, dtype=bool)
    out: list[tuple[np.ndarray, ...]] = []
    while active.any():
        action = np.tile(np.arange(slate_size), (n_users, 1)) if policy is None else \
            policy.predict(obs, deterministic=False)[0]
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated | truncated
        step = merge_final_info(info, done)
        rows, slots = np.nonzero((step["click"] > 0) & active[:, None])
        out.append((rows, step["slate"][rows, slots], session_start[rows] + ITEM_SECONDS * session_items[rows],
                    step["rating"][rows, slots], step["dwell"][rows, slots]))
        session_items[rows] += 1.0
        back = np.flatnonzero(step["returned"] & active)
        last_item = session_start[back] + ITEM_SECONDS * np.maximum(session_items[back] - 1.0, 0.0)
        session_start[back] = last_item + np.ceil(step["gap_days"][back] * DAY_SECONDS)
        session_items[back] = 0.0
        active &= ~done & (session_start < end_time)
    users, items, times, ratings, dwells = (np.concatenate(c) for c in zip(*out))
    frame = pd.DataFrame({"user": users, "item": items, "timestamp": times.astype(np.int64), "rating": ratings,
                          "dwell": dwells})
    return frame[frame["timestamp"] < end_time], end_time


class _Cohort:
    """A view of a model whose first ``sample`` returns population users ``0..n-1`` in order."""

    def __init__(self, model: SyntheticUserModel, n_users: int) -> None:
        self._model, self._n_users = model, n_users

    def sample(self, n: int, rng: np.random.Generator) -> SyntheticState:
        return self._model.state_for(np.arange(n) % self._n_users)

    def __getattr__(self, name: str):
        return getattr(self._model, name)
