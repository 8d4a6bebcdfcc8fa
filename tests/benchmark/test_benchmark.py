from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tomllib
from fake_vector_env import ExplodingPolicy

from recsim_env.benchmark.report import write_report
from recsim_env.benchmark.run import BenchmarkConfig, load_results, run_benchmark
from recsim_env.cli.main import main
from recsim_env.errors import ConfigError


def _config(tmp_path, **kw):
    values = dict(policies=("fav", "first"), simulators=("fake-a", "fake-b"), seeds=2, episodes=8,
                  out_dir=str(tmp_path / "run"))
    values.update(kw)
    return BenchmarkConfig.from_dict(values)


def test_a_run_writes_a_parseable_report_with_common_random_numbers(tmp_path, fake_registry):
    config = _config(tmp_path)
    report = run_benchmark(config, progress=False)
    root = config.out_path
    assert report == root / "report.md" and "## fake-a" in report.read_text()
    results = pd.read_csv(root / "results.csv")
    returns = results[results["metric"] == "return"].set_index(["simulator", "policy"])["mean"]
    assert len(returns) == 4 and (returns.xs("fav", level="policy") > returns.xs("first", level="policy")).all()
    assert set(results["n"][results["metric"] == "return"]) == {2}  # intervals over the two seeds
    episodes = pd.read_csv(root / "episodes.csv")
    for _, group in episodes.groupby(["simulator", "seed"]):
        users = {p: g["user_index"].to_numpy() for p, g in group.groupby("policy")}
        np.testing.assert_array_equal(users["fav"], users["first"])  # same users for every policy
    users_a = episodes[(episodes["simulator"] == "fake-a") & (episodes["seed"] == 0)]["user_index"]
    users_b = episodes[(episodes["simulator"] == "fake-b") & (episodes["seed"] == 0)]["user_index"]
    assert not np.array_equal(users_a.to_numpy(), users_b.to_numpy())
    paired = pd.read_csv(root / "paired_differences.csv")
    assert set(paired["reference"]) == {"fav"} and set(paired["policy"]) == {"first"}
    per_seed = pd.read_csv(root / "per_seed.csv").set_index(["simulator", "policy", "seed"])["return"]
    expected = (per_seed.xs("first", level="policy") - per_seed.xs("fav", level="policy")).groupby("simulator").mean()
    np.testing.assert_allclose(paired.set_index("simulator")["mean"].sort_index(), expected.sort_index())
    assert "Paired differences in return against the best policy, **fav**" in report.read_text()
    offline = pd.read_csv(root / "offline.csv")
    assert set(offline["policy"]) == {"fav"} and {"HR@10", "NDCG@10"} <= set(offline.columns)
    for png in ["return_fake-a", "return_fake-b", "sessions_fake-a", "learning_curves"]:
        assert (root / "plots" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((root / "tb" / "benchmark").glob("events.out.tfevents.*"))
    with open(root / "config.toml", "rb") as fh:
        assert BenchmarkConfig.from_dict(tomllib.load(fh)) == config
    with open(root / "versions.toml", "rb") as fh:
        assert "numpy" in tomllib.load(fh)


def test_interrupted_run_keeps_finished_cells_and_resumes_without_redoing_them(tmp_path, fake_registry, capsys):
    config = _config(tmp_path, policies=("first", "boom"))
    ExplodingPolicy.budget["calls"] = 7  # one cell takes at most 5 steps: boom's second cell is cut short
    argv = ["benchmark", "--policies", "first,boom", "--simulators", "fake-a,fake-b", "--seeds", "2",
            "--episodes", "8", "--out", config.out_dir]
    assert main(argv) == 130  # Ctrl-C: the conventional exit status, and a clear message
    assert "interrupted; finished results are kept" in capsys.readouterr().err
    cells = config.out_path / "cells"
    done = sorted(p.relative_to(cells).as_posix() for p in cells.rglob("*.json"))
    assert done == ["fake-a/boom/seed-0.json", "fake-a/first/seed-0.json", "fake-b/first/seed-0.json"]
    assert not list(config.out_path.rglob("*.tmp"))
    partial = pd.read_csv(config.out_path / "results.csv")
    assert set(partial["policy"]) == {"first", "boom"} and len(load_results(config).missing) == 5
    report = write_report(load_results(config), config.out_path, console_table=False).read_text()
    assert "## Unfinished cells" in report and "- boom on fake-b, seed 0" in report
    before = {p: p.read_bytes() for p in cells.rglob("*.*")}
    fake_registry.clear()
    ExplodingPolicy.budget["calls"] = 10**9
    run_benchmark(config, progress=False)
    assert all(p.read_bytes() == data for p, data in before.items())  # finished cells untouched
    assert ("FirstSlotsPolicy", 0) not in fake_registry  # and their policy not retrained
    assert load_results(config).missing == []
    assert len(list(cells.rglob("*.json"))) == 8


def test_a_rerun_with_other_result_settings_is_refused(tmp_path, fake_registry):
    run_benchmark(_config(tmp_path, seeds=1), progress=False)
    with pytest.raises(ConfigError, match="episodes"):
        run_benchmark(_config(tmp_path, seeds=1, episodes=9), progress=False)
    run_benchmark(_config(tmp_path, seeds=2), progress=False)  # more seeds extend the same run


def test_unwritable_output_directory_fails_before_any_work(tmp_path, fake_registry):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="not writable"):
        run_benchmark(_config(tmp_path, out_dir=str(blocker / "run")), progress=False)
    assert fake_registry == []


