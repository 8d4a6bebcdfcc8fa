"""The real pipeline on the synthetic simulator with the real baselines and the oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsim_env.benchmark.run import BenchmarkConfig, run_benchmark


def test_synthetic_benchmark_with_real_policies_and_the_oracle(tmp_path):
    config = BenchmarkConfig.from_dict({
        "policies": ["random", "popularity", "oracle", "slateq"], "simulators": ["synthetic"], "seeds": 2,
        "episodes": 64, "slate_size": 5, "n_candidates": 20, "out_dir": str(tmp_path / "run"),
        # SlateQ warm-starts from MF-BPR fitted on a log of 200 of the simulator's 1,000 users: items only.
        "budgets": {"synthetic_log_users": 200, "agent_steps": 64, "train_envs": 8, "epochs": 2}})
    run_benchmark(config, progress=False)
    results = pd.read_csv(config.out_path / "results.csv").set_index(["policy", "metric"])["mean"]
    # Greedy on the true utilities maximises each step's click probability: the highest CTR.
    assert results["oracle", "ctr"] > max(results["random", "ctr"], results["popularity", "ctr"])
    assert results["popularity", "coverage"] < results["random", "coverage"]
    episodes = pd.read_csv(config.out_path / "episodes.csv")
    for _, group in episodes.groupby("seed"):
        users = [g["user_index"].to_numpy() for _, g in group.groupby("policy")]
        assert all(np.array_equal(users[0], u) for u in users[1:])
    offline = pd.read_csv(config.out_path / "offline.csv")
    assert set(offline["policy"]) == {"random", "popularity"} and offline["HR@10"].between(0, 1).all()
