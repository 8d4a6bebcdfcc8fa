"""The fidelity report: known-answer pieces, an end-to-end run on the tiny log, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsim_env.cli import main as cli
from recsim_env.data.splits import temporal_split
from recsim_env.errors import ConfigError, DataError
from recsim_env.evaluation.fidelity import (
    FidelityConfig,
    fidelity_report,
    genre_repetition,
    next_item_metrics,
)
from recsim_env.fit import config as fit_config
from recsim_env.fit import datasets
from recsim_env.fit.config import FitConfig
from recsim_env.fit.pipeline import fit_user_model
from recsim_env.users.fitted import FittedUserModel


@pytest.fixture(scope="module")
def split_and_model(tiny_log):
    early, later = temporal_split(tiny_log, 0.8)
    return early, later, fit_user_model(early, FitConfig.fast())


SMALL = FidelityConfig(max_events=200, n_negatives=20, n_sim_users=100, step_cap=40, headroom_episodes=20)


def test_next_item_metrics_known_answers():
    best = np.array([[5.0, 1.0, 2.0, 3.0], [9.0, 0.0, 0.0, 0.0]])
    assert next_item_metrics(best, k=1) == {"hr@1": 1.0, "ndcg@1": 1.0, "auc": 1.0}
    worst = np.array([[0.0, 1.0, 2.0, 3.0]])
    m = next_item_metrics(worst, k=2)
    assert m["hr@2"] == 0.0 and m["auc"] == 0.0


def test_genre_repetition_counts_consecutive_shared_genres():
    genres = np.array([[1, 0], [1, 1], [0, 1], [0, 1]], dtype=np.float32)
    assert genre_repetition([np.array([0, 1, 2, 0])], genres) == pytest.approx(2 / 3)
    assert np.isnan(genre_repetition([np.array([3])], genres))


def test_report_end_to_end(split_and_model, tmp_path):
    early, later, model = split_and_model
    report = fidelity_report(model, early, later, SMALL)
    m = report.metrics
    for key in ("hr@10", "ndcg@10", "auc", "popularity_hr@10", "ece", "session_ks", "sim_genre_repetition"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["events"] == min(200, later.n_interactions)
    # Users prefer one genre in the tiny log: the simulator ranks held-out items well above chance.
    assert m["auc"] > 0.6
    assert m["rating_rmse"] < m["global_mean_rmse"]
    assert "headroom" in m and m["greedy_return"] > 0
    path = report.write(tmp_path / "out")
    text = path.read_text()
    assert "HR@10" in text and "Session length KS" in text
    for png in ("reliability.png", "session_lengths.png", "genre_repetition.png"):
        assert (tmp_path / "out" / png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["hr@10"] == m["hr@10"]


def test_report_refuses_a_log_of_other_data(split_and_model, tiny_log):
    from tests.conftest import make_tiny_log

    early, _, model = split_and_model
    other = make_tiny_log(n_users=10, n_items=80)
    with pytest.raises(DataError, match="split of the log"):
        fidelity_report(model, early, other, SMALL)


@pytest.mark.parametrize("field, value", [("k", 0), ("n_negatives", -1), ("headroom_episodes", -1), ("slate_size", 200)])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        FidelityConfig(**{field: value})


def test_fit_and_fidelity_commands(split_and_model, tmp_path, monkeypatch):
    early, later, _ = split_and_model
    monkeypatch.setattr(datasets, "dataset_splits", lambda dataset, cache_dir=None: (early, later))
    monkeypatch.setattr(fit_config, "FitConfig", lambda seed=0: FitConfig.fast(seed=seed))
    out = tmp_path / "model.npz"
    assert cli.main(["fit", "--dataset", "tiny", "--out", str(out), "--cache-dir", str(tmp_path)]) == 0
    assert FittedUserModel.load(out, expected_fingerprint=early.fingerprint()).n_items == early.n_items
    assert cli.main(["fidelity", "--dataset", "tiny", "--model", str(out), "--out", str(tmp_path / "rep"),
                     "--max-events", "50", "--negatives", "20", "--headroom-episodes", "0"]) == 0
    assert (tmp_path / "rep" / "report.md").exists()
    assert cli.main(["fit", "--out", str(tmp_path / "bad.txt")]) == 2  # a clear error, exit code 2
