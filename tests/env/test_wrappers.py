"""Wrappers: the Discrete view for DQN, the flat observation, the SB3 VecEnv adapter."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv

from agents.sb3_vec_env import SB3VecEnvAdapter
from recsim_env.env.config import EnvConfig
from recsim_env.env.rec_env import RecEnv
from recsim_env.env.vector import RecVectorEnv
from recsim_env.env.wrappers import FlattenRecObservation, SingleItemDiscrete
from recsim_env.errors import ActionError, ConfigError

CONFIG = EnvConfig(slate_size=3, n_candidates=8, step_cap=20)
QUIET = Logger(folder=None, output_formats=[])
"""SB3's default logger would leave an empty /tmp/SB3-<date> folder per ``learn``."""


def test_single_item_discrete_fills_the_rest_in_order(fake_model):
    env = SingleItemDiscrete(RecEnv(fake_model, config=CONFIG))
    assert env.action_space == spaces.Discrete(8)
    env.reset(seed=0)
    np.testing.assert_array_equal(env.slate(6), [6, 7, 0])
    obs, _, _, _, info = env.step(6)
    assert info["slate"].shape == (3,)
    with pytest.raises(ActionError, match="slot 0 holds candidate position 8"):
        env.step(8)
    with pytest.raises(ActionError, match="one integer"):
        env.step(np.array([1, 2]))


def test_single_item_discrete_with_a_scorer(fake_model):
    # Score = -item index: the fake user's own preference, so the filler is the best remaining items.
    env = SingleItemDiscrete(RecEnv(fake_model, config=CONFIG), scorer=lambda obs: -obs["candidates"])
    obs, _ = env.reset(seed=0)
    slate = env.slate(2)
    assert slate[0] == 2
    rest = obs["candidates"][slate[1:]]
    others = np.delete(obs["candidates"], 2)
    np.testing.assert_array_equal(rest, np.sort(others)[:2])


def test_wrapped_views_pass_the_checkers(fake_model):
    check_env(SingleItemDiscrete(RecEnv(fake_model, config=CONFIG)), skip_render_check=True)
    flat = FlattenRecObservation(SingleItemDiscrete(RecEnv(fake_model, config=CONFIG)))
    check_env(flat, skip_render_check=True)
    sb3_check_env(FlattenRecObservation(SingleItemDiscrete(RecEnv(fake_model, config=CONFIG))))


def test_flatten_selects_keys_as_float32(fake_model):
    env = FlattenRecObservation(RecEnv(fake_model, config=CONFIG), keys=["user_features", "context"])
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (6,) and env.observation_space.contains(obs)
    with pytest.raises(ConfigError, match="unknown observation key"):
        FlattenRecObservation(RecEnv(fake_model, config=CONFIG), keys=["nope"])


def test_dqn_trains_on_the_discrete_view(fake_model):
    env = FlattenRecObservation(SingleItemDiscrete(RecEnv(fake_model, config=CONFIG)))
    model = DQN("MlpPolicy", env, learning_starts=50, buffer_size=500, seed=0, device="cpu")
    model.set_logger(QUIET)
    model.learn(200)
    action, _ = model.predict(env.reset(seed=1)[0], deterministic=True)
    assert env.action_space.contains(int(action))


def test_sb3_adapter_translates_autoreset(make_fake_model):
    venv = SB3VecEnvAdapter(RecVectorEnv(make_fake_model(patience=1), config=CONFIG, num_envs=16))
    assert isinstance(venv, VecEnv) and venv.num_envs == 16
    venv.seed(3)
    obs = venv.reset()
    assert obs["candidates"].shape == (16, 8)
    venv.step_async(np.tile(np.arange(3), (16, 1)))
    obs, rewards, dones, infos = venv.step_wait()
    assert dones.any() and len(infos) == 16
    for i in np.flatnonzero(dones):
        assert set(infos[i]["terminal_observation"]) == set(obs)
        assert infos[i]["TimeLimit.truncated"] is False  # patience 1: they left, no step cap
    assert venv.get_attr("config")[0] is CONFIG and venv.env_is_wrapped(object) == [False] * 16


def test_sb3_adapter_can_carry_responses(fake_model):
    venv = SB3VecEnvAdapter(RecVectorEnv(fake_model, config=CONFIG, num_envs=4), include_responses=True)
    venv.reset()
    venv.step_async(np.tile(np.arange(3), (4, 1)))
    _, rewards, _, infos = venv.step_wait()
    np.testing.assert_allclose([info["click"].sum() for info in infos], rewards)


def test_ppo_trains_on_the_sb3_adapter(fake_model):
    venv = SB3VecEnvAdapter(RecVectorEnv(fake_model, config=CONFIG, num_envs=8))
    model = PPO("MultiInputPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.set_logger(QUIET)
    model.learn(256)
    assert model.num_timesteps >= 256


def test_adapter_refuses_other_envs(fake_model):
    with pytest.raises(ConfigError, match="wraps a RecVectorEnv"):
        SB3VecEnvAdapter(RecEnv(fake_model, config=CONFIG))
    with pytest.raises(ConfigError, match="single slate env"):
        SingleItemDiscrete(SingleItemDiscrete(RecEnv(fake_model, config=CONFIG)))


def test_pick_credit_rewards_slot_zero_alone_and_keeps_the_slate_reward(fake_model):
    from recsim_env.env.rewards import RewardWeights, WeightedReward

    weights = RewardWeights(click=1.0, like=2.0, rating=0.5)
    env = SingleItemDiscrete(RecEnv(fake_model, config=CONFIG, reward_fn=WeightedReward(weights)), credit="pick")
    slate_env = SingleItemDiscrete(RecEnv(fake_model, config=CONFIG, reward_fn=WeightedReward(weights)))
    env.reset(seed=0)
    slate_env.reset(seed=0)
    seen_other_slot = seen_first_slot = False
    for step in range(CONFIG.step_cap):
        a = step % CONFIG.n_candidates
        _, reward, term, trunc, info = env.step(a)
        _, slate_reward, *_ = slate_env.step(a)
        assert info["slate_reward"] == slate_reward  # same seed, same responses: the env's reward is kept
        own = info["click"][0] + 2.0 * info["like"][0] + 0.5 * info["rating"][0]
        assert reward == pytest.approx(own)
        seen_first_slot |= bool(info["click"][0])
        seen_other_slot |= bool(info["click"][1:].any())
        if term or trunc:
            break
    assert seen_first_slot and seen_other_slot  # both cases were exercised


def test_pick_credit_needs_a_per_slot_reward(fake_model):
    with pytest.raises(ConfigError, match="credit must be one of"):
        SingleItemDiscrete(RecEnv(fake_model, config=CONFIG), credit="own")
    custom = RecEnv(fake_model, config=CONFIG, reward_fn=lambda responses: responses.click.sum(axis=1))
    with pytest.raises(ConfigError, match="credit='pick' needs a reward function with per_slot"):
        SingleItemDiscrete(custom, credit="pick")
    SingleItemDiscrete(custom)  # the slate's reward works with any reward function
