from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fake_vector_env import N_CANDIDATES, N_ITEMS, FakeRecVectorEnv, FirstSlotsPolicy, OraclePolicy
from gymnasium.vector import AutoresetMode
from scipy import stats

from recsim_env.errors import ConfigError
from recsim_env.evaluation import metrics
from recsim_env.evaluation.rollout import EpisodeStats, evaluate, summarize, wave_seed


def test_same_seed_gives_identical_episodes_for_a_deterministic_policy():
    a = evaluate(OraclePolicy(), FakeRecVectorEnv(8), n_episodes=20, seed=3)
    b = evaluate(OraclePolicy(), FakeRecVectorEnv(8), n_episodes=20, seed=3)
    pd.testing.assert_frame_equal(a.episodes, b.episodes)
    c = evaluate(OraclePolicy(), FakeRecVectorEnv(8), n_episodes=20, seed=4)
    assert not np.array_equal(a.episodes["user_index"], c.episodes["user_index"])


def test_two_policies_meet_the_same_users_and_the_better_one_wins_episode_by_episode():
    oracle, fixed = OraclePolicy(), FirstSlotsPolicy()
    good = evaluate(oracle, FakeRecVectorEnv(8), n_episodes=20, seed=1)
    bad = evaluate(fixed, FakeRecVectorEnv(8), n_episodes=20, seed=1)
    for u, v in zip(oracle.seen_users, fixed.seen_users):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(good.episodes["user_index"], bad.episodes["user_index"])
    # Same users and candidates: the oracle is at least as good in every single episode.
    assert (good.episodes["return"].to_numpy() >= bad.episodes["return"].to_numpy()).all()
    assert good.episodes["return"].sum() > bad.episodes["return"].sum()


def test_only_each_slots_first_episode_is_counted_with_its_full_length():
    stats_ = evaluate(OraclePolicy(), FakeRecVectorEnv(4), n_episodes=7, seed=0)
    ep = stats_.episodes
    assert len(ep) == 7 and list(ep["episode"]) == list(range(7))
    np.testing.assert_array_equal(ep["session_length"], 2 + ep["user_index"] % 4)
    # The oracle clicks exactly when the favourite is a candidate, so each return is a whole count.
    assert ((ep["return"] >= 0) & (ep["return"] <= ep["session_length"])).all()


def test_per_episode_metrics_follow_the_responses():
    ep = evaluate(OraclePolicy(), FakeRecVectorEnv(8), n_episodes=30, seed=2).episodes
    np.testing.assert_allclose(ep["ctr"], ep["return"] / ep["session_length"])
    np.testing.assert_allclose(ep["like_rate"], ep["ctr"])
    np.testing.assert_allclose(ep["dwell"], 30 * ep["return"])
    clicked = ep["return"] > 0
    assert (ep.loc[clicked, "mean_rating"] == 5).all() and ep.loc[~clicked, "mean_rating"].isna().all()
    assert ep["diversity"].between(0, 1).all() and (ep["novelty"] > 0).all()


def test_coverage_counts_the_items_shown():
    fixed = evaluate(FirstSlotsPolicy(), FakeRecVectorEnv(8), n_episodes=16, seed=5)
    cov = float(fixed.seeds["coverage"].iloc[0])
    assert 0 < cov <= 1 and cov == pytest.approx(round(cov * N_ITEMS) / N_ITEMS)


def test_factory_is_called_with_the_batch_size_and_seeds_aggregate_with_t_intervals():
    sizes = []

    def factory(n):
        sizes.append(n)
        return FakeRecVectorEnv(n)

    result = evaluate(OraclePolicy(), factory, n_episodes=10, seed=[0, 1, 2], max_envs=4)
    assert sizes == [4] and sorted(result.seeds["seed"]) == [0, 1, 2] and len(result.episodes) == 30
    per_seed = result.per_seed()["return"].to_numpy()
    row = result.summary().set_index("metric").loc["return"]
    half = stats.sem(per_seed) * stats.t.ppf(0.975, 2)
    assert row["mean"] == pytest.approx(per_seed.mean())
    assert row["ci_high"] - row["mean"] == pytest.approx(half) and row["n"] == 3


def test_summary_with_one_seed_uses_episodes_and_all_nan_columns_stay_nan():
    table = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan], "y": [np.nan] * 4})
    out = summarize(table, ["x", "y"]).set_index("metric")
    assert out.loc["x", "n"] == 3 and out.loc["x", "mean"] == pytest.approx(2.0)
    assert out.loc["x", "ci_low"] == pytest.approx(2.0 - stats.t.ppf(0.975, 2) * stats.sem([1, 2, 3]))
    assert np.isnan(out.loc["y", "mean"]) and out.loc["y", "n"] == 0
    single = evaluate(OraclePolicy(), FakeRecVectorEnv(8), n_episodes=12, seed=0).summary()
    assert single.set_index("metric").loc["return", "n"] == 12


