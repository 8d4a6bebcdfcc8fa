"""Where the benchmark's agents train: a lifetime simulator's agents train in a lifetime simulator (the
``ml-100k-lifetime`` and ``synthetic-lifetime`` contexts), a session simulator's in a session one."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_env.benchmark.config import BenchmarkConfig
from recsim_env.benchmark.defaults import CONTEXTS, SIMULATORS, simulator_spec
from recsim_env.benchmark.tasks import contexts_of, load_context, train_policy
from recsim_env.env.lifetime import LifetimeVectorEnv
from recsim_env.env.vector import RecVectorEnv


def test_every_simulator_trains_its_agents_in_a_simulator_of_its_own_kind():
    for name, spec in SIMULATORS.items():
        train = simulator_spec(CONTEXTS[spec.context].train_simulator)
        assert train.lifetime == spec.lifetime, name
        assert train.context == spec.context, name
    # The later-split lifetime simulator is one no policy trained against: its agents train in the train split's.
    assert CONTEXTS[simulator_spec("ml100k-later-lifetime").context].train_simulator == "ml100k-train-lifetime"
    assert CONTEXTS[simulator_spec("synthetic-lifetime").context].train_simulator == "synthetic-lifetime"
    # The session contexts keep their training simulators (the default --quick job is unchanged).
    assert {c: CONTEXTS[c].train_simulator for c in ("ml-100k", "synthetic")} == {
        "ml-100k": "ml100k-train", "synthetic": "synthetic"}
    assert contexts_of(BenchmarkConfig.from_dict({"quick": True})) == {
        "ml-100k": ["ml100k-train", "ml100k-later"], "synthetic": ["synthetic"]}
    both = BenchmarkConfig.from_dict({"simulators": ["ml100k-train", "ml100k-train-lifetime", "ml100k-later-lifetime"]})
    assert contexts_of(both) == {"ml-100k": ["ml100k-train"],
                                 "ml-100k-lifetime": ["ml100k-train-lifetime", "ml100k-later-lifetime"]}


def test_the_lifetime_contexts_load_the_session_contexts_data():
    assert CONTEXTS["ml-100k-lifetime"].load is CONTEXTS["ml-100k"].load
    assert CONTEXTS["synthetic-lifetime"].load is CONTEXTS["synthetic"].load


@pytest.mark.parametrize("context, simulator, lifetime", [("synthetic-lifetime", "synthetic-lifetime", True),
                                                          ("synthetic", "synthetic", False)])
def test_the_agent_trains_in_its_contexts_simulator(context, simulator, lifetime, tmp_path, monkeypatch):
    """SlateQ through the benchmark's own builder: the env ``agents.factory.train_agent`` gets is a
    lifetime env (its users come back: later sessions within one episode) only in the lifetime context."""
    import agents.factory
    from recsim_env.users.synthetic import ReturningSyntheticUserModel

    seen = []
    real = agents.factory.train_agent

    def spy(name, env, *args, **kwargs):
        seen.append(env)
        return real(name, env, *args, **kwargs)

    monkeypatch.setattr(agents.factory, "train_agent", spy)
    config = BenchmarkConfig.from_dict({
        "policies": ["slateq"], "simulators": [simulator], "slate_size": 3, "n_candidates": 10, "warm_start": "",
        "out_dir": str(tmp_path), "budgets": {"synthetic_log_users": 30, "agent_steps": 256, "train_envs": 8}})
    loaded = load_context(config, context, [simulator])
    built, ctx = train_policy(config, loaded, "slateq", 0, progress=False)
    assert ctx.simulator.name == simulator and len(seen) == 1
    env = seen[0]
    assert isinstance(env, LifetimeVectorEnv) is lifetime and isinstance(env, RecVectorEnv)
    assert isinstance(env.user_model, ReturningSyntheticUserModel) is lifetime
    assert ("session_index" in env.single_observation_space.spaces) is lifetime
    if lifetime:
        # Behaviour, not only the type: stepping the training env long enough, users start second sessions
        # inside their episode (the session env would have ended the episode there).
        obs, _ = env.reset(seed=1)
        later = 0
        for _ in range(200):
            obs, _, _, _, _ = env.step(built.policy.predict(obs)[0])
            later = max(later, int(np.max(obs["session_index"])))
        assert later >= 1
    # The trained policy acts on the context's simulators' observations.
    eval_env = loaded.simulators[simulator].make_env(4)
    obs, _ = eval_env.reset(seed=0)
    action, _ = built.policy.predict(obs)
    assert action.shape == (4, 3)


def test_an_agent_variant_trains_with_its_config_and_the_agents_budget(tmp_path):
    """``agent_builder(name, agent_config)``: what scripts/bench_lifetime_slateq.py registers."""
    from agents.slateq import SlateQConfig
    from recsim_env.benchmark.config import Budgets
    from recsim_env.benchmark.policies import agent_builder, build_slateq
    from recsim_env.benchmark.registry import Simulator, TrainingContext
    from recsim_env.env.config import EnvConfig
    from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel

    model = SyntheticUserModel(SyntheticConfig(n_items=40, n_users=50))

    def make_env(n):
        return RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=n)

    budgets = Budgets(epochs=1, agent_steps=64, train_envs=8, synthetic_log_users=10, slateq_steps=128)
    ctx = TrainingContext("t", None, None, Simulator("s", make_env, model.catalog()), 3, budgets, 0,
                          tmp_path / "bench", progress=False)
    variant = agent_builder("slateq", SlateQConfig(gamma=0.95))(ctx)
    default = build_slateq(ctx)
    assert variant.policy.config.gamma == 0.95 and default.policy.config == SlateQConfig()
    assert variant.curve["step"].iloc[-1] == default.curve["step"].iloc[-1] == 128  # SlateQ's budget
