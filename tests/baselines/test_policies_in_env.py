"""Baselines act in the real env as myopic policies (SB3 ``predict`` shape), single and batched."""

from __future__ import annotations

import numpy as np
import pytest
from tinylog import make_tiny_log

from baselines.knn import ItemKNN
from baselines.popularity import Popularity
from recsim_env.data.splits import leave_one_out


@pytest.fixture(scope="module")
def env_log():
    return make_tiny_log(n_users=30, n_items=80, per_user=12, seed=3)


@pytest.mark.parametrize("model_cls", [Popularity, ItemKNN])
def test_baseline_steps_the_env_with_valid_slates(model_cls, env_log):
    from recsim_env.env.rec_env import make_env

    env = make_env(env_log, slate_size=4, n_candidates=12, history_length=5, step_cap=6)
    model = model_cls().fit(leave_one_out(env_log)).bind(env.action_space)
    assert model.slate_size == 4
    obs, _ = env.reset(seed=0)
    for _ in range(6):
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(action) and len(set(obs["candidates"][action].tolist())) == 4
        best = np.argsort(-model.score_observation({k: np.asarray(v)[None] for k, v in obs.items()})[0],
                          kind="stable")[:4]
        np.testing.assert_array_equal(action, best)
        obs, reward, terminated, truncated, _ = env.step(action)
        assert np.isfinite(reward)
        if terminated or truncated:
            break