def test_wave_seeds_depend_only_on_seed_and_wave():
    assert wave_seed(0, 0) == wave_seed(0, 0) != wave_seed(0, 1) != wave_seed(1, 0)


def test_concat_keeps_rows():
    a = evaluate(OraclePolicy(), FakeRecVectorEnv(4), n_episodes=4, seed=0)
    both = EpisodeStats.concat([a, a])
    assert len(both.episodes) == 8 and len(both.seeds) == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"n_episodes": 0}, "n_episodes"),
    ({"n_episodes": 2.5}, "n_episodes"),
    ({"max_envs": 0}, "max_envs"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        evaluate(OraclePolicy(), FakeRecVectorEnv(2), **{"n_episodes": 2, **kwargs})


def test_a_policy_without_predict_and_a_next_step_env_are_refused():
    with pytest.raises(ConfigError, match="predict"):
        evaluate(object(), FakeRecVectorEnv(2), n_episodes=2)
    env = FakeRecVectorEnv(2)
    env.metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}
    with pytest.raises(ConfigError, match="SAME_STEP"):
        evaluate(OraclePolicy(), env, n_episodes=2)
    with pytest.raises(ConfigError, match="VectorEnv"):
        evaluate(OraclePolicy(), 42, n_episodes=2)


class _UnboundRanker(FirstSlotsPolicy):
    """A ranker that learns its slate size from the env it is evaluated in, like the baselines."""

    def __init__(self):
        super().__init__()
        self.slate_size = None
        self.bound_to = None

    def bind(self, action_space):
        self.bound_to = action_space
        self.slate_size = int(np.asarray(action_space.nvec).shape[-1])
        return self

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        assert self.slate_size is not None, "evaluate() must bind before the first predict()"
        return super().predict(observation, state, episode_start, deterministic)


def test_an_unbound_ranker_is_bound_to_the_envs_single_action_space():
    env = FakeRecVectorEnv(4)
    policy = _UnboundRanker()
    evaluate(policy, env, n_episodes=4, seed=0)
    assert policy.bound_to == env.single_action_space


def test_a_ranker_with_its_own_slate_size_is_left_alone():
    policy = _UnboundRanker()
    policy.slate_size = 2
    evaluate(policy, FakeRecVectorEnv(4), n_episodes=4, seed=0)
    assert policy.bound_to is None


def test_without_a_catalog_the_catalog_metrics_are_nan_and_one_warning_says_why(caplog):
    venv = FakeRecVectorEnv(4)
    venv.catalog = None
    with caplog.at_level("WARNING", logger="recsim_env.evaluation.rollout"):
        out = evaluate(OraclePolicy(), venv, n_episodes=6, seed=[0, 1, 2])
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["evaluate: diversity, novelty, coverage are NaN: no item catalog (pass catalog= or give "
                        "the env a catalog attribute) to read genre features and popularity from"]
    assert out.episodes[["diversity", "novelty"]].isna().all().all() and out.seeds["coverage"].isna().all()
    caplog.clear()
    with caplog.at_level("WARNING", logger="recsim_env.evaluation.rollout"):
        evaluate(OraclePolicy(), FakeRecVectorEnv(4), n_episodes=6, seed=0)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


class _SameCandidatesEnv(FakeRecVectorEnv):
    """Every user is offered the same candidates at every step."""

    def _candidates(self, users):
        return np.tile(np.arange(N_CANDIDATES), (len(users), 1))


class _RecordingPolicy(FirstSlotsPolicy):
    """Shows candidates (slot % 3, slot % 3 + 3) of the slot's row and keeps every step's slates."""

    def __init__(self):
        super().__init__()
        self.slates = []

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if episode_start is not None and np.all(episode_start):
            self.seen_users.append(observation["user_index"][:, 0].copy())
        slot = np.arange(len(observation["candidates"])) % 3
        action = np.stack([slot, slot + 3], axis=1)
        self.slates.append(np.take_along_axis(observation["candidates"], action, axis=1))
        return action, state


def test_personalization_is_a_seed_metric_over_the_users_in_session_at_each_step():
    assert evaluate(FirstSlotsPolicy(), _SameCandidatesEnv(6), n_episodes=6, seed=0).seeds[
        "personalization"].iloc[0] == 0.0  # one slate for all: nothing personal
    policy = _RecordingPolicy()
    out = evaluate(policy, FakeRecVectorEnv(6), n_episodes=6, seed=3)  # one wave
    # Slot i's counted user stays 2 + user % 4 steps; the users autoreset brings in after it are not compared.
    lengths = 2 + policy.seen_users[0] % 4
    active = np.arange(lengths.max())[:, None] < lengths[None, :]
    expected = metrics.personalization(np.stack(policy.slates), active)
    assert 0 < expected < 1 and out.seeds["personalization"].iloc[0] == pytest.approx(expected)
    summary = out.summary().set_index("metric")
    assert summary.loc["personalization", "mean"] == pytest.approx(expected)
