"""The leave hazard: hand-computed inputs and censoring, a known-answer fit, validation, artifact, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from longterm_truth import TRUE_FIRST_SESSION, TRUE_LEAVE, TRUE_LEAVE_INTERCEPT, generate_log, true_models

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
from recsim_env.data.splits import temporal_split
from recsim_env.errors import ArtifactError, ConfigError, DataError
from recsim_env.fit.leave import (
    LeaveConfig,
    LeaveHazard,
    _logistic_newton,
    column_moments,
    default_feature_names,
    feature_names,
    first_session_feature_names,
    fit_hazard,
    fit_leave_hazard,
    hazard_table,
    leave_inputs,
    raw_design,
    session_overlap,
    standardise,
    unit_genres,
    validate_leave_hazard,
    wilson_interval,
)
from recsim_env.fit.returns import ReturnModel


def _hand_log(with_rating: bool = True) -> InteractionLog:
    """User a: session [i0 Action, i3 Action|Comedy, i2 Comedy] at 0/60/120 s, then [i1, i0] at 10000/10060;
    user b: [i1, i2] at 0/60. The log ends at 10060: a's last item is 0 s before it (censored)."""
    inter = pd.DataFrame({"user_id": ["a", "a", "a", "a", "a", "b", "b"],
                          "item_id": ["i0", "i3", "i2", "i1", "i0", "i1", "i2"],
                          "timestamp": [0, 60, 120, 10000, 10060, 0, 60],
                          "rating": [5, 4, 1, 3, 2, 5, 5]})
    items = pd.DataFrame({"item_id": ["i0", "i1", "i2", "i3"],
                          "genres": ["Action", "Action", "Comedy", "Action|Comedy"]})
    mapping = ColumnMapping(rating="rating" if with_rating else None, genres="genres")
    return InteractionLog.from_frames(inter, items, None, mapping, name="hand")


