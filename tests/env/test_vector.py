"""RecVectorEnv: same spaces and dynamics as N single envs, SAME_STEP autoreset, gym.make_vec."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from recsim_env.env.config import EnvConfig
from recsim_env.env.rec_env import RecEnv
from recsim_env.env.vector import RecVectorEnv, merge_final_info
from recsim_env.errors import ActionError, ConfigError

CONFIG = EnvConfig(slate_size=3, n_candidates=10, step_cap=6)


def _pair(model, n):
    native = RecVectorEnv(model, config=CONFIG, num_envs=n)
    sync = SyncVectorEnv([lambda: RecEnv(model, config=CONFIG) for _ in range(n)],
                         autoreset_mode=AutoresetMode.SAME_STEP)
    return native, sync


def test_spaces_and_info_structure_equal_a_sync_vector_env(fake_model):
    native, sync = _pair(fake_model, 6)
    assert native.single_observation_space == sync.single_observation_space
    assert native.observation_space == sync.observation_space and native.action_space == sync.action_space
    assert native.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    (obs_n, _), (obs_s, _) = native.reset(seed=0), sync.reset(seed=0)
    assert native.observation_space.contains(obs_n) and sync.observation_space.contains(obs_s)
    native.action_space.seed(0)  # unseeded, whether a row ended within the loop was left to chance
    seen_end = False
    for _ in range(200):
        if seen_end:
            break
        action = native.action_space.sample()
        obs_n, r_n, te_n, tr_n, info_n = native.step(action)
        obs_s, r_s, te_s, tr_s, info_s = sync.step(action)
        assert {k: v.shape for k, v in obs_n.items()} == {k: v.shape for k, v in obs_s.items()}
        assert r_n.dtype == np.float32 and te_n.dtype == bool and tr_n.dtype == bool
        ended_n, ended_s = te_n | tr_n, te_s | tr_s
        if ended_n.any() and ended_s.any() and ended_n.all() == ended_s.all():
            seen_end = True
            assert set(info_n) == set(info_s)
            assert set(info_n["final_info"]) == set(info_s["final_info"])
            for key in ("click", "rating", "slate"):
                if key in info_s:
                    assert info_n[key].shape == info_s[key].shape and info_n[f"_{key}"].dtype == bool
                assert info_n["final_info"][key].shape == info_s["final_info"][key].shape
            i = int(np.flatnonzero(te_n | tr_n)[0])
            assert set(info_n["final_obs"][i]) == set(obs_n)
    assert seen_end


def test_same_step_autoreset_replaces_departed_users(make_fake_model):
    env = RecVectorEnv(make_fake_model(patience=1), config=CONFIG, num_envs=64)
    obs, _ = env.reset(seed=3)
    action = np.tile(np.arange(3), (64, 1))
    obs, _, term, trunc, info = env.step(action)
    ended = term | trunc
    assert ended.any() and not ended.all()
    np.testing.assert_array_equal(info["_final_obs"], ended)
    np.testing.assert_array_equal(info["_final_info"], ended)
    # New users start afresh: step counter 0, empty history; the ended episode's last obs is kept.
    assert np.all(obs["context"][ended, 0] == 0) and np.all(obs["history_items"][ended] == -1)
    for i in np.flatnonzero(ended):
        assert info["final_obs"][i]["context"][0] == pytest.approx(1 / CONFIG.step_cap)
        assert info["final_info"]["_click"][i] and not info["_click"][i]
    assert info["final_obs"][int(np.flatnonzero(~ended)[0])] is None
    # Ended rows' step responses live only in final_info, as SyncVectorEnv does it.
    np.testing.assert_array_equal(info["click"][ended], 0)


def test_rows_behave_like_single_envs_in_distribution(fake_model):
    n, steps = 512, 40
    native = RecVectorEnv(fake_model, config=CONFIG, num_envs=n)
    native.reset(seed=1)
    action = np.tile(np.arange(3), (n, 1))
    native_rewards, native_ends = 0.0, 0
    for _ in range(steps):
        _, r, te, tr, _ = native.step(action)
        native_rewards += r.sum()
        native_ends += (te | tr).sum()
    single = RecEnv(fake_model, config=CONFIG)
    single.reset(seed=2)
    single_rewards, single_ends = 0.0, 0
    for _ in range(n * steps // 8):
        _, r, te, tr, _ = single.step(np.arange(3))
        single_rewards += r
        if te or tr:
            single_ends += 1
            single.reset()
    per_step = n * steps, n * steps // 8
    assert native_rewards / per_step[0] == pytest.approx(single_rewards / per_step[1], abs=0.03)
    assert native_ends / per_step[0] == pytest.approx(single_ends / per_step[1], abs=0.03)


def test_same_seed_same_batch(fake_model):
    def run(seed):
        env = RecVectorEnv(fake_model, config=CONFIG, num_envs=16)
        env.reset(seed=seed)
        rng = np.random.default_rng(0)
        return [env.step(rng.integers(0, 10, (16, 3)))[1] for _ in range(15)]

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_bad_actions_name_env_and_slot(fake_model):
    env = RecVectorEnv(fake_model, config=CONFIG, num_envs=4)
    env.reset(seed=0)
    bad = np.zeros((4, 3), dtype=int)
    bad[2, 1] = 10
    with pytest.raises(ActionError, match="env 2, slot 1 holds candidate position 10"):
        env.step(bad)
    with pytest.raises(ActionError, match=r"shape \(4, 3\)"):
        env.step(np.zeros(3, dtype=int))
    with pytest.raises(ConfigError, match="num_envs"):
        RecVectorEnv(fake_model, config=CONFIG, num_envs=0)


def test_large_batch_duplicate_detection_matches_pairwise(fake_model):
    env = RecVectorEnv(fake_model, config=EnvConfig(slate_size=6, n_candidates=8), num_envs=200)
    obs, _ = env.reset(seed=0)
    action = np.random.default_rng(1).integers(0, 8, (200, 6))
    _, _, _, _, info = env.step(action)
    slate = np.where(info["_slate"][:, None], info["slate"], info["final_info"]["slate"]
                     if "final_info" in info else info["slate"])
    for row, act in zip(slate, action):
        first = {p: j for j, p in reversed(list(enumerate(act)))}
        for j, p in enumerate(act):
            assert (row[j] == -1) == (first[p] != j)


def test_make_vec_uses_the_native_env():
    env = gym.make_vec("recsim_env:RecSim/Synthetic-v0", num_envs=8, vectorization_mode="vector_entry_point",
                       slate_size=4, n_candidates=20)
    assert isinstance(env.unwrapped, RecVectorEnv) and env.action_space.shape == (8, 4)
    obs, _ = env.reset(seed=0)
    assert obs["candidates"].shape == (8, 20)
    env.step(env.action_space.sample())


def test_two_policies_with_one_seed_see_the_same_users_and_candidates(synthetic_pair):
    """Common random numbers across policies: rows agree until either policy's user in that row leaves."""
    model, catalog = synthetic_pair
    config = EnvConfig(slate_size=3, n_candidates=10, step_cap=50)

    def rollout(slate):
        env = RecVectorEnv(model, catalog, config, num_envs=16)
        obs, _ = env.reset(seed=9)
        sets, alive = [obs["candidates"].copy()], [np.ones(16, dtype=bool)]
        users = obs["user_index"].copy()
        for _ in range(50):
            obs, _, terminated, truncated, _ = env.step(np.tile(slate, (16, 1)))
            alive.append(alive[-1] & ~(terminated | truncated))
            sets.append(obs["candidates"].copy())
        return users, sets, alive

    users_a, sets_a, alive_a = rollout(np.arange(3))
    users_b, sets_b, alive_b = rollout(np.arange(7, 10))
    np.testing.assert_array_equal(users_a, users_b)
    compared = 0
    for step, (a, b, live_a, live_b) in enumerate(zip(sets_a, sets_b, alive_a, alive_b)):
        both = live_a & live_b
        np.testing.assert_array_equal(a[both], b[both], err_msg=f"step {step + 1}")
        compared += both.sum()
    assert compared > 16 * 3  # most rows were compared over several steps
    # The two policies do lead to different sessions: the responses' stream is not shared by accident.
    assert any(not np.array_equal(a, b) for a, b in zip(alive_a, alive_b))


