"""Lifetime episodes: one episode is one user's sequence of sessions over a horizon of simulated days.

The session is the session env's, step for step: :class:`LifetimeSimulation` *is* a
:class:`~recsim_env.env.simulation.SlateSimulation` whose step it calls unchanged. What it adds
happens where a session ends (the user model's ``left``, or the session's ``step_cap``): the
:class:`~recsim_env.protocols.ReturningUserModel` draws how many days the user stays away
(``return_gaps``), the clock moves on by them, and if the user is back before the horizon the next
session opens at once (``start_session``: the same user, with their interests and consumption history;
the session's step counter, clicks and context start again). :class:`LifetimeEnv` steps one user,
:class:`LifetimeVectorEnv` N of them (it is a :class:`~recsim_env.env.vector.RecVectorEnv` over this
simulation, so autoreset, final observations and state export are that env's).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from recsim_env.data.catalog import ItemCatalog
from recsim_env.env.config import EnvConfig, config_from_dict, observation_space
from recsim_env.env.rewards import WeightedReward
from recsim_env.env.simulation import RandomStreams, SlateSimulation, UserStateView, _matching
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.protocols import ReturningUserModel, RewardFn, UserModel

TIME_UNITS = {"hours": 1.0 / 24.0, "days": 1.0, "weeks": 7.0}
"""Days per unit of :attr:`LifetimeConfig.horizon`."""
LIFETIME_INFO = ("session_end", "returned", "gap_days")
"""The keys a lifetime step adds to the session env's info."""
_LIFETIME_ARRAYS = ("session_index", "days_since_last", "clock_days", "lifetime_steps")


