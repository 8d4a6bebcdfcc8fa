"""The fidelity report: known-answer pieces, an end-to-end run on the tiny log, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
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


@pytest.fixture(scope="module")
def sessions_split_and_model(tiny_log):
    """The tiny log re-timed into sessions: items a minute apart, and after each a new session with
    probability 0.3, 1-20 days later, so that both the hazard and the return model have something to fit."""
    rng = np.random.default_rng(0)
    inter = tiny_log.interactions
    new_session = rng.random(len(inter)) < 0.3
    step = np.where(new_session, rng.uniform(1, 20, len(inter)) * 86400, 60.0)
    first = np.r_[True, inter["user"].to_numpy()[1:] != inter["user"].to_numpy()[:-1]]
    step[first] = 0.0
    users = inter["user"].to_numpy()
    times = 1_000_000 + pd.Series(step).groupby(users).cumsum().to_numpy()
    log = tiny_log.with_interactions(inter.assign(timestamp=times.astype(np.int64)), "tiny-sessions")
    early, later = temporal_split(log, 0.8)
    return early, later, fit_user_model(early, FitConfig.fast())


def test_report_shows_the_hazard_the_returns_and_where_each_parameter_comes_from(sessions_split_and_model,
                                                                                 tmp_path):
    early, later, model = sessions_split_and_model
    assert model.leave.meta["source"] == "fitted" and model.returns is not None
    report = fidelity_report(model, early, later, SMALL)
    m = report.metrics
    assert m["leave_log_loss_full"] > 0 and m["leave_log_loss_constant"] > 0
    for key in ("return_concordance", "return_within_7d_predicted", "return_within_30d_observed",
                "return_ks_simulated", "sim_gap_ks_vs_train_km"):
        assert 0.0 <= m[key] <= 1.0, key
    position = report.hazard["position"]
    assert list(position["position"]) == list(range(SMALL.max_position + 1))
    assert ((position["low"] <= position["logged"]) | position["logged"].isna()).all()
    assert position["sim_at_risk"].sum() > 0 and "rating" in report.hazard
    sources = {row["source"] for row in report.provenance}
    assert sources == {"fitted", "calibrated", "assumed"}
    named = {row["parameter"] for row in report.provenance}
    assert {"no-click leave probability", "leave hazard: rating", "return gap: log1p_sessions",
            "repeat_penalty ρ", "no_click_utility", "simulated session's start state"} <= named
    # The training log's interval beside the held-out one, at the held-out log's ratings.
    rating = report.hazard["rating"]
    assert (rating["train_at_risk"] > 0).all() and (rating["train_low"] <= rating["train_logged"]).all()
    assert 0.0 <= m["hazard_by_rating_within_train_share"] <= 1.0
    text = report.write(tmp_path / "out").read_text()
    assert "## Leave hazard" in text and "## Return model" in text and "## Where every dynamics parameter" in text
    assert "training log [95 % CI]" in text
    assert (tmp_path / "out" / "leave_hazard.png").read_bytes()[:4] == b"\x89PNG"
    assert pd.read_csv(tmp_path / "out" / "provenance.csv").shape[0] == len(report.provenance)


def test_without_a_return_model_the_report_says_why(split_and_model):
    early, later, model = split_and_model
    report = fidelity_report(model, early, later, SMALL)
    assert "return_concordance" not in report.metrics
    assert "Not fitted: tiny/early: the return model needs gaps that vary" in report.to_markdown()
    assert {"parameter": "return model", "value": "none", "source": "not fitted",
            "detail": model.meta["return_model_error"]} in report.provenance


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


@pytest.mark.parametrize(
    "field, value", [("k", 0), ("n_negatives", -1), ("headroom_episodes", -1), ("slate_size", 200)]
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        FidelityConfig(**{field: value})


def test_fit_and_fidelity_commands(split_and_model, tmp_path, monkeypatch):
    early, later, _ = split_and_model
    monkeypatch.setattr(datasets, "dataset_splits", lambda dataset, cache_dir=None: (early, later))
    monkeypatch.setattr(fit_config, "FitConfig", lambda **changes: FitConfig.fast(**changes))
    out = tmp_path / "model.npz"
    assert cli.main(["fit", "--dataset", "tiny", "--out", str(out), "--cache-dir", str(tmp_path)]) == 0
    assert FittedUserModel.load(out, expected_fingerprint=early.fingerprint()).n_items == early.n_items
    assert cli.main(["fidelity", "--dataset", "tiny", "--model", str(out), "--out", str(tmp_path / "rep"),
                     "--max-events", "50", "--negatives", "20", "--headroom-episodes", "0"]) == 0
    assert (tmp_path / "rep" / "report.md").exists()
    assert cli.main(["fit", "--out", str(tmp_path / "bad.txt")]) == 2  # a clear error, exit code 2


def test_applied_hazard_by_hand():
    """Two sessions: session 0 has items with key 1 at 0.1 and 0.3, session 1 one at 0.2 and a key-2 item
    at 0.5. Key 1: mean 0.6 / 3 = 0.2; residuals by session 0.4 - 0.2 * 2 = 0 and 0.2 - 0.2 = 0: no spread.
    Key 2 has a single session: its interval is a point. Key 3 has no item: NaN."""
    from recsim_env.evaluation.fidelity_longterm import applied_hazard

    keys = np.array([1, 1, 1, 2])
    probability = np.array([0.1, 0.3, 0.2, 0.5])
    session = np.array([0, 0, 1, 1])
    mean, low, high = applied_hazard(keys, probability, session, np.array([1, 2, 3]))
    assert np.allclose(mean[:2], [0.2, 0.5]) and np.allclose(low[:2], mean[:2]) and np.allclose(high[:2], mean[:2])
    assert np.isnan(mean[2])
    # Session sums that differ: 0.1 + 0.3 over two items in session 0, 0.6 over one in session 1: mean 1.0 / 3,
    # residuals 0.4 - 2 / 3 and 0.6 - 1 / 3, m = 2 sessions.
    mean, low, high = applied_hazard(keys[:3], np.array([0.1, 0.3, 0.6]), session[:3], np.array([1]))
    spread = ((0.4 - 2 / 3) ** 2 + (0.6 - 1 / 3) ** 2) / 9 * 2
    assert np.isclose(mean[0], 1 / 3) and np.isclose(high[0] - mean[0], 1.96 * np.sqrt(spread))


def test_the_simulated_hazard_is_the_one_the_simulator_applied(sessions_split_and_model):
    """The report's simulated column is the mean applied leave probability (a known hand-set hazard gives
    it exactly), the realised share sits beside it in ``sim_share``, and "in CI" judges the former."""
    from recsim_env.evaluation.fidelity_longterm import leave_fidelity
    from recsim_env.fit.calibration import simulate_sessions
    from recsim_env.fit.leave import LeaveHazard

    early, later, model = sessions_split_and_model
    leave = model.leave
    hazard = LeaveHazard.from_raw(-2.5, {"rating": 0.2}, leave.item_counts, leave.user_counts)
    hand = model.with_long_term(leave=hazard)
    rollout = simulate_sessions(hand, 200, np.random.default_rng(0), step_cap=40, record=True)
    _, tables = leave_fidelity(hand, early, later, rollout, 20)
    rating = tables["rating"]
    seen = rating["sim_at_risk"] > 0
    expected = 1 / (1 + np.exp(2.5 - 0.2 * rating["rating"]))
    assert np.allclose(rating["simulated"][seen], expected[seen], atol=1e-5)
    assert (rating["sim_low"][seen] <= rating["simulated"][seen] + 1e-12).all()
    assert ((rating["within"] == ((rating["simulated"] >= rating["low"]) & (rating["simulated"] <= rating["high"])))
            | ~seen).all()
    assert "sim_share" in rating and (rating["sim_share"][seen] >= 0).all()