def test_single_env_fast_path_equals_a_one_row_batch_step_for_step(fake_model):
    # RecEnv steps a specialised one-user simulation; it must be the batched dynamics, not a copy of them.
    single = RecEnv(fake_model, config=CONFIG)
    batch = RecVectorEnv(fake_model, config=CONFIG, num_envs=1)
    obs_s, _ = single.reset(seed=11)
    obs_b, _ = batch.reset(seed=11)
    rng = np.random.default_rng(0)
    for step in range(CONFIG.step_cap):
        for key in obs_s:
            np.testing.assert_array_equal(obs_s[key], obs_b[key][0], err_msg=f"step {step}, key {key}")
        action = rng.permutation(CONFIG.n_candidates)[: CONFIG.slate_size]
        obs_s, r_s, term_s, trunc_s, info_s = single.step(action)
        obs_b, r_b, term_b, trunc_b, info_b = batch.step(action[None, :])
        assert r_s == pytest.approx(float(r_b[0]))
        assert (term_s, trunc_s) == (bool(term_b[0]), bool(trunc_b[0]))
        if term_s or trunc_s:  # the batch has already replaced its user (SAME_STEP autoreset)
            np.testing.assert_array_equal(info_s["click"], info_b["final_info"]["click"][0])
            break
        np.testing.assert_array_equal(info_s["click"], info_b["click"][0])
    else:
        pytest.fail("the episode should end within the step cap")