def test_cli_reports_bad_names_and_unwritable_dirs_with_exit_code_2(tmp_path, fake_registry, capsys):
    assert main(["benchmark", "--policies", "fav,nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown policy name(s) 'nope'" in err and "popularity" in err
    (tmp_path / "f").write_text("")
    assert main(["benchmark", "--policies", "fav", "--simulators", "fake-a", "--out", str(tmp_path / "f" / "r")]) == 2
    assert "not writable" in capsys.readouterr().err
    assert main(["benchmark", "--list"]) == 0 and "slateq" in capsys.readouterr().out


def test_cli_runs_a_config_file_with_overrides(tmp_path, fake_registry, capsys):
    cfg = tmp_path / "bench.toml"
    cfg.write_text('policies = ["fav"]\nsimulators = ["fake-a"]\nseeds = 3\nepisodes = 4\n[budgets]\nepochs = 2\n')
    out = tmp_path / "cli-run"
    assert main(["benchmark", "--config", str(cfg), "--seeds", "1", "--no-retrain-per-seed", "--warm-start", "none",
                 "--out", str(out)]) == 0
    assert "Report:" in capsys.readouterr().out
    with open(out / "config.toml", "rb") as fh:
        written = tomllib.load(fh)
    assert written["seeds"] == 1 and written["episodes"] == 4 and written["budgets"]["epochs"] == 2
    assert written["retrain_per_seed"] is False and written["warm_start"] == ""
    assert "trained from scratch (no warm start)" in (out / "report.md").read_text()
    assert json.loads((out / "run.json").read_text())["episodes"] == 4
    fake_registry.clear()
    assert main(["evaluate", "--policy", "fav", "--env", "fake-b", "--seeds", "2", "--episodes", "4",
                 "--out", str(tmp_path / "ev")]) == 0
    assert "fav on fake-b" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "ev" / "episodes_fav_fake-b.csv")) == 8
    assert fake_registry == [("OraclePolicy", 0), ("OraclePolicy", 1)]  # trained per seed
    fake_registry.clear()
    assert main(["evaluate", "--policy", "fav", "--env", "fake-b", "--seeds", "2", "--quick",
                 "--out", str(tmp_path / "ev")]) == 0
    assert fake_registry == [("OraclePolicy", 0)]  # quick: trained once
    assert main(["evaluate", "--policy", "fav", "--env", "mars", "--out", str(tmp_path / "ev")]) == 2
    assert "unknown simulator name(s) 'mars'" in capsys.readouterr().err


def test_without_retraining_each_policy_is_trained_once_and_evaluated_on_every_seed(tmp_path, fake_registry):
    config = _config(tmp_path, seeds=3, retrain_per_seed=False)
    run_benchmark(config, progress=False)
    assert sorted(fake_registry) == [("FirstSlotsPolicy", 0), ("OraclePolicy", 0)]
    per_seed = pd.read_csv(config.out_path / "per_seed.csv")
    assert len(per_seed) == 2 * 2 * 3 and "evaluation noise" in (config.out_path / "report.md").read_text()


def _snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_narrower_rerun_is_refused_and_leaves_the_finished_run_as_it_was(tmp_path, fake_registry, capsys):
    config = _config(tmp_path)
    run_benchmark(config, progress=False)
    before = _snapshot(config.out_path)
    fake_registry.clear()
    argv = ["benchmark", "--policies", "first", "--simulators", "fake-a", "--seeds", "2", "--episodes", "8",
            "--out", config.out_dir]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"recsim benchmark: error: {config.out_path} holds a run of another config (policies = "
                          f"['fav', 'first'] there, ['first'] now; simulators = ['fake-a', 'fake-b'] there, "
                          f"['fake-a'] now)") and "--overwrite" in err and "\n" not in err
    assert _snapshot(config.out_path) == before  # config.toml, report.md, results.csv... untouched
    assert fake_registry == []  # refused before any training


def test_an_identical_rerun_resumes_and_overwrite_starts_over(tmp_path, fake_registry, capsys):
    config = _config(tmp_path)
    run_benchmark(config, progress=False)
    cells = _snapshot(config.out_path / "cells")
    fake_registry.clear()
    run_benchmark(_config(tmp_path), progress=False)
    assert fake_registry == [] and _snapshot(config.out_path / "cells") == cells  # nothing retrained or redone
    (config.out_path / "notes.txt").write_text("mine")
    argv = ["benchmark", "--policies", "first", "--simulators", "fake-a", "--seeds", "1", "--episodes", "8",
            "--out", config.out_dir, "--overwrite"]
    assert main(argv) == 0
    with open(config.out_path / "config.toml", "rb") as fh:
        written = tomllib.load(fh)
    assert written["policies"] == ["first"] and written["simulators"] == ["fake-a"] and written["seeds"] == 1
    done = sorted(
        p.relative_to(config.out_path / "cells").as_posix() for p in (config.out_path / "cells").rglob("*.json")
    )
    assert done == ["fake-a/first/seed-0.json"]  # the old run's cells are gone, not mixed in
    assert set(pd.read_csv(config.out_path / "results.csv")["policy"]) == {"first"}
    assert (config.out_path / "notes.txt").read_text() == "mine"  # only what a run writes is removed


def test_a_rerun_that_only_adds_policies_simulators_or_seeds_extends_the_run(tmp_path, fake_registry):
    run_benchmark(_config(tmp_path, policies=("fav",), simulators=("fake-a",), seeds=1), progress=False)
    run_benchmark(_config(tmp_path, seeds=2), progress=False)
    assert load_results(_config(tmp_path, seeds=2)).missing == []
    with pytest.raises(ConfigError, match=r"seeds = 2 there, 1 now"):
        run_benchmark(_config(tmp_path, seeds=1), progress=False)
