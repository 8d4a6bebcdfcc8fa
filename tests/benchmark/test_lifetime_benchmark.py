"""The benchmark on a lifetime simulator: the long-term metrics with intervals in its results, and the
gain decomposition (lifetime clicks = sessions x steps per session x clicks per step)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsim_env.benchmark.config import BenchmarkConfig
from recsim_env.benchmark.defaults import DEFAULT_SIMULATORS
from recsim_env.benchmark.gains import FACTORS, decompose
from recsim_env.benchmark.results import BenchmarkResult
from recsim_env.benchmark.run import run_benchmark
from recsim_env.evaluation.longterm import LONGTERM_METRICS


@pytest.fixture(scope="module")
def lifetime_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lifetime") / "run"
    config = BenchmarkConfig.from_dict({
        "policies": ["random", "popularity", "oracle"], "simulators": ["synthetic-lifetime"], "seeds": 2,
        "episodes": 16, "slate_size": 5, "n_candidates": 20, "out_dir": str(out), "offline": False,
        "budgets": {"synthetic_log_users": 100}})
    run_benchmark(config, progress=False)
    return config


def test_lifetime_simulators_are_opt_in():
    assert {"ml100k-train", "ml100k-later", "synthetic"} <= set(DEFAULT_SIMULATORS)
    assert not {s for s in DEFAULT_SIMULATORS if s.endswith("-lifetime")}
    assert BenchmarkConfig.from_dict({"quick": True}).simulators == DEFAULT_SIMULATORS


def test_results_carry_the_longterm_metrics_with_intervals(lifetime_run):
    results = pd.read_csv(lifetime_run.out_path / "results.csv")
    longterm = results[results["metric"].isin(LONGTERM_METRICS)]
    assert len(longterm) == 3 * len(LONGTERM_METRICS)  # every policy, every long-term metric
    assert (longterm["n"] == 2).all()  # intervals over the two seeds
    assert (longterm["ci_low"] <= longterm["mean"]).all() and (longterm["mean"] <= longterm["ci_high"]).all()
    assert (longterm["ci_high"] > longterm["ci_low"]).any()
    # The pooled share, recomputed from the episodes' counts: per seed, then averaged over seeds.
    episodes = pd.read_csv(lifetime_run.out_path / "episodes.csv")
    for policy, group in episodes.groupby("policy"):
        sums = group.groupby("seed")[["returns_7d", "session_ends", "clicks", "sessions_per_user"]].sum()
        rate = results.set_index(["policy", "metric"]).loc[(policy, "return_rate_7d"), "mean"]
        assert rate == pytest.approx((sums["returns_7d"] / sums["session_ends"]).mean())
        clicks = results.set_index(["policy", "metric"]).loc[(policy, "lifetime_clicks"), "mean"]
        assert clicks == pytest.approx(group.groupby("seed")["clicks"].mean().mean())
        assert group["sessions_per_user"].min() >= 1
    per_seed = pd.read_csv(lifetime_run.out_path / "per_seed.csv")
    assert set(LONGTERM_METRICS) <= set(per_seed.columns) and per_seed["return_rate_7d"].between(0, 1).all()
    report = (lifetime_run.out_path / "report.md").read_text()
    assert "return_rate_7d" in report and "Lifetime clicks against the best myopic policy" in report


def test_gain_factors_multiply_to_the_clicks_ratio(lifetime_run):
    gains = pd.read_csv(lifetime_run.out_path / "gains.csv")
    assert set(gains["policy"]) | set(gains["reference"]) == {"random", "popularity", "oracle"}
    product = gains["sessions"] * gains["steps_per_session"] * gains["clicks_per_step"]
    np.testing.assert_allclose(product, gains["lifetime_clicks"], rtol=1e-9)
    for factor in FACTORS:
        assert (gains[f"{factor}_low"] <= gains[factor]).all() and (gains[factor] <= gains[f"{factor}_high"]).all()


def _episodes(policy: str, seed: int, clicks: list[float], steps: list[float], sessions: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"simulator": "sim", "policy": policy, "seed": seed, "clicks": clicks,
                         "session_length": steps, "sessions_per_user": sessions})


def test_decompose_known_answer():
    """popularity (a baseline) is the reference; slateq (an agent) doubles the sessions, keeps their
    length and is clicked half as often per step in seed 0; in seed 1 everything is equal."""
    episodes = pd.concat([
        _episodes("popularity", 0, [4, 4], [8, 8], [2, 2]), _episodes("slateq", 0, [4, 4], [16, 16], [4, 4]),
        _episodes("popularity", 1, [6, 2], [12, 4], [3, 1]), _episodes("slateq", 1, [6, 2], [12, 4], [3, 1]),
    ], ignore_index=True)
    result = BenchmarkResult(BenchmarkConfig(), episodes, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}, [])
    row = decompose(result, "sim").set_index("policy").loc["slateq"]
    assert row["reference"] == "popularity" and row["n"] == 2 and row["diff"] == 0.0
    assert row["sessions"] == pytest.approx(np.sqrt(2.0))  # geometric mean of 2 and 1
    assert row["steps_per_session"] == pytest.approx(1.0)
    assert row["clicks_per_step"] == pytest.approx(np.sqrt(0.5))
    assert row["lifetime_clicks"] == pytest.approx(1.0)