@dataclass(frozen=True)
class LifetimeConfig:
    """How long a lifetime episode lasts and what a return is worth."""

    horizon: float = 60.0
    """Simulated time an episode covers, in ``time_unit``: a session must start before it ends."""
    time_unit: str = "days"
    """Unit of ``horizon``: ``hours``, ``days`` or ``weeks``. Gaps are always days (the protocol's unit)."""
    return_bonus: float = 0.0
    """Reward added at the step a session ends when the user comes back within the horizon (>= 0)."""
    step_minutes: float = 1.0
    """Simulated minutes a step takes: the horizon can pass in the middle of a session (then ``truncated``)."""
    max_steps: int = 10_000
    """Steps after which an episode is truncated whatever the clock says: a safeguard against a user model
    whose users always come back at once."""

    def __post_init__(self) -> None:
        for name in ("horizon", "return_bonus", "step_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
                raise ConfigError(f"LifetimeConfig.{name} must be a finite number, got {value!r}")
        if self.horizon <= 0:
            raise ConfigError(f"LifetimeConfig.horizon must be > 0, got {self.horizon!r}")
        if self.time_unit not in TIME_UNITS:
            raise ConfigError(f"LifetimeConfig.time_unit must be one of {tuple(TIME_UNITS)}, got {self.time_unit!r}")
        if self.return_bonus < 0:
            raise ConfigError(f"LifetimeConfig.return_bonus must be >= 0 (a bonus for coming back), "
                              f"got {self.return_bonus!r}")
        if self.step_minutes < 0:
            raise ConfigError(f"LifetimeConfig.step_minutes must be >= 0, got {self.step_minutes!r}")
        steps = self.max_steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ConfigError(f"LifetimeConfig.max_steps must be an integer >= 1, got {steps!r}")

    @property
    def horizon_days(self) -> float:
        return float(self.horizon) * TIME_UNITS[self.time_unit]

    @classmethod
    def coerce(cls, value: "LifetimeConfig | dict | None") -> "LifetimeConfig":
        """A config from itself, a dict of its fields (naming any unknown one) or ``None`` (the defaults)."""
        if value is None or isinstance(value, cls):
            return value or cls()
        if not isinstance(value, dict):
            raise ConfigError(f"lifetime must be a LifetimeConfig or a dict of its fields, got {value!r}")
        return config_from_dict(cls, value, "lifetime (LifetimeConfig fields)")


def field_names() -> tuple[str, ...]:
    """The names of :class:`LifetimeConfig`'s fields (to split an id's keyword options)."""
    return tuple(f.name for f in dataclasses.fields(LifetimeConfig))


def check_returning(user_model: Any) -> None:
    """:class:`ConfigError` naming what ``user_model`` lacks to be a :class:`ReturningUserModel`."""
    if isinstance(user_model, ReturningUserModel):
        return
    missing = [name for name in ("return_gaps", "start_session") if not callable(getattr(user_model, name, None))]
    missing += [name for name in ("n_items", "n_user_features", "n_logged_users", "max_rating", "sample", "replace",
                                  "features", "user_index", "respond", "update", "left")
                if not hasattr(user_model, name)]
    raise ConfigError(f"a lifetime env needs a ReturningUserModel (recsim_env.protocols): "
                      f"{type(user_model).__name__} has no {', '.join(missing)}")


def lifetime_observation_space(user_model: UserModel, config: EnvConfig, n_features: int | None,
                               lifetime: LifetimeConfig) -> spaces.Dict:
    """The session env's single-user space plus ``session_index`` and ``days_since_last_session``."""
    entries = dict(observation_space(user_model, config, n_features).spaces)
    entries["session_index"] = spaces.Box(0, lifetime.max_steps, (1,), np.int64)
    entries["days_since_last_session"] = spaces.Box(0.0, np.float32(lifetime.horizon_days), (1,), np.float32)
    return spaces.Dict(entries)


class LifetimeSimulation(SlateSimulation):
    """``n`` users' lifetimes: the session step, then gaps and new sessions where sessions ended."""

    def __init__(self, user_model: ReturningUserModel, catalog: ItemCatalog | None, config: EnvConfig,
                 reward_fn: RewardFn, n: int, lifetime: LifetimeConfig) -> None:
        check_returning(user_model)
        # A model whose start state differs between a lone session and a lifetime (the fitted model's: a drawn
        # training session's state vs the logged user's whole history) says so by `for_lifetime`.
        for_lifetime = getattr(user_model, "for_lifetime", None)
        super().__init__(for_lifetime() if callable(for_lifetime) else user_model, catalog, config, reward_fn, n)
        self.lifetime = lifetime
        self._step_days = lifetime.step_minutes / (24.0 * 60.0)
        self.returns: np.random.Generator | None = None

    def reset(self, seed: int | None) -> None:
        """As the session simulation's; gaps and new sessions draw from a fourth stream of the same seed,
        so that they never shift the responses' stream."""
        reseed = seed is not None or self.streams is None
        super().reset(seed)
        if reseed:
            child = np.random.SeedSequence(seed).spawn(len(RandomStreams._fields) + 1)[-1]
            self.returns = np.random.default_rng(child)
        self.session_index = np.zeros(self.n, dtype=np.int64)
        self.days_since_last = np.zeros(self.n, dtype=np.float64)
        self.clock_days = np.zeros(self.n, dtype=np.float64)
        self.lifetime_steps = np.zeros(self.n, dtype=np.int64)

    def replace(self, rows: np.ndarray) -> None:
        super().replace(rows)
        for name in _LIFETIME_ARRAYS:
            getattr(self, name)[rows] = 0

    def step(self, action: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """The session step; a session that ends is followed by a gap, and by the next session if the
        user is back before the horizon. Returns ``(reward, terminated, truncated, info)`` over ``n``."""
        reward, left, capped, info = super().step(action)
        session_end = left | capped
        self.lifetime_steps += 1
        self.clock_days += self._step_days
        gap_days = np.zeros(self.n)  # 0 where no session ended (not NaN: equal infos must compare equal)
        returned = np.zeros(self.n, dtype=bool)
        ended = session_end.nonzero()[0]
        if len(ended):
            gaps = self._gaps(ended)
            gap_days[ended] = gaps
            back = self.clock_days[ended] + gaps < self.lifetime.horizon_days  # inf: never back
            returned[ended] = back
            self._open_sessions(ended[back], gaps[back])
        terminated = session_end & ~returned
        out_of_time = (self.clock_days >= self.lifetime.horizon_days) | (self.lifetime_steps >= self.lifetime.max_steps)
        truncated = out_of_time & ~terminated
        if self.lifetime.return_bonus:
            reward = reward + np.float32(self.lifetime.return_bonus) * returned
        info["session_end"] = session_end
        info["returned"] = returned
        info["gap_days"] = gap_days
        return reward, terminated, truncated, info

    def _gaps(self, rows: np.ndarray) -> np.ndarray:
        gaps = np.asarray(self.model.return_gaps(self.state, rows, self.returns), dtype=np.float64)
        if gaps.shape != rows.shape or np.isnan(gaps).any() or (gaps < 0).any():
            raise ConfigError(f"{type(self.model).__name__}.return_gaps must give {len(rows)} gaps in days, "
                              f">= 0 (inf: never back), got {gaps!r}")
        return gaps

    def _open_sessions(self, rows: np.ndarray, gaps: np.ndarray) -> None:
        """The users of ``rows`` come back after ``gaps`` days; their candidates are already drawn."""
        if not len(rows):
            return
        self.model.start_session(self.state, rows, gaps, self.returns)
        self.clock_days[rows] += gaps
        self.days_since_last[rows] = gaps
        self.session_index[rows] += 1
        for per_session in (self.steps, self.clicks, self.last_click, self.last_rating):
            per_session[rows] = 0

    def set_streams(self, states: dict[str, Any]) -> None:
        """The session streams', then the gaps' and new sessions' stream's state (``states["returns"]``)."""
        super().set_streams(states)
        self.returns.bit_generator.state = states["returns"]

    def observe(self, rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        obs = super().observe(rows)
        obs["session_index"] = self.session_index[rows].reshape(-1, 1).copy()
        obs["days_since_last_session"] = self.days_since_last[rows].reshape(-1, 1).astype(np.float32)
        return obs

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["lifetime"] = {name: getattr(self, name).copy() for name in _LIFETIME_ARRAYS}
        state["returns_stream"] = self.returns.bit_generator.state
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        arrays = _matching(state["lifetime"], {name: getattr(self, name) for name in _LIFETIME_ARRAYS},
                           "state['lifetime']")
        for name, value in arrays.items():
            setattr(self, name, value)
        self.returns.bit_generator.state = state["returns_stream"]


class LifetimeEnv(UserStateView, gym.Env):
    """One simulated user's sessions over a horizon of days: where long-term value can be won.

    ## Description
    Within a session everything is :class:`~recsim_env.env.rec_env.RecEnv`'s (candidates, slate,
    responses, reward). A session ends when the user model's ``left`` says so (for the fitted model,
    its leave hazard per consumed item) or after ``step_cap`` steps; the user model's ``return_gaps``
    then draws the days until the user's next session. Every step takes ``step_minutes`` of simulated
    time. The user model must be a :class:`~recsim_env.protocols.ReturningUserModel`.

    ## Action Space
    ``MultiDiscrete([n_candidates] * slate_size)``, as :class:`RecEnv`'s.

    ## Observation Space
    :class:`RecEnv`'s ``Dict`` (``context`` is the current session's) plus:

    | key                     | shape | dtype   | meaning                                              |
    |-------------------------|-------|---------|------------------------------------------------------|
    | session_index           | (1,)  | int64   | sessions before this one in the episode (0 first)    |
    | days_since_last_session | (1,)  | float32 | the gap before this session, in days (0 in the first)|

    ## Rewards
    The session env's reward at every step, plus ``return_bonus`` at a step whose session ended and
    whose user comes back within the horizon (default 0: the reward is the session env's).

    ## Starting State
    A new user (``user_model.for_lifetime().sample`` where the model has it: the fitted model's user then
    continues its logged one, at its whole history), session 0, day 0. Randomness as :class:`RecEnv`'s, plus a
    fourth stream of the reset seed for the gaps and the new sessions.

    ## Episode End
    ``terminated``: a session ended and the user does not come back within the horizon (their gap runs
    past it, or is infinite). ``truncated``: the horizon passed during a session, or ``max_steps``.

    ## Info
    The session env's keys plus ``session_end`` (bool: this step ended a session), ``returned`` (bool:
    and the user comes back within the horizon, whose next session the observation shows) and
    ``gap_days`` (the drawn gap, 0 where no session ended; it may run past the horizon).

    ## Arguments
    ``LifetimeEnv(user_model, catalog=None, config=EnvConfig(), lifetime=LifetimeConfig(), reward_fn=None)``;
    ``gym.make("recsim_env:RecSim/Synthetic-Lifetime-v0", horizon=30, return_bonus=1.0)`` takes any
    :class:`EnvConfig` or :class:`LifetimeConfig` field.

    ## Version History
    * v0: initial version.

    ## Examples
    >>> from recsim_env.env.lifetime import LifetimeEnv
    >>> from recsim_env.users.synthetic import ReturningSyntheticUserModel
    >>> model = ReturningSyntheticUserModel()
    >>> env = LifetimeEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10))
    >>> obs, info = env.reset(seed=0)
    >>> obs["session_index"], obs["days_since_last_session"]
    (array([0]), array([0.], dtype=float32))
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> sorted(k for k in info if k in ("session_end", "returned", "gap_days"))
    ['gap_days', 'returned', 'session_end']
    """

    metadata = {"render_modes": []}

    def __init__(self, user_model: ReturningUserModel, catalog: ItemCatalog | None = None,
                 config: EnvConfig | None = None, lifetime: LifetimeConfig | dict | None = None,
                 reward_fn: RewardFn | None = None) -> None:
        config = config or EnvConfig()
        self.lifetime = LifetimeConfig.coerce(lifetime)
        self.user_model, self.catalog, self.config = user_model, catalog, config
        self.reward_fn = reward_fn or WeightedReward(config.reward)
        self._sim = LifetimeSimulation(user_model, catalog, config, self.reward_fn, 1, self.lifetime)
        n_features = None if self._sim.item_features is None else self._sim.item_features.shape[1]
        self.observation_space = lifetime_observation_space(user_model, config, n_features, self.lifetime)
        self.action_space = spaces.MultiDiscrete(np.full(config.slate_size, config.n_candidates, dtype=np.int64))
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._sim.reset(seed)
        self._needs_reset = False
        return self._observe(), {}

    def step(self, action: Any):
        if self._needs_reset:
            raise gym.error.ResetNeeded("call reset() before step(), and again after the episode ended")
        reward, terminated, truncated, info = self._sim.step(action)
        self._needs_reset = bool(terminated[0] or truncated[0])
        info = {key: value[0] for key, value in info.items()}
        return self._observe(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def _observe(self) -> dict[str, np.ndarray]:
        return {key: value[0] for key, value in self._sim.observe().items()}


class LifetimeVectorEnv(RecVectorEnv):
    """``num_envs`` users' lifetimes, batched: :class:`RecVectorEnv` (SAME_STEP autoreset: a new user in a
    row whose lifetime ended) over a :class:`LifetimeSimulation`; spaces and info as :class:`LifetimeEnv`'s.

    Examples:
        >>> from recsim_env.users.synthetic import ReturningSyntheticUserModel
        >>> model = ReturningSyntheticUserModel()
        >>> venv = LifetimeVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=4)
        >>> obs, _ = venv.reset(seed=0)
        >>> obs["session_index"].shape, obs["days_since_last_session"].dtype
        ((4, 1), dtype('float32'))
    """

    def __init__(self, user_model: ReturningUserModel, catalog: ItemCatalog | None = None,
                 config: EnvConfig | None = None, lifetime: LifetimeConfig | dict | None = None,
                 reward_fn: RewardFn | None = None, num_envs: int = 1) -> None:
        check_returning(user_model)
        self.lifetime = LifetimeConfig.coerce(lifetime)
        super().__init__(user_model, catalog, config, reward_fn, num_envs)
        self._sim = LifetimeSimulation(user_model, catalog, self.config, self.reward_fn, self.num_envs, self.lifetime)
        n_features = None if self._sim.item_features is None else self._sim.item_features.shape[1]
        self.single_observation_space = lifetime_observation_space(user_model, self.config, n_features, self.lifetime)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
