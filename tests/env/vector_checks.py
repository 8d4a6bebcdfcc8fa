"""Gymnasium 1.4 has no vector-env checker: a natively batched env must look like a SyncVectorEnv of its
single envs (spaces, observation keys and shapes, SAME_STEP autoreset's final observation and info)."""

from __future__ import annotations

from typing import Iterable

import numpy as np


def check_vector_env(native, sync, steps: int = 400, info_keys: Iterable[str] = (), seed: int = 0) -> dict[str, bool]:
    """Step ``native`` and ``sync`` (same ``num_envs``) with the same random actions for ``steps`` steps and
    assert they agree on spaces, observation shapes and dtypes, the observations lying in the space, float32
    rewards, ``info_keys`` in every step's info (or its ``final_info``), and a finished row's ``final_obs``
    and ``final_info``. Returns what it saw: ``{"ended": ..., "info": {key: any true value}}``."""
    info_keys = tuple(info_keys)
    assert native.num_envs == sync.num_envs
    assert native.single_observation_space == sync.single_observation_space
    assert native.observation_space == sync.observation_space and native.action_space == sync.action_space
    (obs_n, _), (obs_s, _) = native.reset(seed=seed), sync.reset(seed=seed)
    assert native.observation_space.contains(obs_n) and sync.observation_space.contains(obs_s)
    native.action_space.seed(seed)
    seen = {"ended": False, **{key: False for key in info_keys}}
    for _ in range(steps):
        action = native.action_space.sample()
        obs_n, reward, terminated, truncated, info_n = native.step(action)
        obs_s, _, _, _, info_s = sync.step(action)
        assert native.observation_space.contains(obs_n) and reward.dtype == np.float32
        assert {k: (v.shape, v.dtype) for k, v in obs_n.items()} == {k: (v.shape, v.dtype) for k, v in obs_s.items()}
        assert set(info_keys) <= set(info_n) | set(info_n.get("final_info", {}))
        for key in info_keys:
            seen[key] |= bool(np.any(info_n[key])) if key in info_n else False
        if (terminated | truncated).any():
            seen["ended"] = True
            row = int(np.flatnonzero(terminated | truncated)[0])
            assert set(info_n["final_obs"][row]) == set(obs_n)
            assert set(info_keys) <= set(info_n["final_info"])
    return seen
