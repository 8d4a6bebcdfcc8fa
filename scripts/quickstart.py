"""Quickstart in code: a tiny version of ``recsim benchmark``.

1. Build a batched env over the synthetic users, fit a baseline on the log they generate, and score
   it against a random policy and a custom policy with :func:`recsim_env.evaluation.rollout.evaluate`
   (common random numbers: every policy meets the same users).
2. Run the benchmark pipeline itself on the same simulator with short budgets and write a report.

    python scripts/quickstart.py [--out runs/quickstart]
"""

from __future__ import annotations

import argparse

import numpy as np

from baselines.popularity import Popularity, RandomConfig, RandomScores
from recsim_env.benchmark.run import BenchmarkConfig, run_benchmark
from recsim_env.env.config import EnvConfig
from recsim_env.env.vector import RecVectorEnv
from recsim_env.evaluation.rollout import evaluate
from recsim_env.users.synthetic import SyntheticUserModel


class FirstCandidates:
    """A policy is anything with SB3's ``predict``: this one shows the first ``k`` candidates."""

    def __init__(self, slate_size: int) -> None:
        self.slate_size = slate_size

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        n = len(observation["candidates"])
        return np.tile(np.arange(self.slate_size), (n, 1)), state


def in_code(slate_size: int = 10) -> None:
    users = SyntheticUserModel()
    catalog = users.catalog()
    log = users.generate_log(300, np.random.default_rng(0), slate_size=slate_size)
    config = EnvConfig(slate_size=slate_size, n_candidates=100)

    def make_env(num_envs: int) -> RecVectorEnv:
        return RecVectorEnv(users, catalog, config, num_envs=num_envs)

    policies = {"popularity": Popularity(slate_size=slate_size).fit(log),
                "random": RandomScores(RandomConfig(seed=0), slate_size=slate_size).fit(log),
                "first-candidates": FirstCandidates(slate_size)}
    for name, policy in policies.items():
        stats = evaluate(policy, make_env, n_episodes=200, seed=[0, 1, 2])
        row = stats.summary().set_index("metric").loc["return"]
        print(f"{name:>16}: return {row['mean']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}] (95% CI, 3 seeds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/quickstart", help="report folder (default: %(default)s)")
    args = parser.parse_args()
    in_code()
    config = BenchmarkConfig.build(quick=True, policies="random,popularity,mf-bpr,oracle", simulators="synthetic",
                                   out_dir=args.out)
    run_benchmark(config)


if __name__ == "__main__":
    main()