def test_inputs_by_hand():
    inputs = leave_inputs(_hand_log())
    np.testing.assert_array_equal(inputs.position, [0, 1, 2, 0, 1, 0, 1])
    # a's second session ends 0 s before the log does: unknown whether it ended, so not an observed item.
    np.testing.assert_array_equal(inputs.observed, [1, 1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(inputs.ended, [0, 0, 1, 0, 0, 0, 1])
    # Position 1: cos(Action|Comedy, Action) = 1/sqrt 2. Position 2: profile 0.7*(1, 0) + (1, 1)/sqrt 2,
    # cosine with Comedy (0, 1) = 0.7071 / |(1.4071, 0.7071)|.
    profile = np.array([0.7 + 1 / math.sqrt(2), 1 / math.sqrt(2)])
    np.testing.assert_allclose(inputs.overlap, [0, 1 / math.sqrt(2), profile[1] / np.linalg.norm(profile), 0, 1, 0, 0],
                               atol=1e-12)
    # Own-log reference: popularity is the item's other rows; activity the user's rows before the session
    # (never the session's own rows, nor later ones: they would tell the hazard how long it runs).
    np.testing.assert_array_equal(inputs.popularity, [1, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(inputs.activity, [0, 0, 0, 3, 3, 0, 0])


def test_the_fit_keeps_each_users_session_start_activity():
    """Known answer: a's sessions start after 0 and 3 of its rows (the censored second one too: its start
    is known) at day 0 and 10000 s, b's one after 0 at day 0; saved and read back with the hazard."""
    hazard = fit_leave_hazard(_hand_log())
    np.testing.assert_array_equal(hazard.session_starts, [0, 3, 0])
    np.testing.assert_array_equal(hazard.session_start_offsets, [0, 2, 3])
    np.testing.assert_allclose(hazard.session_start_days, [0, 10000 / 86400, 0], rtol=1e-15)


def test_reference_counts_are_used_as_given():
    inputs = leave_inputs(_hand_log(), item_counts=np.array([10, 20, 30, 40]), user_counts=np.array([7, 8]))
    np.testing.assert_array_equal(inputs.popularity, [10, 40, 30, 20, 10, 20, 30])
    # The counts before the log, plus the user's rows of the log before the session.
    np.testing.assert_array_equal(inputs.activity, [7, 7, 7, 10, 10, 8, 8])


def test_activity_knows_nothing_of_the_session_or_what_comes_after_it():
    """Activity counts the user's rows before the session: a longer session, or more sessions after it,
    leaves it unchanged (counting the rows outside the session, as before, told the hazard how long the
    session runs: b's first session read 1 here, 0 in the hand log)."""
    inter = pd.DataFrame({"user_id": ["a"] * 6 + ["b"] * 4, "item_id": ["i0", "i3", "i2", "i3", "i1", "i0",
                                                                      "i1", "i2", "i0", "i3"],
                          "timestamp": [0, 60, 120, 180, 10000, 10060, 0, 60, 120, 50000],
                          "rating": [5, 4, 1, 4, 3, 2, 5, 5, 3, 3]})
    items = pd.DataFrame({"item_id": ["i0", "i1", "i2", "i3"],
                          "genres": ["Action", "Action", "Comedy", "Action|Comedy"]})
    longer = InteractionLog.from_frames(inter, items, None, ColumnMapping(rating="rating", genres="genres"))
    # a's first session has a 4th item, b's a 3rd and a second session after it.
    np.testing.assert_array_equal(leave_inputs(longer).activity, [0, 0, 0, 0, 4, 4, 0, 0, 0, 3])
    np.testing.assert_array_equal(leave_inputs(_hand_log()).activity[[0, 1, 2, 5, 6]], 0)


def test_a_censored_item_is_not_an_event():
    # Ending the log an hour later makes a's last session end observed: one more event, none censored.
    hazard = fit_leave_hazard(_hand_log(), names=())
    later = fit_leave_hazard(_hand_log(), names=(), end_time=10060 + 3600)
    assert (hazard.meta["events"], hazard.meta["censored"], hazard.meta["rows"]) == (2, 1, 6)
    assert (later.meta["events"], later.meta["censored"], later.meta["rows"]) == (3, 0, 7)
    # The constant hazard is the share of observed items that end a session, its intercept the log-odds.
    assert hazard.probability(np.zeros((1, 0)))[0] == pytest.approx(2 / 6)
    assert later.probability(np.zeros((1, 0)))[0] == pytest.approx(3 / 7)


def test_end_time_before_the_log_is_refused():
    with pytest.raises(ConfigError, match="end_time"):
        leave_inputs(_hand_log(), end_time=100)


@pytest.fixture(scope="module")
def known_log():
    rng = np.random.default_rng(7)
    truth, returns = true_models(600, 300, rng)
    log, end = generate_log(truth, returns, 45, rng)
    return truth, log, end


def test_known_coefficients_are_recovered(known_log):
    """Tolerance: every raw coefficient within 4 standard errors of the truth; those errors are below
    0.15 (0.25 for the intercept, which trades off against the log-scale features). Every user has history
    before this log, so it has no first session: the first session's features are left out here (below)."""
    truth, log, end = known_log
    config = LeaveConfig()
    inputs = leave_inputs(log, config, truth.item_counts, truth.user_counts, end_time=end)
    assert (inputs.activity > 0).all()
    names = default_feature_names(config, inputs)
    assert not set(names) & set(first_session_feature_names(config.position_bins))
    fitted = fit_hazard(inputs, names, config, truth.item_counts, truth.user_counts)
    intercept, coefficients, intercept_error, errors = fitted.raw_coefficients()
    assert intercept_error < 0.25
    assert abs(intercept - TRUE_LEAVE_INTERCEPT) < 4 * intercept_error
    for name, value in coefficients.items():
        assert errors[name] < 0.15, name
        assert abs(value - TRUE_LEAVE.get(name, 0.0)) < 4 * errors[name], name


def test_the_first_sessions_own_curve_is_recovered():
    """Half the users are new: their first session follows a curve of its own (it seldom ends early). The
    fit on all features recovers that curve: on the first sessions' rows at positions 0-10, the fitted
    hazard's mean by position is within 0.015 of the true one, and ``first_session`` within 4 standard
    errors of the truth; a fit without the first session's features misses it by more."""
    rng = np.random.default_rng(11)
    truth, returns = true_models(1500, 300, rng, new_share=0.5)
    log, end = generate_log(truth, returns, 45, rng)
    config = LeaveConfig()
    inputs = leave_inputs(log, config, truth.item_counts, truth.user_counts, end_time=end)
    first = inputs.observed & (inputs.activity == 0) & (inputs.position <= 10)
    assert first.sum() > 3000
    fitted = fit_hazard(inputs, feature_names(config, True), config, truth.item_counts, truth.user_counts)
    without = fit_hazard(inputs, tuple(n for n in feature_names(config, True) if not n.startswith("first_")), config,
                         truth.item_counts, truth.user_counts)
    position = inputs.position[first]

    def curve(hazard):
        predicted = hazard.probability(hazard.design(inputs))[first]
        return np.array([predicted[position == p].mean() for p in range(11)])

    true_curve = curve(truth)
    assert np.abs(curve(fitted) - true_curve).max() < 0.015
    assert np.abs(curve(without) - true_curve).max() > 0.03
    _, coefficients, _, errors = fitted.raw_coefficients()
    name = "first_session"
    assert abs(coefficients[name] - TRUE_FIRST_SESSION[name]) < 4 * errors[name]


def _one_shot_newton(design: np.ndarray, labels: np.ndarray, l2: float) -> np.ndarray:
    """The textbook Newton fit on the whole design with its column of ones (what the block sums replace)."""
    with_ones = np.column_stack([np.ones(len(labels)), design])
    penalty = np.r_[0.0, np.full(design.shape[1], l2)]
    params = np.zeros(with_ones.shape[1])
    for _ in range(50):
        prob = 1 / (1 + np.exp(-(with_ones @ params)))
        gradient = with_ones.T @ (prob - labels) / len(labels) + penalty * params
        hessian = (with_ones.T * (prob * (1 - prob))) @ with_ones / len(labels) + np.diag(penalty)
        params = params - np.linalg.solve(hessian, gradient)
    return params


def test_the_newton_fit_over_row_blocks_is_the_one_shot_fit(known_log):
    """Blocks of 97 rows (none aligned with anything), one block of them all, and the whole-design fit agree;
    the design's moments over blocks are numpy's, and standardising happens in place."""
    truth, log, end = known_log
    config = LeaveConfig()
    inputs = leave_inputs(log, config, truth.item_counts, truth.user_counts, end_time=end)
    rows = np.flatnonzero(inputs.observed)
    design = raw_design(default_feature_names(config, inputs), inputs.position[rows], inputs.rating[rows],
                        inputs.overlap[rows], inputs.popularity[rows], inputs.activity[rows], config.like_threshold,
                        config.position_bins)
    mean, scale = column_moments(design, block_rows=97)
    np.testing.assert_allclose(mean, design.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scale, design.std(axis=0), rtol=1e-12, atol=1e-12)
    assert standardise(design, mean, scale) is design
    labels = inputs.ended[rows].astype(np.float64)
    blocked, covariance, converged = _logistic_newton(design, labels, 1e-4, 100, block_rows=97)
    whole, whole_covariance, _ = _logistic_newton(design, labels, 1e-4, 100, block_rows=len(rows))
    assert converged
    np.testing.assert_allclose(blocked, whole, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(covariance, whole_covariance, rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(blocked, _one_shot_newton(design, labels, 1e-4), rtol=1e-8, atol=1e-10)


def test_session_overlap_holding_one_position_is_the_whole_table(known_log):
    """The overlap kept one position's profiles at a time equals the profile table of every row at once."""
    _, log, _ = known_log
    inputs = leave_inputs(log)
    items = log.interactions["item"].to_numpy()
    unit = unit_genres(ItemCatalog.from_log(log).genres)
    profile = np.zeros((len(items), unit.shape[1]))
    for row in np.flatnonzero(inputs.position > 0):  # rows are in time order within sessions
        profile[row] = 0.7 * profile[row - 1] + unit[items[row - 1]]
    norm = np.linalg.norm(profile, axis=1)
    expected = np.where(norm > 0, (profile * unit[items]).sum(1) / np.maximum(norm, 1e-12), 0.0)
    np.testing.assert_allclose(session_overlap(unit, items, inputs.position, 0.7), expected, atol=1e-12)
    np.testing.assert_allclose(inputs.overlap, expected, atol=1e-12)


def test_simulator_batch_features_match_the_log_design(known_log):
    _, log, _ = known_log
    early, later = temporal_split(log, 0.8)
    hazard = fit_leave_hazard(early)
    inputs = leave_inputs(later, LeaveConfig(), hazard.item_counts, hazard.user_counts)
    items = later.interactions["item"].to_numpy()
    earlier = later.interactions.groupby("user").cumcount().to_numpy() - inputs.position  # rows before the session
    batch = hazard.features_for(inputs.user, items, inputs.position, inputs.rating, inputs.overlap, earlier)
    np.testing.assert_allclose(batch, hazard.design(inputs))
    assert hazard.meta["fit_seconds"] < 5.0


def test_held_out_full_beats_position_beats_constant(known_log):
    _, log, _ = known_log
    early, later = temporal_split(log, 0.8)
    hazard = fit_leave_hazard(early)
    result = validate_leave_hazard(hazard, early, later)
    assert result.log_loss["full"] < result.log_loss["position"] < result.log_loss["constant"]
    by_rating = result.tables["rating"]
    np.testing.assert_array_equal(by_rating.values, [1, 2, 3, 4, 5])
    # The truth makes low ratings end sessions: the logged and fitted curves both fall with the rating.
    assert by_rating.logged[0] > by_rating.logged[-1] and by_rating.predicted[0] > by_rating.predicted[-1]
    assert np.all((by_rating.low <= by_rating.logged) & (by_rating.logged <= by_rating.high))
    assert result.tables["position"].at_risk[0] == result.tables["position"].at_risk.max()


def test_wilson_interval_by_hand():
    low, high = wilson_interval(np.array([0, 5]), np.array([10, 10]))
    assert low[0] == pytest.approx(0.0, abs=1e-12)
    assert high[0] == pytest.approx(1.96 ** 2 / (10 + 1.96 ** 2))  # 0 of n: z^2 / (n + z^2)
    assert (low[1] + high[1]) / 2 == pytest.approx(0.5)


def test_hazard_table_by_hand():
    table = hazard_table("rating", np.array([1.0, 1.0, 2.0, 5.0]), np.array([True, False, False, True]),
                         np.array([0.2, 0.4, 0.1, 0.9]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(table.at_risk, [2, 1, 0])
    np.testing.assert_array_equal(table.leaves, [1, 0, 0])
    np.testing.assert_allclose(table.logged[:2], [0.5, 0.0])
    np.testing.assert_allclose(table.predicted[:2], [0.3, 0.1])
    assert np.isnan(table.logged[2]) and np.isnan(table.predicted[2])
    empty = hazard_table("rating", np.array([1.0]), np.array([True]), np.array([0.5]), np.array([]))
    assert empty.at_risk.shape == (0,)


def test_save_load_round_trip(tmp_path, known_log):
    _, log, _ = known_log
    hazard = fit_leave_hazard(log)
    loaded = LeaveHazard.load(hazard.save(tmp_path / "leave.npz"))
    inputs = leave_inputs(log, LeaveConfig(), hazard.item_counts, hazard.user_counts)
    np.testing.assert_array_equal(loaded.probability(loaded.design(inputs)), hazard.probability(hazard.design(inputs)))
    assert loaded.feature_names == hazard.feature_names and loaded.meta == hazard.meta
    np.testing.assert_array_equal(loaded.session_starts, hazard.session_starts)
    np.testing.assert_array_equal(loaded.session_start_offsets, hazard.session_start_offsets)
    np.testing.assert_array_equal(loaded.session_start_days, hazard.session_start_days)
    assert hazard.session_start_offsets[-1] == len(hazard.session_starts) > log.n_users  # several per user


def test_session_start_days_that_do_not_match_the_starts_are_refused():
    hazard = fit_leave_hazard(_hand_log())
    header, arrays = hazard.to_parts()
    for days in (np.zeros(2), np.array([0.0, -1.0, 0.0]), np.array([0.0, np.nan, 0.0])):
        with pytest.raises(ArtifactError, match="starts and days"):
            LeaveHazard.from_parts(header, arrays | {"session_start_days": days}, "hand")


def test_an_artifact_of_the_previous_format_is_refused_saying_refit(tmp_path, known_log, monkeypatch):
    from recsim_env.fit import leave as leave_module

    _, log, _ = known_log
    path = fit_leave_hazard(log).save(tmp_path / "leave.npz")
    monkeypatch.setattr(leave_module, "FORMAT_VERSION", leave_module.FORMAT_VERSION + 1)
    with pytest.raises(ArtifactError, match="format"):
        LeaveHazard.load(path)


def test_loading_another_artifact_is_refused(tmp_path):
    path = ReturnModel.from_raw(0.0, {"log1p_length": 0.1}, 1.0).save(tmp_path / "return.npz")
    with pytest.raises(ArtifactError, match="leave_hazard"):
        LeaveHazard.load(path)
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(ArtifactError, match="junk.npz"):
        LeaveHazard.load(tmp_path / "junk.npz")


def test_without_ratings_the_rating_features_are_left_out():
    hazard = fit_leave_hazard(_hand_log(with_rating=False), LeaveConfig(l2=1.0))
    assert "rating" not in hazard.feature_names and "shortfall" not in hazard.feature_names
    with pytest.raises(DataError, match="rating column"):
        fit_leave_hazard(_hand_log(with_rating=False), names=("rating",))


def test_a_log_where_every_session_ends_at_once_is_a_data_error():
    inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["i0", "i1", "i0"], "timestamp": [0, 5000, 9000]})
    items = pd.DataFrame({"item_id": ["i0", "i1"]})
    log = InteractionLog.from_frames(inter, items, None, ColumnMapping(), name="singles")
    with pytest.raises(DataError, match="singles: the leave hazard needs"):
        fit_leave_hazard(log, end_time=20000)


@pytest.mark.parametrize("changes", [{"overlap_decay": 1.0}, {"gap_seconds": 0}, {"position_bins": (3, 1)},
                                     {"no_click_leave": 1.5}, {"max_iterations": 0}, {"l2": float("nan")}])
def test_bad_config_is_refused(changes):
    with pytest.raises(ConfigError, match="LeaveConfig"):
        LeaveConfig(**changes)


def test_no_click_probability_is_assumed_and_says_so():
    """0 by default (the consumed-item hazard is the whole leave probability), the constant hazard on request."""
    hazard = fit_leave_hazard(_hand_log(), names=())
    assert hazard.no_click_probability == 0.0
    assert hazard.meta["no_click_source"] == "assumed: LeaveConfig.no_click_leave = 0"
    constant = fit_leave_hazard(_hand_log(), LeaveConfig(no_click_leave=None), names=())
    assert constant.no_click_probability == pytest.approx(2 / 6)
    assert constant.meta["no_click_source"].startswith("assumed: the constant hazard")
    set_by_hand = fit_leave_hazard(_hand_log(), LeaveConfig(no_click_leave=0.05), names=())
    assert set_by_hand.no_click_probability == 0.05


def test_a_single_outcome_log_can_fall_back_to_the_smoothed_constant_hazard(caplog):
    inter = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["i0", "i1", "i0"], "timestamp": [0, 5000, 9000]})
    log = InteractionLog.from_frames(inter, pd.DataFrame({"item_id": ["i0", "i1"]}), None, ColumnMapping(),
                                     name="singles")
    with caplog.at_level("WARNING", logger="recsim_env.fit.leave"):
        hazard = fit_leave_hazard(log, end_time=20000, constant_if_degenerate=True)
    assert hazard.feature_names == () and hazard.meta["source"].startswith("constant fallback: 3 of 3")
    assert "singles: constant fallback" in caplog.text
    design = hazard.features(np.arange(2), None, np.zeros(2), np.ones(2), np.ones(2))
    np.testing.assert_allclose(hazard.probability(design), (3 + 1) / (3 + 2))
    fitted = fit_leave_hazard(_hand_log(), LeaveConfig(l2=1.0), constant_if_degenerate=True)
    assert fitted.meta["source"] == "fitted" and fitted.feature_names


def test_validation_of_a_constant_fallback_scores_every_baseline_as_that_constant():
    inter = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["i0", "i1", "i0", "i1"],
                          "timestamp": [0, 5000, 9000, 15000]})
    log = InteractionLog.from_frames(inter, pd.DataFrame({"item_id": ["i0", "i1"]}), None, ColumnMapping(),
                                     name="singles")
    train, test = temporal_split(log, 0.5)
    hazard = fit_leave_hazard(train, constant_if_degenerate=True)
    result = validate_leave_hazard(hazard, train, test)
    assert result.log_loss["constant"] == result.log_loss["position"] == result.log_loss["full"]
