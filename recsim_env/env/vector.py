"""`RecVectorEnv`: N simulated users stepped as array operations — the hot path.

A natively batched :class:`gymnasium.vector.VectorEnv` over the same :class:`SlateSimulation` as
:class:`~recsim_env.env.rec_env.RecEnv`, so each of its N rows behaves exactly like one single env (same
spaces, same dynamics) while a step costs a handful of array operations instead of N Python calls.

Autoreset is ``AutoresetMode.SAME_STEP``, with the conventions of Gymnasium 1.x's ``SyncVectorEnv``
in that mode: when user ``i``'s episode ends, the step returns the *new* user's first observation in
row ``i``; the ended episode's last observation is ``info["final_obs"][i]`` (an object array of
single-env observation dicts, ``None`` elsewhere, mask ``info["_final_obs"]``) and its step info is
in ``info["final_info"]`` (same keys as the step info, arrays over N with ``_key`` masks true only
for ended rows — other rows are unspecified — mask ``info["_final_info"]``). The top-level per-step
info of an ended row holds the new episode's (empty) reset info: zeros, with its ``_key`` mask
false (and when every row ended, the per-step keys are absent altogether).

Randomness: ``reset(seed=s)`` spawns independent user, candidate and response streams from ``s``
(see :class:`~recsim_env.env.simulation.RandomStreams`). Replacement users come from the user stream, and
every row's candidates are drawn each step from the candidate stream whatever the actions were, so
policies run from the same seed see the same candidate sets in row ``i`` while its first user stays.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recsim_env.data.catalog import ItemCatalog
from recsim_env.env.config import EnvConfig, observation_space
from recsim_env.env.rewards import WeightedReward
from recsim_env.env.simulation import SlateSimulation, UserStateView
from recsim_env.errors import ConfigError
from recsim_env.protocols import RewardFn, UserModel

STATE_FORMAT = 1
"""Version of :meth:`RecVectorEnv.get_state`'s layout."""


class RecVectorEnv(UserStateView, VectorEnv):
    """``num_envs`` users of one user model, batched; see the module docstring for autoreset.

    ``RecVectorEnv(user_model, catalog=None, config=EnvConfig(), reward_fn=None, num_envs=1024)`` or
    ``gym.make_vec("recsim_env:RecSim/Synthetic-v0", num_envs=N, vectorization_mode="vector_entry_point")``.

    Examples:
        >>> import numpy as np
        >>> from recsim_env import EnvConfig, RecVectorEnv, SyntheticUserModel
        >>> model = SyntheticUserModel()
        >>> venv = RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=4)
        >>> obs, info = venv.reset(seed=0)
        >>> obs["candidates"].shape
        (4, 10)
        >>> obs, reward, terminated, truncated, info = venv.step(np.tile(np.arange(3), (4, 1)))
        >>> reward.shape, info["click"].shape
        ((4,), (4, 3))
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, user_model: UserModel, catalog: ItemCatalog | None = None, config: EnvConfig | None = None,
                 reward_fn: RewardFn | None = None, num_envs: int = 1, **overrides: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ConfigError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        config = (config or EnvConfig()).with_overrides(**overrides)
        self.user_model = user_model
        self.catalog = catalog
        self.config = config
        self.num_envs = int(num_envs)
        self.reward_fn = reward_fn or WeightedReward(config.reward)
        self._sim = SlateSimulation(user_model, catalog, config, self.reward_fn, n=self.num_envs)
        n_features = None if self._sim.item_features is None else self._sim.item_features.shape[1]
        self.single_observation_space = observation_space(user_model, config, n_features)
        self.single_action_space = _multi_discrete(config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._needs_reset = True

    def get_state(self) -> dict[str, Any]:
        """The env's whole state as numpy arrays and plain values, for :meth:`set_state` (checkpoints).

        Nothing in it is an object, so it can be stored without pickle. Raises
        :class:`NotImplementedError` before the first reset, or when the user model's state is not a
        dataclass or dict of numpy arrays.

        Examples:
            >>> from recsim_env.users.synthetic import SyntheticUserModel
            >>> env = RecVectorEnv(SyntheticUserModel(), num_envs=4)
            >>> _ = env.reset(seed=0)
            >>> twin = RecVectorEnv(SyntheticUserModel(), num_envs=4)
            >>> twin.set_state(env.get_state())
            >>> slate = np.tile(np.arange(env.config.slate_size), (4, 1))
            >>> bool((env.step(slate)[1] == twin.step(slate)[1]).all())
            True
        """
        if self._needs_reset:
            raise NotImplementedError("RecVectorEnv has no state to export before its first reset()")
        seed_rng = self._np_random  # Gymnasium's own generator, seeded by reset(seed=...)
        return {"format": STATE_FORMAT, "num_envs": self.num_envs, "simulation": self._sim.get_state(),
                "np_random": None if seed_rng is None else seed_rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`get_state`'s output, taken from an env of the same model, config and
        ``num_envs``; the next :meth:`step` is the one the exported env would have taken next.

        Raises :class:`ConfigError` naming what differs (format, ``num_envs``, an array's shape)."""
        if state.get("format") != STATE_FORMAT:
            raise ConfigError(f"env state has format {state.get('format')!r}; RecVectorEnv reads {STATE_FORMAT}")
        if state["num_envs"] != self.num_envs:
            raise ConfigError(f"env state is of {state['num_envs']} users, this env has num_envs={self.num_envs}")
        self._sim.set_state(state["simulation"])
        if state["np_random"] is not None:
            self.np_random.bit_generator.state = state["np_random"]
        self._needs_reset = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ConfigError(f"RecVectorEnv.reset takes one int seed for all users, got {seed!r}")
        super().reset(seed=seed)
        self._sim.reset(None if seed is None else int(seed))
        self._needs_reset = False
        return self._sim.observe(), {}

    def step(self, actions: Any):
        if self._needs_reset:
            raise gym.error.ResetNeeded("call reset() before step()")
        reward, terminated, truncated, step_info = self._sim.step(actions)
        ended = terminated | truncated
        info = _with_masks(step_info, ~ended)
        if ended.any():
            rows = ended.nonzero()[0]
            info["final_obs"] = _final_observations(self._sim.observe(rows), rows, self.num_envs)
            info["_final_obs"] = ended
            info["final_info"] = _final_info(step_info, ended)
            info["_final_info"] = ended
            every_row = len(rows) == self.num_envs
            for key in step_info:
                if every_row:  # no row has a step info left: SyncVectorEnv has no such key then
                    del info[key], info[f"_{key}"]
                else:
                    info[key][rows] = 0
            self._sim.replace(rows)
        return self._sim.observe(), reward, terminated, truncated, info


