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
    ("warm_start", "item-knn", r"warm_start must be one of \['mf-bpr', 'neumf', 'content'\] or '' \(cold agents\), "
                               "got 'item-knn'"),
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
