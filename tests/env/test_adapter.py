"""The per-user adapter: a one-user-at-a-time model runs in both envs."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from recsim_env.env.config import EnvConfig
from recsim_env.env.rec_env import RecEnv, make_env
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.protocols import UserModel
from recsim_env.users.adapter import PerUserAdapter, UserResponse


class OneUser:
    """Clicks the first valid item below ``threshold``; leaves after three misses."""

    n_items = 20
    n_user_features = 1

    def reset(self, rng):
        self.threshold = int(rng.integers(5, 15))
        self.misses = 0

    def features(self):
        return np.array([self.threshold], dtype=np.float32)

    def respond(self, slate, valid, rng):
        for slot, item in enumerate(slate):
            if valid[slot] and item < self.threshold:
                return UserResponse(slot, rating=4.0, like=1.0, dwell=float(item))
        return UserResponse(-1)

    def update(self, slate, response, rng):
        self.misses += response.choice < 0

    def left(self):
        return self.misses >= 3


def test_adapter_is_a_user_model_and_passes_the_checker():
    model = PerUserAdapter(OneUser)
    assert isinstance(model, UserModel) and model.n_items == 20 and model.n_user_features == 1
    check_env(RecEnv(model, config=EnvConfig(slate_size=3, n_candidates=10)), skip_render_check=True)


def test_adapter_responses_follow_the_single_user():
    env = make_env(PerUserAdapter(OneUser), slate_size=3, n_candidates=10)
    obs, _ = env.reset(seed=0)
    threshold = obs["user_features"][0]
    _, reward, _, _, info = env.step(np.arange(3))
    shown = info["slate"]
    below = np.flatnonzero(shown < threshold)
    if len(below):
        assert info["choice"] == below[0] and reward == 1.0 and info["dwell"][below[0]] == shown[below[0]]
    else:
        assert info["choice"] == -1 and reward == 0.0


def test_adapter_runs_batched_with_autoreset():
    env = RecVectorEnv(PerUserAdapter(OneUser), config=EnvConfig(slate_size=2, n_candidates=10), num_envs=8)
    env.reset(seed=0)
    ended = 0
    for _ in range(30):
        _, _, term, trunc, _ = env.step(np.tile([0, 1], (8, 1)))
        ended += term.sum()
    assert ended > 0


def test_adapter_refuses_incomplete_users():
    class NoLeave:
        n_items, n_user_features = 5, 1

        def reset(self, rng): ...

    with pytest.raises(ConfigError, match="lacks"):
        PerUserAdapter(NoLeave)

    class Unsized(OneUser):
        n_items = property(lambda self: (_ for _ in ()).throw(AttributeError))

    with pytest.raises(ConfigError, match="pass n_items="):
        PerUserAdapter(Unsized)


def test_adapter_refuses_an_invalid_choice():
    class Cheater(OneUser):
        def respond(self, slate, valid, rng):
            return UserResponse(len(slate))

    env = RecEnv(PerUserAdapter(Cheater), config=EnvConfig(slate_size=2, n_candidates=5))
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="chose slot 2"):
        env.step(np.array([0, 1]))
