from __future__ import annotations

import numpy as np
import pytest

from recsim_env.env import EnvConfig
from recsim_env.errors import ConfigError
from recsim_env.policy_builders import OraclePolicy
from recsim_env.registry import POLICIES, SIMULATORS, policy_spec, simulator_spec
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel
from recsim_env.vector import RecVectorEnv


def test_every_policy_of_the_issue_and_every_simulator_is_registered():
    assert {"random", "popularity", "item-knn", "mf-bpr", "neumf", "content", "slateq", "reinforce",
            "oracle"} <= set(POLICIES)
    assert {"ml100k-train", "ml100k-later", "synthetic"} <= set(SIMULATORS)
    assert simulator_spec("synthetic").has_oracle and not simulator_spec("ml100k-train").has_oracle
    with pytest.raises(ConfigError, match="unknown policy 'x'; valid: random"):
        policy_spec("x")


def test_oracle_shows_the_candidates_of_highest_true_utility_in_order():
    model = SyntheticUserModel(SyntheticConfig(n_items=40, n_users=50))
    env = RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=4)
    obs, _ = env.reset(seed=0)
    oracle = OraclePolicy(3)
    with pytest.raises(ConfigError, match="bind_env"):
        oracle.predict(obs)
    action, _ = oracle.bind_env(env).predict(obs)
    utilities = model.true_utilities(env.user_state, obs["candidates"])
    chosen = np.take_along_axis(utilities, action, axis=1)
    assert (np.diff(chosen, axis=1) <= 0).all()  # best first
    assert np.allclose(chosen[:, -1], np.sort(utilities, axis=1)[:, -3])  # and the top three
