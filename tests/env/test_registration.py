"""Registered ids: gym.make / gym.make_vec with keyword options, and the env checker on each."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import recsim_env  # noqa: F401  (registers the ids)
from recsim_env.env.rec_env import RecEnv
from recsim_env.env.registration import ENV_IDS
from recsim_env.errors import ConfigError


def test_ids_are_registered_with_both_entry_points():
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        assert spec.entry_point and spec.vector_entry_point


def test_synthetic_id_takes_options_and_passes_the_checker():
    env = gym.make("recsim_env:RecSim/Synthetic-v0", slate_size=5, n_candidates=30,
                   synthetic={"n_items": 80, "n_users": 40})
    assert isinstance(env.unwrapped, RecEnv) and env.action_space.nvec.tolist() == [30] * 5
    assert env.unwrapped.user_model.n_items == 80
    check_env(env.unwrapped, skip_render_check=True)


def test_bad_options_are_refused_before_any_fitting():
    with pytest.raises(ConfigError, match="unknown env option"):
        gym.make("RecSim/Synthetic-v0", slate_sise=5)
    with pytest.raises(ConfigError, match="slate_size"):
        gym.make("RecSim/MovieLens100K-v0", slate_size=0)
    with pytest.raises(ConfigError, match="synthetic must be"):
        gym.make("RecSim/Synthetic-v0", synthetic=3)
    with pytest.raises(ConfigError, match=r"synthetic \(SyntheticConfig fields\) has unknown key\(s\) \['n_topic'\]"):
        gym.make("RecSim/Synthetic-v0", synthetic={"n_topic": 3})
    with pytest.raises(ConfigError, match=r"EnvConfig.reward has unknown key\(s\) \['clik'\]"):
        gym.make_vec("RecSim/Synthetic-v0", num_envs=2, vectorization_mode="vector_entry_point", reward={"clik": 1})


@pytest.mark.slow
@pytest.mark.network
def test_movielens_id_makes_single_and_vector_envs():
    env = gym.make("recsim_env:RecSim/MovieLens100K-v0", slate_size=5)
    check_env(env.unwrapped, skip_render_check=True)
    venv = gym.make_vec("recsim_env:RecSim/MovieLens100K-v0", num_envs=4, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=0)
    assert obs["user_index"].shape == (4, 1) and obs["user_index"].max() < env.unwrapped.user_model.n_logged_users


@pytest.mark.slow
@pytest.mark.network
def test_movielens_lifetime_id_passes_the_env_checker_and_the_vector_check():
    from gymnasium.vector import AutoresetMode, SyncVectorEnv
    from vector_checks import check_vector_env

    from recsim_env.env.lifetime import LIFETIME_INFO, LifetimeEnv, LifetimeVectorEnv

    options = {"slate_size": 5, "n_candidates": 20, "horizon": 5}
    env = gym.make("recsim_env:RecSim/MovieLens100K-Lifetime-v0", **options)
    single = env.unwrapped
    assert isinstance(single, LifetimeEnv) and single.lifetime.horizon_days == 5.0
    check_env(single, skip_render_check=True)
    venv = gym.make_vec("recsim_env:RecSim/MovieLens100K-Lifetime-v0", num_envs=6,
                        vectorization_mode="vector_entry_point", **options)
    assert isinstance(venv.unwrapped, LifetimeVectorEnv)
    model, catalog = single.user_model, single.catalog
    sync = SyncVectorEnv([lambda: LifetimeEnv(model, catalog, single.config, single.lifetime) for _ in range(6)],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    seen = check_vector_env(venv.unwrapped, sync, steps=300, info_keys=LIFETIME_INFO)
    assert seen["ended"] and seen["session_end"] and seen["returned"]  # fitted sessions end, and users come back