def test_large_batch_of_distinct_slates_blanks_nothing_and_one_repeat_is_found(fake_model):
    """N >= 64 takes the scatter check: distinct slates pass whole, a lone repeat is blanked alone."""
    env = RecVectorEnv(fake_model, config=EnvConfig(slate_size=4, n_candidates=10), num_envs=128)
    env.reset(seed=0)
    action = np.argsort(np.random.default_rng(2).random((128, 10)), axis=1)[:, :4]
    _, _, _, _, info = env.step(action)
    slate = info["final_info"]["slate"] if "final_info" in info else info["slate"]
    slate = np.where(info["_slate"][:, None], info["slate"], slate)
    assert (slate >= 0).all()
    action[77, 3] = action[77, 1]
    _, _, _, _, info = env.step(action)
    slate = np.where(info["_slate"][:, None], info["slate"], info.get("final_info", info)["slate"])
    assert (slate == -1).sum() == 1 and slate[77, 3] == -1


def test_merge_final_info_takes_ended_rows_from_final_info() -> None:
    done = np.array([False, True])
    info = {"choice": np.array([1, 0]), "click": np.array([[0.0, 1.0], [0.0, 0.0]]),
            "final_info": {"choice": np.array([0, -1]), "_choice": done, "click": np.zeros((2, 2))}}
    merged = merge_final_info(info, done)
    assert merged["choice"].tolist() == [1, -1]  # the zeroed top level would have said "slot 0"
    assert merge_final_info({"final_info": {"choice": np.array([2, 0])}}, np.array([True, True]))[
        "choice"
    ].tolist() == [2, 0]


def test_step_before_reset_raises_gymnasiums_reset_needed() -> None:
    import gymnasium as gym

    from recsim_env.users.synthetic import SyntheticUserModel

    model = SyntheticUserModel()
    venv = RecVectorEnv(model, model.catalog(), num_envs=2)
    with pytest.raises(gym.error.ResetNeeded):  # the single env's behaviour (was RuntimeError)
        venv.step(np.zeros((2, venv.config.slate_size), dtype=np.int64))
