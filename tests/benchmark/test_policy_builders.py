from __future__ import annotations

import numpy as np
import pytest

from recsim_env.benchmark.defaults import (
    POLICIES,
    SIMULATORS,
    policy_spec,
    simulator_spec,
)
from recsim_env.benchmark.policies import OraclePolicy
from recsim_env.env.config import EnvConfig
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel


def test_every_policy_of_the_issue_and_every_simulator_is_registered():
    assert {"random", "popularity", "item-knn", "mf-bpr", "neumf", "lightgcn", "content", "slateq", "reinforce",
            "oracle"} <= set(POLICIES)
    assert {"ml100k-train", "ml100k-later", "synthetic"} <= set(SIMULATORS)
    assert simulator_spec("synthetic").has_oracle and simulator_spec("synthetic").has_planner
    # The fitted simulators' truth is their fitted model: the oracle reads it; it has no item quality to plan on.
    assert simulator_spec("ml100k-train").has_oracle and not simulator_spec("ml100k-train").has_planner
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


@pytest.mark.parametrize("name", ["sb3-dqn", "slateq", "reinforce"])
def test_benchmark_agents_act_as_recsim_train_trains_them(name, tmp_path):
    # The benchmark once rebuilt SB3 DQN's slate policy without the popularity fill it was trained
    # with, and evaluated it at random's level. Its agents must be what agents.factory trains.
    from agents.factory import train_agent
    from agents.training import TrainConfig
    from recsim_env.benchmark.config import Budgets
    from recsim_env.benchmark.registry import Simulator, TrainingContext

    model = SyntheticUserModel(SyntheticConfig(n_items=40, n_users=50))
    config = EnvConfig(slate_size=3, n_candidates=10)

    def make_env(n):
        return RecVectorEnv(model, model.catalog(), config, num_envs=n)

    budgets = Budgets(epochs=1, agent_steps=256, train_envs=8, synthetic_log_users=10)
    ctx = TrainingContext("t", None, None, Simulator("s", make_env, model.catalog()), 3, budgets, 0,
                          tmp_path / "bench", progress=False)
    built = policy_spec(name).build(ctx).policy
    direct, _ = train_agent(name, make_env(8), TrainConfig(total_steps=256, log_interval=25, checkpoint_interval=0,
                                                           progress=False), 0)
    obs, _ = make_env(16).reset(seed=5)
    np.testing.assert_array_equal(built.predict(obs)[0], direct.predict(obs)[0])


@pytest.mark.parametrize("name, log_users", [("slateq", 50), ("reinforce", 50), ("slateq", 20)])
def test_benchmark_agents_start_from_the_warm_start_baselines_embeddings(name, log_users, tmp_path):
    """``BenchmarkConfig.warm_start``: the baseline is fitted on the context's split, its embeddings
    are written beside the agent's logs, and the agent's towers start from them. A log of some of the
    simulator's users only (the synthetic context's) warm-starts the items alone."""
    import torch

    from agents.warm_start import load_embeddings
    from recsim_env.benchmark.config import Budgets
    from recsim_env.benchmark.registry import Simulator, TrainingContext
    from recsim_env.data.splits import leave_one_out

    model = SyntheticUserModel(SyntheticConfig(n_items=40, n_users=50))
    log = model.generate_log(log_users, np.random.default_rng(0), slate_size=3, n_candidates=10)
    config = EnvConfig(slate_size=3, n_candidates=10)

    def make_env(n):
        return RecVectorEnv(model, model.catalog(), config, num_envs=n)

    budgets = Budgets(epochs=2, agent_steps=8, train_envs=8, synthetic_log_users=10)  # one step: no update yet
    ctx = TrainingContext("t", log, leave_one_out(log), Simulator("s", make_env, model.catalog()), 3, budgets, 0,
                          tmp_path / "bench", progress=False, warm_start="mf-bpr")
    agent = policy_spec(name).build(ctx).policy
    emb = load_embeddings(tmp_path / "bench" / "warm_start_mf-bpr.npz")
    tower = agent.q.tower if name == "slateq" else agent.net.tower
    torch.testing.assert_close(tower.items.weight[:40], torch.from_numpy(emb.item))  # no update yet: untouched
    assert len(emb.user) == log_users
    if log_users == 50:
        torch.testing.assert_close(tower.users.weight[:50], torch.from_numpy(emb.user))
    else:
        assert not torch.allclose(tower.users.weight[:20], torch.from_numpy(emb.user))
    assert emb.item.std() > 0.05  # a trained MF, not zeros


def test_the_warm_start_baseline_is_fitted_once_per_seed_for_all_agents(tmp_path, monkeypatch):
    from baselines.mf import BPRMF
    from recsim_env.benchmark.config import Budgets
    from recsim_env.benchmark.registry import Simulator, TrainingContext
    from recsim_env.data.splits import leave_one_out

    model = SyntheticUserModel(SyntheticConfig(n_items=40, n_users=50))
    log = model.generate_log(50, np.random.default_rng(0), slate_size=3, n_candidates=10)
    fits = []
    fit = BPRMF.fit
    monkeypatch.setattr(BPRMF, "fit", lambda self, *a, **k: (fits.append(1), fit(self, *a, **k))[1])

    def make_env(n):
        return RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=n)

    budgets = Budgets(epochs=2, agent_steps=8, train_envs=8, synthetic_log_users=10)
    for name in ("slateq", "reinforce"):
        ctx = TrainingContext("t", log, leave_one_out(log), Simulator("s", make_env, model.catalog()), 3, budgets, 0,
                              tmp_path / name, progress=False, warm_start="mf-bpr", shared_dir=tmp_path / "shared")
        policy_spec(name).build(ctx)
    assert len(fits) == 1
    assert [p.name for p in (tmp_path / "shared" / "seed-0").glob("*.npz")] == ["warm_start_mf-bpr.npz"]


def test_lightgcn_is_a_benchmark_baseline_and_a_warm_start_source(tmp_path):
    """LightGCN acts in the env as a myopic baseline, and SlateQ's towers start from its embeddings."""
    import torch

    from agents.warm_start import load_embeddings
    from recsim_env.benchmark.config import BenchmarkConfig, Budgets
    from recsim_env.benchmark.registry import Simulator, TrainingContext
    from recsim_env.data.splits import leave_one_out

    model = SyntheticUserModel(SyntheticConfig(n_items=40, n_users=50))
    log = model.generate_log(50, np.random.default_rng(0), slate_size=3, n_candidates=10)
    config = EnvConfig(slate_size=3, n_candidates=10)

    def make_env(n):
        return RecVectorEnv(model, model.catalog(), config, num_envs=n)

    budgets = Budgets(epochs=2, agent_steps=8, train_envs=8, synthetic_log_users=10)  # one step: no update yet
    ctx = TrainingContext("t", log, leave_one_out(log), Simulator("s", make_env, model.catalog()), 3, budgets, 0,
                          tmp_path / "bench", progress=False, warm_start="lightgcn")
    obs, _ = make_env(4).reset(seed=1)
    action, _ = policy_spec("lightgcn").build(ctx).policy.predict(obs)
    assert action.shape == (4, 3) and all(len(set(row)) == 3 for row in action.tolist())
    agent = policy_spec("slateq").build(ctx).policy
    emb = load_embeddings(tmp_path / "bench" / "warm_start_lightgcn.npz")
    torch.testing.assert_close(agent.q.tower.items.weight[:40], torch.from_numpy(emb.item))
    assert emb.item.std() > 0.01
    assert BenchmarkConfig(warm_start="lightgcn").warm_start == "lightgcn"
