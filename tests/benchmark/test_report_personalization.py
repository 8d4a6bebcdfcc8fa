"""The benchmark report lists personalization, with one seed (over episodes) and with several."""

from __future__ import annotations

import pandas as pd
import pytest

from recsim_env.benchmark.run import BenchmarkConfig, run_benchmark


@pytest.mark.parametrize("seeds", [1, 2])
def test_the_report_lists_personalization_per_policy_and_simulator(tmp_path, fake_registry, seeds):
    config = BenchmarkConfig.from_dict({"policies": ["fav", "first"], "simulators": ["fake-a"], "seeds": seeds,
                                        "episodes": 8, "out_dir": str(tmp_path / "run"), "offline": False})
    report = run_benchmark(config, progress=False).read_text()
    results = pd.read_csv(config.out_path / "results.csv")
    rows = results[results["metric"] == "personalization"].set_index("policy")
    assert set(rows.index) == {"fav", "first"} and rows["mean"].between(0, 1).all()
    per_seed = pd.read_csv(config.out_path / "per_seed.csv").groupby("policy")["personalization"].mean()
    pd.testing.assert_series_equal(rows["mean"].sort_index(), per_seed.sort_index(), check_names=False)
    assert "personalization" in report.split("## fake-a")[1].splitlines()[2]  # a column of the table
