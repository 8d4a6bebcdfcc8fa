"""The benchmark harness: config, registries of policies and simulators, the run, its results and report."""

from recsim_env._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "BenchmarkConfig": "recsim_env.benchmark.config",
    "Budgets": "recsim_env.benchmark.config",
    "run_benchmark": "recsim_env.benchmark.run",
    "load_results": "recsim_env.benchmark.run",
    "BenchmarkResult": "recsim_env.benchmark.results",
    "register_policy": "recsim_env.benchmark.registry",
    "register_simulator": "recsim_env.benchmark.registry",
    "register_context": "recsim_env.benchmark.registry",
})
