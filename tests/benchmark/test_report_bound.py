"""The report's share of the long-horizon reference's gain: ``(policy - oracle) / (planner - oracle)`` per seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsim_env.benchmark.config import BenchmarkConfig
from recsim_env.benchmark.report import aggregate, bound_shares, markdown, paired_differences
from recsim_env.benchmark.results import BenchmarkResult


def result_of(returns: dict[str, list[float]]) -> BenchmarkResult:
    """Two episodes per seed of each policy in ``synthetic``, the seed's mean return as given."""
    rows = [{"simulator": "synthetic", "policy": policy, "seed": seed, "episode": episode,
             "return": mean + (1.0 if episode else -1.0)}
            for policy, means in returns.items() for seed, mean in enumerate(means) for episode in range(2)]
    episodes = pd.DataFrame(rows)
    seeds = episodes[["simulator", "policy", "seed"]].drop_duplicates().assign(coverage=0.5)
    n_seeds = len(next(iter(returns.values())))
    config = BenchmarkConfig(policies=tuple(returns), simulators=("synthetic",), seeds=n_seeds, offline=False)
    return BenchmarkResult(config, episodes, seeds, pd.DataFrame(), pd.DataFrame(), {}, [])


def test_shares_are_paired_per_seed_and_the_references_are_never_the_best_policy(tmp_path):
    result = result_of({"random": [15.0, 14.0], "slateq": [26.0, 20.0], "oracle": [13.0, 14.0],
                        "planner": [53.0, 54.0]})
    shares = bound_shares(result).set_index("policy")
    assert shares.loc["oracle", "mean"] == 0 and shares.loc["planner", "mean"] == 1
    # SlateQ: (26 - 13) / 40 and (20 - 14) / 40 per seed; random (15 - 13) / 40 and 0.
    assert shares.loc["slateq", "mean"] == pytest.approx((13 / 40 + 6 / 40) / 2)
    assert shares.loc["random", "mean"] == pytest.approx(1 / 40) and shares.loc["slateq", "n"] == 2
    assert shares.loc["slateq", "ci_low"] < shares.loc["slateq", "mean"] < shares.loc["slateq", "ci_high"]
    assert set(paired_differences(result)["reference"]) == {"slateq"}  # not the planner, though it is higher
    report = markdown(result, aggregate(result), {}, tmp_path)
    section = report.split("Share of the long-horizon reference's gain")[1]
    assert "| slateq | 0.237 [" in section and "| planner | 1 |" in section


def test_the_terminal_table_is_followed_by_the_shares(capsys):
    from recsim_env.benchmark.report import print_table

    result = result_of({"random": [15.0, 14.0], "slateq": [26.0, 20.0], "oracle": [13.0, 14.0],
                        "planner": [53.0, 54.0]})
    print_table(aggregate(result), result)
    line = [text for text in capsys.readouterr().out.splitlines() if text.startswith("share of the planner")]
    assert len(line) == 1 and line[0].endswith(": slateq 0.237 ±1.1, random 0.025 ±0.32")


def test_without_a_planner_cell_there_is_no_share_and_a_zero_gain_is_no_number(tmp_path):
    result = result_of({"random": [15.0, 14.0], "oracle": [13.0, 14.0]})
    assert bound_shares(result).empty
    assert "Share of the long-horizon" not in markdown(result, aggregate(result), {}, tmp_path)
    flat = bound_shares(result_of({"random": [15.0, 14.0], "oracle": [13.0, 14.0], "planner": [13.0, 16.0]}))
    random = flat.set_index("policy").loc["random"]
    assert np.isclose(random["mean"], 0.0) and random["n"] == 1  # seed 0 gained nothing: only seed 1's 0 / 2


def test_every_file_the_csv_writer_leaves_is_one_an_overwrite_removes(tmp_path):
    from recsim_env.benchmark.report import write_results_csv
    from recsim_env.benchmark.run import RUN_OUTPUTS

    result = result_of({"random": [15.0, 14.0], "oracle": [13.0, 14.0], "planner": [53.0, 54.0]})
    write_results_csv(result, tmp_path)
    written = {path.name for path in tmp_path.iterdir()}
    assert "bound_shares.csv" in written and written <= set(RUN_OUTPUTS)


def test_the_planner_is_never_the_myopic_reference_of_a_lifetime_gain():
    from recsim_env.benchmark.gains import MYOPIC_KINDS
    from recsim_env.benchmark.registry import policy_spec

    assert policy_spec("oracle").kind in MYOPIC_KINDS and policy_spec("planner").kind not in MYOPIC_KINDS


def test_a_ratio_without_an_interval_prints_alone():
    from recsim_env.benchmark.report import _ratio_cell

    assert _ratio_cell(1.25, float("nan"), float("nan")) == "1.250"  # one seed: no interval, not "[nan, nan]"
    assert _ratio_cell(1.25, 1.1, 1.4) == "1.250 [1.100, 1.400]"
    assert _ratio_cell(float("nan"), 0.0, 1.0) == "—"
