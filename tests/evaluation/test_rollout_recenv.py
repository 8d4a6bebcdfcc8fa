"""evaluate() against the real batched env over synthetic users: CRN, full episodes, info responses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsim_env.env.config import EnvConfig
from recsim_env.env.vector import RecVectorEnv
from recsim_env.evaluation.rollout import evaluate
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel

MODEL = SyntheticUserModel(SyntheticConfig(n_items=60, n_users=200))
CONFIG = EnvConfig(slate_size=3, n_candidates=12, step_cap=40)


def make_env(n):
    return RecVectorEnv(MODEL, MODEL.catalog(), CONFIG, num_envs=n)


class Fixed:
    def __init__(self, offset):
        self.offset, self.first_users = offset, None

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if self.first_users is None:
            self.first_users = observation["user_index"][:, 0].copy()
        n = len(observation["candidates"])
        return np.tile(np.arange(3) + self.offset, (n, 1)), state


def test_same_seed_same_episodes_and_all_policies_meet_the_same_users():
    a = evaluate(Fixed(0), make_env, n_episodes=24, seed=[0, 1], max_envs=8)
    b = evaluate(Fixed(0), make_env, n_episodes=24, seed=[0, 1], max_envs=8)
    pd.testing.assert_frame_equal(a.episodes, b.episodes)
    p, q = Fixed(0), Fixed(5)
    first = evaluate(p, make_env, n_episodes=24, seed=3, max_envs=8)
    other = evaluate(q, make_env, n_episodes=24, seed=3, max_envs=8)
    np.testing.assert_array_equal(p.first_users, q.first_users)
    np.testing.assert_array_equal(first.episodes["user_index"], other.episodes["user_index"])


def test_episodes_are_complete_and_responses_come_from_info():
    stats = evaluate(Fixed(0), make_env, n_episodes=20, seed=0, max_envs=20)
    ep = stats.episodes
    assert len(ep) == 20 and (ep["session_length"] >= 1).all() and (ep["session_length"] <= 40).all()
    # The synthetic users always have dwell; a click is at most one per slate.
    assert (ep["clicks"] <= ep["session_length"]).all() and (ep["dwell"] > 0).any()
    assert ep["mean_rating"].dropna().between(1, 5).all()
    assert 0 < float(stats.seeds["coverage"].iloc[0]) <= 1


def test_a_bad_action_reaches_the_env_and_its_error_names_the_slot():
    from recsim_env.errors import ActionError

    class OutOfRange(Fixed):
        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            action, state = super().predict(observation, state, episode_start, deterministic)
            action[:, 1] = 99
            return action, state

    with pytest.raises(ActionError, match="slot 1"):
        evaluate(OutOfRange(0), make_env, n_episodes=4, seed=0)
