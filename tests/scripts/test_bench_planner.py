import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `scripts`

from scripts import bench_planner  # noqa: E402


def test_a_setting_string_is_a_planner_config():
    config = bench_planner.planner_config("rollouts=2;horizon=7;weights=4:0:2.5", seed=3)
    assert (config.rollouts, config.horizon, config.weights, config.seed) == (2, 7, (4.0, 0.0, 2.5), 3)


def test_a_tiny_run_prints_one_line_per_policy(capsys: pytest.CaptureFixture) -> None:
    bench_planner.main(["--users", "3", "--weights", "0,4", "--planners", "rollouts=1;horizon=2;weights=4:0"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["seed"] for row in rows} == {"tuning"}
    assert [row["policy"] for row in rows] == ["greedy w=0", "greedy w=4", "planner rollouts=1;horizon=2;weights=4:0"]
    assert rows[1]["return"] > rows[0]["return"]  # quality keeps users: the trap the planner exists for
    assert len(rows[2]["picks"]) == 2 and sum(rows[2]["picks"]) == pytest.approx(1.0, abs=1e-3)


def test_the_benchmark_seeds_are_the_benchmark_cells_users(capsys: pytest.CaptureFixture) -> None:
    from recsim_env.benchmark.tasks import evaluation_seed

    bench_planner.main(["--users", "3", "--weights", "0", "--benchmark-seeds", "2"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    bench_planner.main(["--users", "3", "--weights", "0", "--seed", str(evaluation_seed(1, "synthetic"))])
    alone = json.loads(capsys.readouterr().out)
    assert [row["seed"] for row in rows] == [0, 1] and rows[1]["return"] == alone["return"]
