from __future__ import annotations

import pytest

from recsim_env.benchmark.config import BenchmarkConfig, Budgets, read_toml
from recsim_env.errors import ConfigError


@pytest.mark.parametrize("field, value, match", [
    ("policies", ["popularity", "nope"], r"unknown policy name\(s\) 'nope'; valid: random, popularity"),
    ("simulators", ["ml100k-train", "mars"], r"unknown simulator name\(s\) 'mars'; valid: .*synthetic"),
    ("metrics", ["return", "joy"], r"unknown metric name\(s\) 'joy'; valid: return, ctr"),
    ("policies", [], "at least one"),
    ("policies", ["popularity", "popularity"], "twice"),
    ("seeds", 0, "seeds must be a positive integer"),
    ("episodes", 2.5, "episodes must be a positive integer"),
    ("colour", "red", r"unknown config field\(s\) colour; valid: budgets"),
    ("budgets", {"epochs": 0}, "budgets.epochs must be a positive integer"),
    ("budgets", {"epoch": 3}, r"unknown budgets field\(s\) epoch; valid: agent_steps"),
    ("warm_start", "item-knn", r"warm_start must be one of \['mf-bpr', 'neumf', 'lightgcn', 'content'\] "
                               r"or '' \(cold agents\), got 'item-knn'"),
])
def test_bad_config_values_name_the_field_and_the_valid_choices(field, value, match):
    with pytest.raises(ConfigError, match=match):
        BenchmarkConfig.from_dict({field: value})


def test_slate_larger_than_candidates_is_refused():
    with pytest.raises(ConfigError, match="slate_size=20 exceeds n_candidates=10"):
        BenchmarkConfig(slate_size=20, n_candidates=10)


def test_toml_round_trip_keeps_every_field(tmp_path):
    config = BenchmarkConfig.from_dict({"policies": ["random", "slateq"], "seeds": 2, "out_dir": 'we"ird\\dir',
                                        "warm_start": "", "budgets": {"agent_steps": 123}})
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert BenchmarkConfig.from_dict(read_toml(path)) == config


def test_precedence_is_defaults_then_quick_then_file_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('seeds = 4\nepisodes = 50\npolicies = ["random"]\n[budgets]\nagent_steps = 999\n')
    config = BenchmarkConfig.build(path, quick=True, seeds=2, episodes=None, policies="random,popularity")
    assert config.quick and config.seeds == 2 and config.episodes == 50
    assert config.policies == ("random", "popularity")
    assert config.budgets == Budgets(**{**Budgets.quick().__dict__, "agent_steps": 999})
    assert BenchmarkConfig.build(quick=True).episodes < BenchmarkConfig().episodes
    quick = BenchmarkConfig.build(quick=True)
    assert quick.budgets == Budgets.quick() and quick.seeds == 3 and not quick.retrain_per_seed
    assert BenchmarkConfig.build(quick=True, seeds=5, retrain_per_seed=True).retrain_per_seed


def test_missing_and_malformed_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        BenchmarkConfig.build(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        BenchmarkConfig.build(bad)


def test_unreadable_config_files_are_one_line_config_errors(tmp_path):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'seeds = 3\nout_dir = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"config file .*latin1\.toml is not UTF-8 text \(byte 0xe9 at offset 24\)"):
        BenchmarkConfig.build(latin1)
    with pytest.raises(ConfigError, match=r"config file .* is a directory, not a TOML file"):
        BenchmarkConfig.build(tmp_path)


@pytest.mark.parametrize("toml, match", [
    ('quick = "no"', r"quick must be true or false, got 'no'"),
    ('offline = "false"', r"offline must be true or false, got 'false'"),
    ('retrain_per_seed = 1', r"retrain_per_seed must be true or false, got 1"),
    ("out_dir = 5", r"out_dir must be a string, got 5"),
    ("warm_start = 0", r"warm_start must be a string, got 0"),
    ('seeds = "3"', r"seeds must be a positive integer, got '3'"),
    ("seeds = true", r"seeds must be a positive integer, got True"),
    ('[budgets]\nepochs = "4"', r"budgets.epochs must be a positive integer, got '4'"),
])
def test_config_file_values_of_the_wrong_type_name_the_field_and_value(tmp_path, toml, match):
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError, match=match):
        BenchmarkConfig.build(path)


def test_slateq_has_its_own_step_budget_where_set():
    assert Budgets(agent_steps=500).steps_for("slateq") == 500  # 0: the agents' budget
    budgets = Budgets(agent_steps=500, slateq_steps=9_000)
    assert budgets.steps_for("slateq") == 9_000 and budgets.steps_for("reinforce") == 500
    assert budgets.steps_for("sb3-dqn") == 500
    quick = Budgets.quick()
    assert quick.steps_for("slateq") > quick.agent_steps
    with pytest.raises(ConfigError, match="slateq_steps must be a non-negative integer"):
        Budgets(slateq_steps=-1)
    with pytest.raises(ConfigError, match="agent_steps must be a positive integer"):
        Budgets(agent_steps=0)
    config = BenchmarkConfig.build(quick=True, budgets={"slateq_steps": 0})
    assert config.budgets.steps_for("slateq") == config.budgets.agent_steps
