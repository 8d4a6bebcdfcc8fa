"""The return model: hand-computed records, Kaplan-Meier and concordance, censoring, a known-answer fit,
sampling against the survival function, validation, the artifact and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from longterm_truth import (
    TRUE_RETURN,
    TRUE_RETURN_INTERCEPT,
    TRUE_RETURN_SCALE,
    generate_log,
    true_models,
)
from scipy import special

from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
from recsim_env.data.sessions import DAY_SECONDS
from recsim_env.data.splits import temporal_split
from recsim_env.errors import ArtifactError, ConfigError, DataError
from recsim_env.fit.leave import LeaveHazard, fit_leave_hazard
from recsim_env.fit.returns import (
    ReturnConfig,
    ReturnModel,
    SessionRecords,
    choose_distribution,
    concordance_index,
    fit_aft,
    fit_return_model,
    genre_diversity,
    kaplan_meier,
    km_survival_at,
    session_records,
    validate_return_model,
)


def _hand_log(timestamp: str | None = "timestamp") -> InteractionLog:
    """User a: a session at 0/60/120 s rated 5, 4, 1, a second at 10000/10060 rated 3, 2; user b: 0/60 rated 5, 5."""
    inter = pd.DataFrame({"user_id": ["a", "a", "a", "a", "a", "b", "b"],
                          "item_id": ["i0", "i3", "i2", "i1", "i0", "i1", "i2"],
                          "timestamp": [0, 60, 120, 10000, 10060, 0, 60],
                          "rating": [5, 4, 1, 3, 2, 5, 5]})
    items = pd.DataFrame({"item_id": ["i0", "i1", "i2", "i3"],
                          "genres": ["Action", "Action", "Comedy", "Action|Comedy"]})
    mapping = ColumnMapping(timestamp=timestamp, rating="rating", genres="genres")
    return InteractionLog.from_frames(inter, items, None, mapping, name="hand")


def test_records_by_hand():
    records = session_records(_hand_log(), end_time=10060 + 3600)
    np.testing.assert_array_equal(records.user, [0, 0, 1])
    np.testing.assert_array_equal(records.returned, [True, False, False])
    np.testing.assert_allclose(records.gap_days, np.array([10000 - 120, 3600, 3600 + 10000]) / DAY_SECONDS)
    np.testing.assert_allclose(records.follow_up_days, np.array([13540, 3600, 13600]) / DAY_SECONDS)
    columns = records.columns
    np.testing.assert_allclose(columns["log1p_length"], np.log1p([3, 2, 2]))
    np.testing.assert_allclose(columns["mean_rating"], [10 / 3, 2.5, 5])
    np.testing.assert_allclose(columns["liked_share"], [2 / 3, 0, 1])
    np.testing.assert_allclose(columns["disliked_share"], [1 / 3, 0.5, 0])
    # Genre mass (Action, Comedy): a's first session (2, 2) -> 0.5; second (2, 0) -> 0; b's (1, 1) -> 0.5.
    np.testing.assert_allclose(columns["genre_diversity"], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(columns["log1p_sessions"], np.log1p([1, 2, 1]))
    np.testing.assert_allclose(columns["log1p_days_since_first"], np.log1p(np.array([120, 10060, 60]) / DAY_SECONDS))


def test_a_session_ending_within_the_gap_of_the_log_end_gives_no_record():
    # Ending at the last timestamp, a's second session may still be going on: no record for it.
    records = session_records(_hand_log())
    np.testing.assert_array_equal(records.user, [0, 1])
    np.testing.assert_array_equal(records.returned, [True, False])


def test_history_counts_toward_the_user_covariates_only():
    log = _hand_log()
    early, later = temporal_split(log, 0.5)
    records = session_records(later, history=early, end_time=10060 + 3600)
    assert (
        len(records) == len(set(records.end_time)) and records.end_time.min() >= later.interactions["timestamp"].min()
    )
    a_second = records.columns["log1p_sessions"][records.user == 0]
    np.testing.assert_allclose(a_second, np.log1p([2]))


def test_genre_diversity_by_hand():
    np.testing.assert_allclose(genre_diversity(np.array([[3.0, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 2]])),
                               [0.0, 0.5, 0.0, 1 - (0.25 ** 2 * 2 + 0.5 ** 2)])


def test_kaplan_meier_by_hand():
    # 5 at risk: a return at 1 (4/5), then at 2 one return of 4 at risk (3/4; the censored one at 2 still counts
    # as at risk), then at 3 one of 2 (1/2); the censored gap at 4 is not an event.
    times, survival = kaplan_meier(np.array([1.0, 2, 2, 3, 4]), np.array([1, 0, 1, 1, 0], bool))
    np.testing.assert_allclose(times, [1, 2, 3])
    np.testing.assert_allclose(survival, [0.8, 0.6, 0.3])
    assert km_survival_at(np.array([1.0, 2, 2, 3, 4]), np.array([1, 0, 1, 1, 0], bool), 2.5) == pytest.approx(0.6)
    assert km_survival_at(np.array([1.0]), np.array([True]), 0.5) == 1.0


def test_concordance_by_hand():
    days, returned = np.array([1.0, 2, 3]), np.array([True, True, False])
    assert concordance_index(days, returned, np.array([1.0, 2, 3])) == 1.0
    assert concordance_index(days, returned, np.array([3.0, 2, 1])) == 0.0
    assert concordance_index(days, returned, np.zeros(3)) == 0.5
    # The shorter gap is censored: its order against the longer one is unknown, so no pair is comparable.
    assert np.isnan(concordance_index(np.array([1.0, 2]), np.array([False, True]), np.array([2.0, 1])))


def _records(rng: np.random.Generator, n_records: int, follow_up: float) -> tuple[SessionRecords, np.ndarray]:
    """Records with one covariate and Weibull gaps, log(excess) = 1 + 0.5 x + 0.8 ε, censored at follow-ups."""
    covariate = rng.normal(size=n_records)
    truth = ReturnModel.from_raw(1.0, {"log1p_length": 0.5}, 0.8, "weibull")
    gaps = truth.sample_gaps(truth.covariates(np.expm1(covariate), None, None, None, np.zeros(n_records),
                                              np.ones(n_records), np.zeros(n_records)), rng)
    follow = rng.uniform(0, follow_up, n_records)
    returned = gaps <= follow
    records = SessionRecords(np.zeros(n_records, np.int64), np.zeros(n_records, np.int64), {"log1p_length": covariate},
                             np.minimum(gaps, follow), returned, follow)
    return records, gaps


def test_censored_fit_recovers_truth_and_ignoring_censoring_does_not(rng):
    records, _ = _records(rng, 4000, 8.0)
    assert 0.3 < records.returned.mean() < 0.7  # heavy censoring
    fitted = fit_aft(records, ("log1p_length",), "weibull", ReturnConfig())
    intercept, coefficients, errors = fitted.raw_coefficients()
    assert abs(intercept - 1.0) < 4 * errors["intercept"] < 0.3
    assert abs(coefficients["log1p_length"] - 0.5) < 4 * errors["log1p_length"] < 0.2
    assert abs(fitted.log_scale - np.log(0.8)) < 4 * errors["log_scale"] < 0.2
    # Counting each censored gap as a return at its censoring time makes gaps look far shorter.
    naive = SessionRecords(records.user, records.end_time, records.columns, records.gap_days,
                           np.ones(len(records), bool), records.follow_up_days)
    naive_intercept, _, _ = fit_aft(naive, ("log1p_length",), "weibull", ReturnConfig()).raw_coefficients()
    assert naive_intercept < intercept - 10 * errors["intercept"]


@pytest.fixture(scope="module")
def known_log():
    rng = np.random.default_rng(11)
    hazard, truth = true_models(600, 300, rng)
    log, end = generate_log(hazard, truth, 45, rng)
    return truth, log, end


def test_known_coefficients_are_recovered(known_log):
    """Tolerance: every raw coefficient, the intercept and log scale within 4 standard errors of the truth,
    those errors below 0.1 (0.15 for the intercept)."""
    _, log, end = known_log
    fitted = fit_return_model(log, ReturnConfig(distribution="weibull"), end_time=end)
    intercept, coefficients, errors = fitted.raw_coefficients()
    assert errors["intercept"] < 0.15
    assert abs(intercept - TRUE_RETURN_INTERCEPT) < 4 * errors["intercept"]
    assert abs(fitted.log_scale - np.log(TRUE_RETURN_SCALE)) < 4 * errors["log_scale"] < 0.1
    for name, value in coefficients.items():
        assert errors[name] < 0.1, name
        assert abs(value - TRUE_RETURN[name]) < 4 * errors[name], name
    assert fitted.meta["returns"] < fitted.meta["records"]  # some records were censored


def test_auto_distribution_picks_the_true_family_by_held_out_likelihood(known_log):
    _, log, end = known_log
    fitted = fit_return_model(log, end_time=end)
    assert fitted.distribution == "weibull"
    likelihood = fitted.meta["heldout_log_likelihood_by_distribution"]
    assert set(likelihood) == {"weibull", "lognormal", "loglogistic"}
    assert likelihood["weibull"] > max(likelihood["lognormal"], likelihood["loglogistic"])
    assert "held-out" in fitted.meta["distribution_choice"]


def test_log_logistic_truth_is_recovered_and_chosen(rng):
    """A log-logistic truth (hazard rising, then falling): auto picks it on held-out users, and the censored
    fit recovers intercept and scale (covariate-free, censored at a fixed follow-up)."""
    n = 4000
    gap = np.exp(1.0 + 0.6 * special.logit(rng.random(n)))
    follow = rng.uniform(2.0, 40.0, n)
    records = SessionRecords(np.arange(n), np.zeros(n, np.int64), {}, np.minimum(gap, follow) + 1800 / DAY_SECONDS,
                             gap < follow, follow)
    config = ReturnConfig()
    scores = choose_distribution(records, (), config)
    assert max(scores, key=scores.get) == "loglogistic"
    model = fit_aft(records, (), "loglogistic", config)
    _, _, errors = model.raw_coefficients()
    assert abs(model.intercept - 1.0) < 4 * errors["intercept"]
    assert abs(model.log_scale - np.log(0.6)) < 4 * errors["log_scale"]


@pytest.mark.parametrize("distribution", ["weibull", "lognormal", "loglogistic"])
def test_sampled_gaps_follow_the_survival_function(distribution, rng):
    model = ReturnModel.from_raw(0.3, {"log1p_length": -0.4, "mean_rating": 0.2}, 1.3, distribution)
    n_draws = 20000
    design = model.covariates(np.full(n_draws, 5.0), np.full(n_draws, 3.0), np.full(n_draws, 0.5),
                              np.zeros(n_draws), np.full(n_draws, 0.3), np.full(n_draws, 2.0), np.full(n_draws, 10.0))
    gaps = model.sample_gaps(design, rng)
    assert gaps.min() >= model.gap_seconds / DAY_SECONDS
    grid = np.quantile(gaps, np.linspace(0.05, 0.95, 19))
    empirical = (gaps[:, None] > grid[None, :]).mean(axis=0)
    np.testing.assert_allclose(empirical, model.survival(grid, design[:19]), atol=0.015)
    assert model.survival(model.gap_seconds / DAY_SECONDS, design[:1])[0] == 1.0


def test_survival_on_a_grid_per_session():
    model = ReturnModel.from_raw(0.0, {"log1p_length": 1.0}, 1.0, "lognormal")
    design = model.covariates(np.array([0.0, 10.0]), None, None, None, np.zeros(2), np.ones(2), np.zeros(2))
    curves = model.survival(np.tile([0.5, 1.0, 5.0], (2, 1)), design)
    assert curves.shape == (2, 3)
    assert np.all(np.diff(curves, axis=1) < 0) and np.all(curves[1] > curves[0])  # longer session: later return


def test_validation_on_generated_held_out_data(known_log, rng):
    _, log, _ = known_log
    early, later = temporal_split(log, 0.8)
    model = fit_return_model(early)
    train_records = session_records(early)
    null = fit_aft(train_records, (), model.distribution, ReturnConfig())
    held_out = session_records(later, history=early)
    result = validate_return_model(model, null, held_out, rng)
    assert result.null_concordance == 0.5 and result.concordance > 0.6
    for calibration in result.calibration:
        assert abs(calibration.predicted - calibration.observed) < 0.05
    assert result.ks_marginal < 0.1 and result.records == len(held_out)


def test_save_load_round_trip(tmp_path, known_log):
    _, log, end = known_log
    model = fit_return_model(log, end_time=end)
    loaded = ReturnModel.load(model.save(tmp_path / "return.npz"))
    records = session_records(log, end_time=end)
    np.testing.assert_array_equal(
        loaded.survival(7.0, loaded.design(records)), model.survival(7.0, model.design(records))
    )
    draws = [m.sample_gaps(m.design(records), np.random.default_rng(3)) for m in (model, loaded)]
    np.testing.assert_array_equal(*draws)
    assert loaded.meta == model.meta


def test_loading_another_artifact_is_refused(tmp_path):
    path = LeaveHazard.from_raw(-2.0, {"overlap": 0.5}, np.ones(3), np.ones(2)).save(tmp_path / "leave.npz")
    with pytest.raises(ArtifactError, match="return_model"):
        ReturnModel.load(path)


def test_a_log_without_timestamps_is_a_data_error_naming_the_stage():
    log = _hand_log(timestamp=None)
    with pytest.raises(DataError, match="hand: the return model needs timestamps"):
        fit_return_model(log)
    # The hazard alone still fits: each user's history is one session, ended at the user's last row.
    assert fit_leave_hazard(log, names=()).meta["events"] == 2


def test_a_single_session_per_user_is_a_data_error_naming_the_stage():
    inter = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["i0", "i1", "i0", "i1"],
                          "timestamp": [0, 60, 500, 560]})
    log = InteractionLog.from_frames(inter, pd.DataFrame({"item_id": ["i0", "i1"]}), None, ColumnMapping(),
                                     name="once")
    with pytest.raises(DataError, match="once: the return model needs users with two or more sessions"):
        fit_return_model(log, end_time=100_000)
    assert fit_leave_hazard(log, names=(), end_time=100_000).meta["events"] == 2


@pytest.mark.parametrize("changes", [{"distribution": "cox"}, {"gap_seconds": -1}, {"max_iterations": 0},
                                     {"l2": float("inf")}])
def test_bad_config_is_refused(changes):
    with pytest.raises(ConfigError, match="ReturnConfig"):
        ReturnConfig(**changes)


def test_from_raw_refuses_unknown_covariates():
    with pytest.raises(ConfigError, match="unknown covariate"):
        ReturnModel.from_raw(0.0, {"weekday": 1.0}, 1.0)


def test_returns_that_all_come_after_the_same_gap_are_a_data_error():
    """Every session one hour after the last (a constant gap) leaves no spread to fit: the likelihood is
    unbounded as the scale goes to 0, and L-BFGS would return NaN parameters."""
    inter = pd.DataFrame({"user_id": ["a"] * 4 + ["b"] * 4, "item_id": ["i0", "i1"] * 4,
                          "timestamp": [0, 3600, 7200, 10800, 5, 3605, 7205, 10805]})
    log = InteractionLog.from_frames(inter, pd.DataFrame({"item_id": ["i0", "i1"]}), None, ColumnMapping(),
                                     name="clockwork")
    with pytest.raises(DataError, match="clockwork: the return model needs gaps that vary"):
        fit_return_model(log, end_time=20_000)


def test_a_fitted_model_clamps_covariates_to_their_fitted_range(known_log):
    """Past the logged range the design is the range's edge: a user with 10x more sessions than any logged
    one gets the location of the most active logged user, not an extrapolated one; inside it nothing moves."""
    _, log, end = known_log
    model = fit_return_model(log, ReturnConfig(distribution="weibull"), end_time=end)
    records = session_records(log, end_time=end)
    sessions = np.exp(records.columns["log1p_sessions"]) - 1.0
    top = int(np.argmax(sessions))
    names = list(model.covariate_names)

    def design_of(row: int, sessions_so_far: float) -> np.ndarray:
        args = {k: np.array([records.columns[k][row]]) for k in records.columns}
        return model.covariates(np.expm1(args["log1p_length"]), args.get("mean_rating"), args.get("liked_share"),
                                args.get("disliked_share"), args["genre_diversity"], np.array([sessions_so_far]),
                                np.expm1(args["log1p_days_since_first"]))

    at_edge = design_of(top, sessions[top])
    far_past = design_of(top, 10 * sessions[top])
    np.testing.assert_allclose(far_past, at_edge)
    np.testing.assert_allclose(model.design(records), (np.column_stack([records.columns[k] for k in names])
                                                       - model.covariate_mean) / model.covariate_scale)
    np.testing.assert_array_equal(model.covariate_low, np.column_stack([records.columns[k] for k in names]).min(0))


def test_a_hand_set_model_does_not_clamp():
    model = ReturnModel.from_raw(0.5, {"log1p_sessions": -1.0}, 1.0)
    design = model.covariates(np.array([3.0]), None, None, None, np.array([0.5]), np.array([1e6]), np.array([1.0]))
    assert design[0, list(model.covariate_names).index("log1p_sessions")] == pytest.approx(np.log1p(1e6))