def merge_final_info(info: dict[str, Any], done: np.ndarray) -> dict[str, Any]:
    """The step's per-row info with every row's own step: ended rows read ``info["final_info"]``.

    Under SAME_STEP autoreset (module docstring) an ended row's top-level info is the new episode's
    (zeroed), and its step's info sits in ``final_info`` under its ``_key`` mask. The merged dict has
    each ``final_info`` key with those rows taken from it; a key absent at the top level (every row
    ended) is the ``final_info`` array itself. Other keys pass through. Works for any Gymnasium 1.x
    vector env's masked infos (``SyncVectorEnv`` too).

    Examples:
        >>> info = {"click": np.array([0.0, 0.0]), "_click": np.array([True, False]),
        ...         "final_info": {"click": np.array([9.0, 1.0]), "_click": np.array([False, True])}}
        >>> merge_final_info(info, np.array([False, True]))["click"]
        array([0., 1.])
    """
    final = info.get("final_info")
    done = np.asarray(done, dtype=bool)
    if not isinstance(final, dict) or not done.any():
        return info
    merged = dict(info)
    for key, value in final.items():
        if key.startswith("_"):
            continue
        value = np.asarray(value)
        if key not in info:  # every row ended: the per-step keys are absent from the top level
            merged[key] = value
            continue
        rows = np.asarray(final.get(f"_{key}", done), dtype=bool) & done
        merged[key] = np.where(rows.reshape((-1,) + (1,) * (value.ndim - 1)), value, np.asarray(info[key]))
    return merged


def _multi_discrete(config: EnvConfig) -> spaces.MultiDiscrete:
    return spaces.MultiDiscrete(np.full(config.slate_size, config.n_candidates, dtype=np.int64))


def _with_masks(step_info: dict[str, np.ndarray], present: np.ndarray) -> dict[str, np.ndarray]:
    info: dict[str, Any] = {}
    for key, value in step_info.items():
        info[key] = value  # fresh arrays from this step: no copy needed
        info[f"_{key}"] = present
    return info


def _final_info(step_info: dict[str, np.ndarray], ended: np.ndarray) -> dict[str, np.ndarray]:
    # Whole copies (one pass each); rows outside the `_key` masks are not the ended episodes' and
    # must not be read — the same contract as every masked Gymnasium vector info.
    final: dict[str, Any] = {}
    for key, value in step_info.items():
        final[key] = value.copy()
        final[f'_{key}'] = ended
    return final


def _final_observations(obs: dict[str, np.ndarray], rows: np.ndarray, n: int) -> np.ndarray:
    """Object array of per-row observation dicts (``None`` for rows that did not end)."""
    out = np.empty(n, dtype=object)  # object arrays start as None; np.full would fill them again
    keys = list(obs)
    # list(array) splits into row views in C; zipping them builds each dict without per-key indexing.
    for i, values in zip(rows, zip(*(list(obs[key]) for key in keys))):
        out[i] = dict(zip(keys, values))
    return out
