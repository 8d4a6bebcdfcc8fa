"""Lifetime episodes: checkers, sessions / gaps / horizon by hand, single == one-row batch, ids, bad configs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from returning_fakes import FixedReturns, SessionsOnly
from vector_checks import check_vector_env

import recsim_env  # noqa: F401  (registers the ids)
from recsim_env.env.config import EnvConfig
from recsim_env.env.lifetime import LIFETIME_INFO, LifetimeConfig, LifetimeEnv, LifetimeVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.users.synthetic import ReturningSyntheticUserModel, SyntheticConfig

CONFIG = EnvConfig(slate_size=3, n_candidates=10, step_cap=20)


@pytest.fixture(scope="module")
def returning() -> ReturningSyntheticUserModel:
    return ReturningSyntheticUserModel(SyntheticConfig(n_items=60, n_users=40))


def _run(env, steps: int, action=None) -> list[tuple]:
    out = []
    for _ in range(steps):
        out.append(env.step(np.arange(3) if action is None else action))
        if out[-1][2] or out[-1][3]:
            break
    return out


@pytest.mark.parametrize("features", [False, True])
def test_single_env_passes_gymnasiums_checker(returning, features):
    env = LifetimeEnv(returning, returning.catalog(), EnvConfig(slate_size=3, n_candidates=10,
                                                                include_candidate_features=features))
    check_env(env, skip_render_check=True)


def test_vector_env_matches_a_sync_vector_env_of_single_envs(returning):
    lifetime = LifetimeConfig(horizon=2.0)
    native = LifetimeVectorEnv(returning, returning.catalog(), CONFIG, lifetime, num_envs=6)
    sync = SyncVectorEnv([lambda: LifetimeEnv(returning, returning.catalog(), CONFIG, lifetime) for _ in range(6)],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    seen = check_vector_env(native, sync, steps=400, info_keys=LIFETIME_INFO)
    assert seen["returned"] and seen["ended"]
    obs, _ = native.reset(seed=1)
    for _ in range(400):  # a row whose lifetime ended starts a new user at session 0
        obs, _, terminated, truncated, info = native.step(native.action_space.sample())
        if (terminated | truncated).any():
            row = int(np.flatnonzero(terminated | truncated)[0])
            assert obs["session_index"][row, 0] == 0
            break


def test_a_session_end_opens_the_next_session_of_the_same_user():
    model = FixedReturns(session_steps=3, gaps=(2.5,))
    env = LifetimeEnv(model, config=CONFIG, lifetime=LifetimeConfig(horizon=60, step_minutes=0.0))
    obs, _ = env.reset(seed=1)
    user = obs["user_index"].copy()
    steps = _run(env, 3)
    obs, reward, terminated, truncated, info = steps[-1]
    assert [s[4]["session_end"] for s in steps] == [False, False, True]
    assert info["returned"] and info["gap_days"] == 2.5 and not (terminated or truncated)
    assert obs["session_index"].tolist() == [1] and obs["days_since_last_session"].tolist() == [2.5]
    assert obs["context"][0] == 0.0 and (obs["user_index"] == user).all()  # a new session of the same user
    assert (obs["history_items"][-3:] >= 0).all()  # and their history carries over
    assert steps[0][4]["gap_days"] == 0.0 and reward == 1.0


def test_no_return_within_the_horizon_terminates_and_the_horizon_during_a_session_truncates():
    beyond = LifetimeEnv(FixedReturns(3, gaps=(2.0, 30.0)), config=CONFIG,
                         lifetime=LifetimeConfig(horizon=10, step_minutes=0.0))
    beyond.reset(seed=0)
    steps = _run(beyond, 50)
    assert len(steps) == 6 and steps[-1][2] and not steps[-1][3]  # two sessions; the second gap runs past day 10
    assert steps[-1][4]["gap_days"] == 30.0 and not steps[-1][4]["returned"]
    never = LifetimeEnv(FixedReturns(3, gaps=(np.inf,)), config=CONFIG)
    never.reset(seed=0)
    assert len(_run(never, 50)) == 3
    with pytest.raises(gym.error.ResetNeeded):
        never.step(np.arange(3))
    hourly = LifetimeEnv(FixedReturns(session_steps=100), config=CONFIG,
                         lifetime=LifetimeConfig(horizon=1, time_unit="hours", step_minutes=25.0))
    hourly.reset(seed=0)
    steps = _run(hourly, 50)
    assert len(steps) == 3 and steps[-1][3] and not steps[-1][2]  # 75 minutes > 1 hour, still in session
    capped = LifetimeEnv(FixedReturns(3, gaps=(0.5,)), config=CONFIG, lifetime=LifetimeConfig(max_steps=7))
    capped.reset(seed=0)
    steps = _run(capped, 50)
    assert len(steps) == 7 and steps[-1][3] and not steps[-1][2]


def test_return_bonus_is_paid_at_the_step_a_session_ends_with_a_return():
    env = LifetimeEnv(FixedReturns(3, gaps=(1.0, 100.0)), config=CONFIG,
                      lifetime=LifetimeConfig(horizon=30, return_bonus=2.5, step_minutes=0.0))
    env.reset(seed=0)
    rewards = [s[1] for s in _run(env, 50)]
    assert rewards == [1.0, 1.0, 3.5, 1.0, 1.0, 1.0]  # one click per step; the second session's user stays away


def test_single_env_equals_a_one_row_vector_env_step_for_step(returning):
    single = LifetimeEnv(returning, returning.catalog(), CONFIG, LifetimeConfig(horizon=3))
    batch = LifetimeVectorEnv(returning, returning.catalog(), CONFIG, LifetimeConfig(horizon=3), num_envs=1)
    obs_s, _ = single.reset(seed=7)
    obs_b, _ = batch.reset(seed=7)
    rng = np.random.default_rng(0)
    for _ in range(300):
        action = rng.permutation(10)[:3]
        obs_s, reward_s, term_s, trunc_s, info_s = single.step(action)
        obs_b, reward_b, term_b, trunc_b, info_b = batch.step(action[None])
        if term_s or trunc_s:
            assert term_b[0] == term_s and trunc_b[0] == trunc_s
            break
        assert reward_b[0] == reward_s and info_b["gap_days"][0] == info_s["gap_days"]
        for key, value in obs_s.items():
            np.testing.assert_array_equal(obs_b[key][0], value)
    else:
        pytest.fail("the lifetime did not end within 300 steps")


def test_same_seed_same_lifetimes_and_state_export_continues_them(returning):
    def env():
        return LifetimeVectorEnv(returning, returning.catalog(), CONFIG, LifetimeConfig(horizon=5), num_envs=16)

    first, second, twin = env(), env(), env()
    first.reset(seed=3)
    second.reset(seed=3)
    action = np.tile(np.arange(3), (16, 1))
    for _ in range(40):
        a, b = first.step(action), second.step(action)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0]["days_since_last_session"], b[0]["days_since_last_session"])
    twin.set_state(first.get_state())
    for _ in range(40):
        a, b = first.step(action), twin.step(action)
        np.testing.assert_array_equal(a[0]["session_index"], b[0]["session_index"])
        np.testing.assert_array_equal(a[4]["gap_days"], b[4]["gap_days"])


def test_a_model_that_is_not_returning_is_refused_naming_what_it_lacks():
    for build in (lambda: LifetimeEnv(SessionsOnly(), config=CONFIG),
                  lambda: LifetimeVectorEnv(SessionsOnly(), config=CONFIG, num_envs=2)):
        with pytest.raises(ConfigError, match="ReturningUserModel.*SessionsOnly has no return_gaps, start_session"):
            build()


@pytest.mark.parametrize("gaps", [(-1.0,), (np.nan,)])
def test_bad_gaps_from_a_model_name_the_model(gaps):
    env = LifetimeEnv(FixedReturns(1, gaps=gaps), config=CONFIG)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="FixedReturns.return_gaps must give 1 gaps"):
        env.step(np.arange(3))


@pytest.mark.parametrize("field, value", [("horizon", 0), ("horizon", -3.0), ("horizon", np.inf), ("horizon", "60"),
                                          ("time_unit", "months"), ("return_bonus", -1.0), ("return_bonus", np.nan),
                                          ("step_minutes", -1.0), ("max_steps", 0), ("max_steps", 2.5)])
def test_bad_lifetime_configs_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"LifetimeConfig.{field}"):
        LifetimeConfig(**{field: value})


def test_lifetime_ids_take_options_and_pass_the_checker():
    env = gym.make("recsim_env:RecSim/Synthetic-Lifetime-v0", slate_size=3, n_candidates=10, horizon=2,
                   time_unit="weeks", return_bonus=1.0, synthetic={"n_items": 50, "n_users": 20},
                   longterm={"return_scale": 0.5})
    unwrapped = env.unwrapped
    assert isinstance(unwrapped, LifetimeEnv) and unwrapped.lifetime.horizon_days == 14.0
    assert unwrapped.user_model.longterm.return_scale == 0.5 and unwrapped.user_model.n_items == 50
    check_env(unwrapped, skip_render_check=True)
    venv = gym.make_vec("recsim_env:RecSim/Synthetic-Lifetime-v0", num_envs=4, vectorization_mode="vector_entry_point",
                        slate_size=3, n_candidates=10)
    assert isinstance(venv.unwrapped, LifetimeVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert obs["session_index"].shape == (4, 1) and obs["days_since_last_session"].shape == (4, 1)


def test_lifetime_ids_refuse_bad_options_before_any_fitting():
    with pytest.raises(ConfigError, match="LifetimeConfig.horizon must be > 0"):
        gym.make("RecSim/MovieLens100K-Lifetime-v0", horizon=0)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['horizn'\] of a lifetime id"):
        gym.make("RecSim/MovieLens100K-Lifetime-v0", horizn=30)
    with pytest.raises(ConfigError, match=r"longterm \(LongTermConfig fields\) has unknown key"):
        gym.make_vec("RecSim/Synthetic-Lifetime-v0", num_envs=2, vectorization_mode="vector_entry_point",
                     longterm={"return_sclae": 1.0})
