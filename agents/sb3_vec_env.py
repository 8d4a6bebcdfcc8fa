"""`SB3VecEnvAdapter`: a :class:`~recsim_env.env.vector.RecVectorEnv` as a Stable-Baselines3 ``VecEnv``.

SB3 takes its own vector API, not Gymnasium's; this adapter lives with the agents because it is the
one place outside :mod:`agents.sb3_dqn` that needs Stable-Baselines3, which ``recsim_env`` never imports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from recsim_env.env.vector import RecVectorEnv, merge_final_info
from recsim_env.errors import ConfigError


class SB3VecEnvAdapter(VecEnv):
    """A :class:`RecVectorEnv` behind Stable-Baselines3's ``VecEnv`` API.

    Both autoreset in the step an episode ends, so this only translates: the ended episode's last
    observation goes to ``infos[i]["terminal_observation"]``, truncation to
    ``infos[i]["TimeLimit.truncated"]``. Per-slot responses are copied into ``infos`` only with
    ``include_responses=True`` (a dict per user per step is the adapter's main cost).
    """

    def __init__(self, venv: RecVectorEnv, include_responses: bool = False) -> None:
        if not isinstance(venv, RecVectorEnv):
            raise ConfigError(f"SB3VecEnvAdapter wraps a RecVectorEnv, got {type(venv).__name__}")
        self.venv = venv
        self.include_responses = include_responses
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    def reset(self):
        seed = self._seeds[0]
        obs, _ = self.venv.reset(seed=seed)
        self._seeds = [None] * self.num_envs
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if self.include_responses:
            merged = merge_final_info(info, dones)
            for i in range(self.num_envs):
                infos[i].update({k: merged[k][i] for k in ("click", "rating", "like", "dwell", "choice", "slate")})
        return obs, rewards, dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)
