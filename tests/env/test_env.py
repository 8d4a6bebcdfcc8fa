"""RecEnv: Gymnasium and SB3 env checks, determinism, pickling, duplicates, bad actions and configs."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from recsim_env.env.config import EnvConfig
from recsim_env.env.rec_env import RecEnv, make_env
from recsim_env.env.rewards import RewardWeights
from recsim_env.errors import ActionError, ConfigError
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel


@pytest.fixture(scope="module")
def synthetic() -> SyntheticUserModel:
    return SyntheticUserModel(SyntheticConfig(n_items=120, n_users=50))


def _env(model, **config) -> RecEnv:
    catalog = model.catalog() if hasattr(model, "catalog") else None
    return RecEnv(model, catalog, EnvConfig(**{"slate_size": 4, "n_candidates": 12, **config}))


@pytest.mark.parametrize("features", [False, True])
def test_passes_gymnasium_and_sb3_checkers(synthetic, features):
    env = _env(synthetic, include_candidate_features=features)
    check_env(env, skip_render_check=True)
    sb3_check_env(_env(synthetic, include_candidate_features=features), warn=True)


def test_fake_model_passes_checker(fake_model):
    check_env(_env(fake_model, n_candidates=10), skip_render_check=True)


def test_observation_follows_the_contract(synthetic):
    env = _env(synthetic, history_length=3)
    obs, info = env.reset(seed=0)
    assert info == {}
    assert obs["user_index"].shape == (1,) and obs["history_items"].tolist() == [-1, -1, -1]
    assert obs["candidates"].shape == (12,) and len(set(obs["candidates"])) == 12
    np.testing.assert_array_equal(obs["context"], [0, 0, 0, 0])
    for _ in range(30):
        obs, reward, terminated, truncated, info = env.step(np.arange(4))
        if info["choice"] >= 0:
            break
    clicked = info["slate"][info["choice"]]
    assert obs["history_items"][-1] == clicked
    np.testing.assert_allclose(obs["history_responses"][-1],
                               [info["rating"][info["choice"]], info["like"][info["choice"]],
                                info["dwell"][info["choice"]]])
    assert obs["context"][2] == 1.0 and obs["context"][3] == info["rating"][info["choice"]] / 5.0
    assert reward == 1.0 and set(info) == {"click", "rating", "like", "dwell", "choice", "slate"}
    assert all(isinstance(v, (np.ndarray, np.integer)) for v in info.values())


def test_same_seed_same_rollout(synthetic):
    def rollout(seed):
        env, out = _env(synthetic), []
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        for _ in range(60):
            obs, r, term, trunc, info = env.step(rng.integers(0, 12, 4))
            out.append((obs["candidates"].copy(), r, term, trunc, info["choice"], obs["user_features"].copy()))
            if term or trunc:
                obs, _ = env.reset()
        return out

    a, b, c = rollout(3), rollout(3), rollout(4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:5] == y[1:5]
        np.testing.assert_array_equal(x[5], y[5])
    assert any(not np.array_equal(x[0], z[0]) for x, z in zip(a, c))


def test_pickle_round_trip_continues_identically(synthetic):
    env = _env(synthetic)
    env.reset(seed=11)
    env.step(np.arange(4))
    blob = pickle.dumps(env)
    assert len(blob) < 2_000_000  # candidate windows are rebuilt on load, not pickled
    clone = pickle.loads(blob)
    for _ in range(5):
        a, b = env.step(np.arange(4)), clone.step(np.arange(4))
        np.testing.assert_array_equal(a[0]["candidates"], b[0]["candidates"])
        assert a[1:4] == b[1:4]
        if a[2] or a[3]:
            break


def test_duplicate_items_are_shown_once(fake_model):
    env = _env(fake_model, n_candidates=10)
    obs, _ = env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([3, 3, 5, 3]))
    assert info["slate"][1] == -1 and info["slate"][3] == -1
    assert info["slate"][0] == obs["candidates"][3] and info["slate"][2] == obs["candidates"][5]
    assert info["choice"] not in (1, 3) and info["click"][[1, 3]].sum() == 0


def test_duplicates_can_be_refused(fake_model):
    env = _env(fake_model, n_candidates=10, duplicates="error")
    env.reset(seed=0)
    with pytest.raises(ActionError, match="slot 2 repeats candidate position 1"):
        env.step(np.array([1, 0, 1, 2]))


@pytest.mark.parametrize("action, match", [
    (np.arange(3), r"shape \(4,\)"),
    (np.zeros((2, 4), dtype=int), r"shape \(4,\)"),
    (np.array([0, 1, 12, 2]), "slot 2 holds candidate position 12"),
    (np.array([0, -1, 2, 3]), "slot 1 holds candidate position -1"),
    (np.array([0.0, 1.0, np.nan, 2.0]), "slot 2 is nan"),
    (np.array([0.0, 1.0, 2.0, 3.0]), "integer candidate positions"),
    (np.array([True, False, True, False]), "integer candidate positions"),
])
def test_bad_actions_name_the_slot(fake_model, action, match):
    env = _env(fake_model, n_candidates=12)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=match):
        env.step(action)


def test_step_before_reset_is_refused(fake_model):
    with pytest.raises(gym.error.ResetNeeded):
        _env(fake_model, n_candidates=10).step(np.arange(4))


def test_terminated_when_user_leaves_truncated_at_cap(make_fake_model):
    env = _env(make_fake_model(patience=1), n_candidates=10, step_cap=2)  # leaves at the first miss
    env.reset(seed=0)
    ends = []
    for _ in range(200):
        _, _, term, trunc, _ = env.step(np.arange(4))
        if term or trunc:
            ends.append((term, trunc))
            env.reset()
    assert (True, False) in ends and (False, True) in ends and (True, True) not in ends


def test_reward_weights_apply(fake_model):
    env = _env(fake_model, n_candidates=10, reward={"click": 0.0, "dwell": 1.0})
    env.reset(seed=0)
    for _ in range(20):
        _, reward, term, trunc, info = env.step(np.arange(4))
        assert reward == pytest.approx(info["dwell"].sum())
        if term or trunc:
            env.reset()


@pytest.mark.parametrize("kwargs, match", [
    ({"slate_size": 0}, "slate_size"),
    ({"slate_size": 2.5}, "slate_size"),
    ({"slate_size": 20, "n_candidates": 10}, "exceeds n_candidates"),
    ({"step_cap": True}, "step_cap"),
    ({"candidates": "random"}, "candidates must be one of"),
    ({"popularity_share": 2.0}, "popularity_share"),
    ({"duplicates": "ignore"}, "duplicates"),
    ({"include_candidate_features": "yes"}, "include_candidate_features"),
    ({"reward": {"clicks": 1.0}}, "clicks"),
    ({"reward": 3}, "reward"),
    ({"reward": {"clik": 1}}, r"EnvConfig.reward has unknown key\(s\) \['clik'\]; valid: \['click', 'like'"),
    ({"reward": {"click": "1"}}, "RewardWeights.click must be a finite number, got '1'"),
    ({"popularity_share": "0.5"}, r"EnvConfig.popularity_share must be a number in \[0, 1\], got '0.5'"),
    ({"popularity_share": float("nan")}, "EnvConfig.popularity_share must be a number"),
])
def test_bad_config_is_refused(kwargs, match):
    # a ConfigError naming the field, never a bare TypeError from ** or a comparison
    with pytest.raises(ConfigError, match=match):
        EnvConfig(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_items": "500"}, "SyntheticConfig.n_items must be a number, got '500'"),
    ({"n_items": 40.0}, "SyntheticConfig.n_items must be an integer, got 40.0"),
    ({"temperature": None}, "SyntheticConfig.temperature must be a number, got None"),
    ({"drift_rate": True}, "SyntheticConfig.drift_rate must be a number, got True"),
])
def test_bad_synthetic_config_is_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SyntheticConfig(**kwargs)


def test_config_mismatches_with_the_model_are_refused(fake_model, synthetic):
    with pytest.raises(ConfigError, match="n_candidates=40 exceeds the 30 items"):
        RecEnv(fake_model, config=EnvConfig(n_candidates=40))
    with pytest.raises(ConfigError, match="needs an ItemCatalog"):
        RecEnv(fake_model, config=EnvConfig(n_candidates=10, slate_size=3, include_candidate_features=True))
    with pytest.raises(ConfigError, match="catalog has 120 items but the user model has 30"):
        RecEnv(fake_model, synthetic.catalog(), EnvConfig(n_candidates=10, slate_size=3))
    with pytest.raises(ConfigError, match="unknown env option"):
        RecEnv(fake_model, slate_sise=3)


def test_popularity_candidates_follow_the_catalog(synthetic):
    env = _env(synthetic, candidates="popularity", n_candidates=10)
    obs, _ = env.reset(seed=0)
    seen = np.concatenate([env.step(np.arange(4))[0]["candidates"] for _ in range(1)] + [obs["candidates"]])
    assert len(set(seen[:10])) == 10
    assert env.observation_space.contains(obs)


def test_make_env_from_a_user_model(synthetic):
    env = make_env(synthetic, slate_size=3, n_candidates=9, reward=RewardWeights(click=1, like=1))
    assert env.action_space.nvec.tolist() == [9, 9, 9] and env.catalog is not None
    with pytest.raises(ConfigError, match="InteractionLog or a UserModel"):
        make_env("movielens")


@pytest.mark.slow
def test_make_env_from_a_log_fits_a_model(tiny_log):
    env = make_env(tiny_log, slate_size=3, n_candidates=20)
    check_env(env, skip_render_check=True)
    assert env.observation_space["user_index"].high[0] == tiny_log.n_users - 1


def test_two_policies_with_one_seed_see_the_same_candidates(synthetic):
    """Common random numbers: candidates have their own stream, so the policy cannot shift them."""
    def candidate_sets(slate):
        env = _env(synthetic, step_cap=40)
        obs, _ = env.reset(seed=5)
        sets = [obs["candidates"].copy()]
        for _ in range(40):
            obs, _, terminated, truncated, _ = env.step(slate)
            if terminated or truncated:
                break
            sets.append(obs["candidates"].copy())
        return sets

    first, last = candidate_sets(np.arange(4)), candidate_sets(np.arange(8, 12))
    common = min(len(first), len(last))
    assert common >= 3  # both users stayed a few steps, or the test proves nothing
    for step in range(common):
        np.testing.assert_array_equal(first[step], last[step], err_msg=f"step {step + 1}")
