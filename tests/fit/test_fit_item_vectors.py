"""Precomputed item vectors as item content of the fitted user model: a known answer, validation, caching.

The known answer: a log whose choices and ratings depend only on a hidden vector per item (no genres,
no year; ``scripts/bench_fit_item_vectors.py``, which prints the figures below). Given those vectors,
the fit must predict the held-out tail (the last 20 % of each user's sequence, which neither the
relevance nor the rating model trains on) better than without them.
Measured (seeds 0, 1, 2, ``FitConfig.fast``): tail rating RMSE 0.735 / 0.725 / 0.735 without the
vectors, 0.583 / 0.589 / 0.592 with them; tail next-item log-likelihood over all 300 items (the
utilities before drift) -5.62 / -5.64 / -5.59 without, -5.37 / -5.45 / -5.42 with (uniform: -5.70).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recsim_env.cli.main import main as cli_main
from recsim_env.errors import DataError
from recsim_env.fit import datasets as fitting
from recsim_env.fit.config import FitConfig, config_from_meta
from recsim_env.fit.pipeline import fit_user_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `scripts`

from scripts.bench_fit_item_vectors import HOLDOUT, hidden_vector_log, tail_log_likelihood  # noqa: E402


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    log, table = hidden_vector_log()
    path = tmp_path_factory.mktemp("vectors") / "hidden.csv"
    table.to_csv(path, index=False)
    return log, table, path


def test_fit_with_the_hidden_vectors_predicts_held_out_ratings_and_choices_better(hidden):
    log, table, path = hidden
    without = fit_user_model(log, FitConfig.fast(holdout_fraction=HOLDOUT))
    with_vectors = fit_user_model(log, FitConfig.fast(holdout_fraction=HOLDOUT, item_vectors=str(path)))
    # scales.rating_std is the RMSE on the tail, which the rating model did not train on.
    assert with_vectors.scales.rating_std < 0.85 * without.scales.rating_std
    assert tail_log_likelihood(with_vectors, log) > tail_log_likelihood(without, log) + 0.1
    assert with_vectors.meta["item_vector_dim"] == table.shape[1] - 1
    assert "item_vector_dim" not in without.meta
    assert config_from_meta(with_vectors.meta).item_vectors == str(path)


def test_missing_item_non_finite_and_ragged_rows_are_refused_naming_the_file(hidden, tmp_path):
    log, table, _ = hidden
    short = tmp_path / "short.csv"
    table.iloc[1:].to_csv(short, index=False)
    with pytest.raises(DataError, match=r"short.csv: no vector for item\(s\) 'i0'"):
        fit_user_model(log, FitConfig.fast(item_vectors=str(short)))
    nan = tmp_path / "nan.csv"
    table.assign(v2=table["v2"].where(table.index != 3)).to_csv(nan, index=False)
    with pytest.raises(DataError, match="nan.csv: line 5: item 'i3' has a non-finite component"):
        fit_user_model(log, FitConfig.fast(item_vectors=str(nan)))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(table.to_csv(index=False) + "i999,1.0,2.0\n")
    with pytest.raises(DataError, match="ragged.csv"):
        fit_user_model(log, FitConfig.fast(item_vectors=str(ragged)))
    with pytest.raises(DataError, match="no such item-vectors file"):
        fit_user_model(log, FitConfig.fast(item_vectors=str(tmp_path / "absent.csv")))


def test_the_cache_key_follows_the_vectors_file_and_keeps_old_keys(hidden, tmp_path):
    _, table, _ = hidden
    path = tmp_path / "v.csv"
    table.to_csv(path, index=False)
    first = fitting._config_key(FitConfig(item_vectors=str(path)))
    table.assign(v0=table["v0"] + 1).to_csv(path, index=False)
    assert fitting._config_key(FitConfig(item_vectors=str(path))) != first
    assert fitting._config_key(FitConfig()) != first
    assert fitting._config_key(FitConfig()) == fitting._config_key(FitConfig(item_vectors=""))


def test_the_cache_key_follows_the_artifact_formats(monkeypatch):
    """Checkouts with another artifact format keep their own cached fit instead of refitting over this one."""
    before = fitting._config_key(FitConfig())
    monkeypatch.setattr(fitting, "RETURN_FORMAT", fitting.RETURN_FORMAT + 1)
    assert fitting._config_key(FitConfig()) != before


def test_recsim_fit_passes_item_vectors_to_the_fit(monkeypatch, hidden, tmp_path):
    log, _, path = hidden
    seen = {}

    def fake_fit(dataset, split, cache_dir, config):
        seen["config"] = config
        return fit_user_model(log, FitConfig.fast(item_vectors=config.item_vectors)), None

    monkeypatch.setattr(fitting, "fitted_user_model", fake_fit)
    assert cli_main(["fit", "--dataset", "x", "--item-vectors", str(path)]) == 0
    assert seen["config"].item_vectors == str(path)
