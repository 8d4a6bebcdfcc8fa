

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
