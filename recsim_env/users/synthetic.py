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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.errors import ConfigError
from recsim_env.protocols import Responses
from recsim_env.users.choice import MultinomialLogit

_POSITIVE = ("n_items", "n_topics", "n_users", "time_budget", "item_length_min", "max_interest")
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
            if not np.isfinite(value):
                raise ConfigError(f"SyntheticConfig.{f.name} must be finite, got {value!r}")
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
        for f in fields(SyntheticState):
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
        attract = np.exp(self.population_interest[:, self.item_topic] + self.item_appeal).mean(axis=0)
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
        rows = simulate_sessions(self, n_users, rng, policy, slate_size, n_candidates, step_cap)
        return self._as_log(rows, n_users)

    def _as_log(self, rows: pd.DataFrame, n_users: int) -> InteractionLog:
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
        return InteractionLog(inter, items, users, name="synthetic", meta=meta)


def simulate_sessions(model, n_users: int, rng: np.random.Generator, policy, slate_size: int,
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


class _Cohort:
    """A view of a model whose first ``sample`` returns population users ``0..n-1`` in order."""

    def __init__(self, model: SyntheticUserModel, n_users: int) -> None:
        self._model, self._n_users = model, n_users

    def sample(self, n: int, rng: np.random.Generator) -> SyntheticState:
        return self._model.state_for(np.arange(n) % self._n_users)

    def __getattr__(self, name: str):
        return getattr(self._model, name)
