"""Views of the env for particular learners — wrappers, never env code.

* :class:`SingleItemDiscrete` — ``Discrete(n_candidates)`` actions for value-based learners such as
  Stable-Baselines3's DQN: the chosen candidate fills slot 0, the rest of the slate follows a rule;
  the learner is credited with the slate's reward or only its own slot's (``credit``).
* :class:`FlattenRecObservation` — one float32 vector per observation for MLP policies.

The batched env as a Stable-Baselines3 ``VecEnv`` is :class:`agents.sb3_vec_env.SB3VecEnvAdapter`:
this package never imports Stable-Baselines3.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recsim_env.errors import ActionError, ConfigError

Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Observation -> ``(n_candidates,)`` scores; higher is shown earlier."""

CREDITS = ("slate", "pick")
"""What a single-item view rewards its learner with: the env's reward for the whole slate, or the
same reward function applied to slot 0 alone (the learner's own pick)."""


def slot_reward_fn(env: Any, credit: str) -> Any:
    """The env's per-slot reward function for ``credit="pick"`` (None for ``"slate"``); a
    :class:`ConfigError` for an unknown credit or a reward function that cannot split by slot."""
    if credit not in CREDITS:
        raise ConfigError(f"credit must be one of {list(CREDITS)}, got {credit!r}")
    if credit == "slate":
        return None
    reward_fn = getattr(getattr(env, "unwrapped", env), "reward_fn", None)
    if not callable(getattr(reward_fn, "per_slot", None)):
        raise ConfigError(f"credit='pick' needs a reward function with per_slot() (a WeightedReward); the env's is "
                          f"{reward_fn!r}. Use credit='slate' for a custom reward.")
    return reward_fn


class CreditedView:
    """The ``credit`` of a single-item view: setting it checks the value and looks up the per-slot
    reward function of ``self._reward_source`` (the env whose reward is split), so the two never
    disagree (a resumed run sets the credit it was trained with)."""

    _reward_source: Any
    _slot_reward: Any

    @property
    def credit(self) -> str:
        return self._credit

    @credit.setter
    def credit(self, value: str) -> None:
        self._slot_reward = slot_reward_fn(self._reward_source, value)
        self._credit = value


class SingleItemDiscrete(CreditedView, gym.Wrapper):
    """``Discrete(n_candidates)``: the agent picks the candidate for slot 0; the rule fills the rest.

    Fill rule: with a ``scorer``, slots 1.. hold the highest-scoring other candidates in descending
    score order (ties by position); without one, the candidates that follow the chosen position
    cyclically (``a+1, a+2, ... mod n_candidates``) — a fixed, policy-independent filler, so the
    agent's choice is the only thing that varies between its actions.

    Credit: ``"slate"`` (default) passes the env's reward through; ``"pick"`` returns the env's
    reward function applied to slot 0 alone (the response to the learner's own item), and keeps the
    slate's reward in ``info["slate_reward"]``. The filler's clicks are the same whichever item the
    learner picks, up to a shift of one slot, so under ``"slate"`` they are noise several times the
    size of the pick's own effect.
    """

    def __init__(self, env: gym.Env, scorer: Scorer | None = None, credit: str = "slate") -> None:
        super().__init__(env)
        if not isinstance(env.action_space, spaces.MultiDiscrete) or env.action_space.nvec.ndim != 1:
            raise ConfigError(f"SingleItemDiscrete wraps a single slate env, got action space {env.action_space}")
        self.n_candidates = int(env.action_space.nvec[0])
        self.slate_size = len(env.action_space.nvec)
        self.scorer = scorer
        self._reward_source = env
        self.credit = credit
        self.action_space = spaces.Discrete(self.n_candidates)
        self._offsets = np.arange(self.slate_size, dtype=np.int64)
        self._last_obs: dict[str, np.ndarray] | None = None

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._last_obs = obs
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self.slate(action))
        self._last_obs = obs
        if self._slot_reward is not None:
            info = {**info, "slate_reward": reward}
            reward = float(self._slot_reward.per_slot(info)[0])
        return obs, reward, terminated, truncated, info

    def slate(self, action: Any) -> np.ndarray:
        """The ``(slate_size,)`` candidate positions shown for a ``Discrete`` action."""
        a = np.asarray(action)
        if a.size != 1 or a.dtype.kind not in "iu":
            raise ActionError(f"SingleItemDiscrete takes one integer candidate position, got {action!r}")
        first = int(a.reshape(()))
        if not 0 <= first < self.n_candidates:
            raise ActionError(f"slot 0 holds candidate position {first}, outside [0, {self.n_candidates})")
        if self.scorer is None:
            return (first + self._offsets) % self.n_candidates
        scores = np.asarray(self.scorer(self._last_obs), dtype=np.float64).copy()
        scores[first] = np.inf
        return np.argsort(-scores, kind="stable")[: self.slate_size].astype(np.int64)


class FlattenRecObservation(gym.ObservationWrapper):
    """The Dict observation as one float32 vector: the ``keys`` (default: all) flattened, concatenated.

    Gymnasium's ``FlattenObservation`` gives float64 for these mixed int/float Boxes; MLP policies
    want float32, and often a subset of keys (item indices are ids, not magnitudes).
    """

    def __init__(self, env: gym.Env, keys: Sequence[str] | None = None) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict):
            raise ConfigError(f"FlattenRecObservation needs a Dict observation space, got {space}")
        self.keys = tuple(keys) if keys is not None else tuple(space.spaces)
        unknown = [k for k in self.keys if k not in space.spaces]
        if unknown:
            raise ConfigError(f"unknown observation key(s) {unknown}; available: {list(space.spaces)}")
        low = np.concatenate([np.asarray(space[k].low, dtype=np.float32).ravel() for k in self.keys])
        high = np.concatenate([np.asarray(space[k].high, dtype=np.float32).ravel() for k in self.keys])
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(observation[k], dtype=np.float32).ravel() for k in self.keys])


