"""The synthetic model's known leave and return truth: the formulas by hand, its lifetime logs, and the
known-answer test: the leave and return fitters recover its coefficients from its generated logs."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_env.data.sessions import sessionize
from recsim_env.errors import ConfigError
from recsim_env.fit.leave import fit_leave_hazard
from recsim_env.fit.returns import ReturnConfig, fit_return_model
from recsim_env.protocols import Responses, ReturningUserModel
from recsim_env.users.synthetic import (
    DAY_SECONDS,
    LongTermConfig,
    ReturningSyntheticUserModel,
    SyntheticConfig,
    SyntheticUserModel,
)

SMALL = SyntheticConfig(n_items=80, n_users=30)
SLOPE_TOLERANCE = 0.1
"""Stated tolerance of the known-answer test: every fitted slope within 0.1 of the truth (and 3 standard
errors), intercepts within 0.3 (and 3 standard errors), the Weibull scale within 0.05."""
INTERCEPT_TOLERANCE = 0.3


def _click(model, state, slates, slot_of_row, rating):
    """Responses of users who clicked ``slot_of_row`` (-1: none) with ``rating``."""
    n, k = slates.shape
    choice = np.asarray(slot_of_row, dtype=np.int64)
    per_slot = np.zeros((n, k), dtype=np.float32)
    rows = np.flatnonzero(choice >= 0)
    ratings = per_slot.copy()
    ratings[rows, choice[rows]] = rating
    clicks = per_slot.copy()
    clicks[rows, choice[rows]] = 1.0
    return Responses(choice, clicks, ratings, (ratings >= 4).astype(np.float32), per_slot)


def test_the_returning_model_is_a_returning_user_model_and_the_v0_model_is_not():
    assert isinstance(ReturningSyntheticUserModel(SMALL), ReturningUserModel)
    assert not isinstance(SyntheticUserModel(SMALL), ReturningUserModel)


def test_leave_probability_is_the_stated_logistic_on_the_fitters_features():
    model = ReturningSyntheticUserModel(SMALL)
    truth = model.longterm
    state = model.state_for(np.array([0]))
    same_topic = np.flatnonzero(model.item_topic == model.item_topic[0])[:3]
    other = int(np.flatnonzero(model.item_topic != model.item_topic[0])[0])
    rng = np.random.default_rng(0)
    for item in (same_topic[1], other):  # two items consumed: overlap decays by 0.7 per item
        model.update(state, np.array([[item]]), _click(model, state, np.array([[item]]), [0], 3.0), rng)
        state.session_left[:] = False
    profile = np.zeros(SMALL.n_topics)
    profile[model.item_topic[0]] = truth.overlap_decay
    profile[model.item_topic[other]] = 1.0
    overlap = profile[model.item_topic[0]] / np.linalg.norm(profile)
    logit = (truth.leave_intercept + truth.leave_log1p_position * np.log1p(2) + truth.leave_rating * 2.0
             + truth.leave_shortfall * 2.0 + truth.leave_overlap * overlap)
    got = model.leave_probability(state, np.array([0]), model.item_topic[[same_topic[2]]], np.array([2.0]))
    assert got[0] == pytest.approx(1 / (1 + np.exp(-logit)))


def test_the_hazard_ends_sessions_and_the_budget_rule_keeps_the_time_budget():
    always = ReturningSyntheticUserModel(SMALL, LongTermConfig(leave_intercept=50.0, no_click_leave=0.0))
    state = always.state_for(np.arange(3))
    slates = np.array([[1, 2], [3, 4], [5, 6]])
    always.update(state, slates, _click(always, state, slates, [0, -1, 1], 4.0), np.random.default_rng(0))
    assert always.left(state).tolist() == [True, False, True]  # a click is a trial; no click, no leave here
    budget = ReturningSyntheticUserModel(SMALL, LongTermConfig(leave_rule="budget"))
    state = budget.state_for(np.arange(2))
    state.budget[:] = [0.5, 5.0]
    budget.update(state, slates[:2], _click(budget, state, slates[:2], [-1, -1], 0.0), np.random.default_rng(0))
    assert budget.left(state).tolist() == [True, False]


def test_return_gaps_are_the_stated_weibull_draws():
    model = ReturningSyntheticUserModel(SMALL, LongTermConfig(return_scale=0.8))
    state = model.state_for(np.zeros(20_000, dtype=np.int64))
    state.session_items[:] = 5.0
    state.session_ratings[:] = [20.0, 3.0, 1.0]
    state.session_topics[:, :2] = [3.0, 2.0]
    rows = np.arange(20_000)
    gaps = model.return_gaps(state, rows, np.random.default_rng(0))
    truth = model.longterm
    mu = (truth.return_intercept + truth.return_log1p_length * np.log1p(5) + truth.return_mean_rating * 4.0
          + truth.return_liked_share * 0.6 + truth.return_disliked_share * 0.2
          + truth.return_genre_diversity * (1 - 0.6 ** 2 - 0.4 ** 2) + truth.return_log1p_sessions * np.log1p(1)
          + truth.return_log1p_days_since_first * np.log1p(4 * 60 / DAY_SECONDS))
    np.testing.assert_allclose(model.return_mean_log_gap(state, rows[:1]), [mu])
    log_excess = np.log(gaps - truth.session_gap_seconds / DAY_SECONDS)
    # log of a Weibull excess: mean μ - γσ, variance (π²/6)σ² (minimum extreme value)
    assert log_excess.mean() == pytest.approx(mu - np.euler_gamma * 0.8, abs=0.03)
    assert log_excess.var() == pytest.approx(np.pi ** 2 / 6 * 0.64, rel=0.05)


def test_a_new_session_keeps_the_user_and_restarts_the_session():
    model = ReturningSyntheticUserModel(SMALL)
    state = model.state_for(np.array([4, 5]))
    slates = np.array([[1, 2], [3, 4]])
    model.update(state, slates, _click(model, state, slates, [0, 1], 5.0), np.random.default_rng(0))
    model.update(state, slates, _click(model, state, slates, [0, -1], 5.0), np.random.default_rng(0))
    interest = state.interest.copy()
    model.start_session(state, np.array([0]), np.array([2.0]), np.random.default_rng(0))
    assert state.session_start_day[0] == pytest.approx(2.0 + 60 / DAY_SECONDS)  # one minute between two items
    assert state.sessions.tolist() == [2.0, 1.0] and state.session_items.tolist() == [0.0, 1.0]
    assert not state.session_profile[0].any() and not state.fatigue[0].any() and state.session_profile[1].any()
    assert state.budget[0] == SMALL.time_budget
    np.testing.assert_array_equal(state.interest, interest)  # the same user: interests carry over


def test_long_term_configs_name_the_bad_field():
    for field, value in (("leave_rule", "patience"), ("no_click_leave", 1.5), ("return_scale", 0.0),
                         ("overlap_decay", 1.0), ("leave_rating", "0.3"), ("return_intercept", np.nan)):
        with pytest.raises(ConfigError, match=f"LongTermConfig.{field}"):
            LongTermConfig(**{field: value})


# ---------------------------------------------------------------------------- generated logs
TRUTH = LongTermConfig(no_click_leave=0.0)
"""The log's truth: no leaving after an ignored slate, which a log of consumed items cannot show."""


@pytest.fixture(scope="module")
def lifetime_log():
    model = ReturningSyntheticUserModel(SyntheticConfig(n_users=1000), TRUTH)
    # A step cap the hazard practically never reaches: a capped session would end without a hazard event.
    return model.generate_log(1000, np.random.default_rng(0), step_cap=300, horizon_days=60)


def test_lifetime_logs_hold_many_sessions_per_user_with_real_timestamps(lifetime_log):
    inter = lifetime_log.interactions
    end = lifetime_log.meta["end_time"]
    assert lifetime_log.meta["horizon_days"] == 60 and (inter["timestamp"] < end).all()
    session = sessionize(lifetime_log)
    sessions_per_user = inter.assign(session=session).groupby("user")["session"].nunique()
    assert sessions_per_user.mean() > 5 and sessions_per_user.min() >= 1
    times = inter["timestamp"].to_numpy()
    same_user = inter["user"].to_numpy()[1:] == inter["user"].to_numpy()[:-1]
    steps = np.diff(times)[same_user]
    assert set(np.unique(steps[steps < 1800])) == {60}  # items a minute apart within a session
    assert steps.max() > 7 * DAY_SECONDS  # and days between sessions


def test_lifetime_logs_are_reproducible():
    model = ReturningSyntheticUserModel(SMALL)
    first = model.generate_log(10, np.random.default_rng(4), n_candidates=20, horizon_days=10).interactions
    second = model.generate_log(10, np.random.default_rng(4), n_candidates=20, horizon_days=10).interactions
    assert first.equals(second)
    with pytest.raises(ConfigError, match="horizon_days"):
        model.generate_log(10, np.random.default_rng(4), horizon_days=-1)


def _assert_recovered(name: str, fitted: float, error: float, true: float, tolerance: float) -> None:
    assert abs(fitted - true) <= tolerance and abs(fitted - true) <= 3 * error, \
        f"{name}: fitted {fitted:+.3f} ± {error:.3f}, truth {true:+.3f}"


def test_the_leave_fitter_recovers_the_true_hazard(lifetime_log):
    truth = TRUTH.leave_coefficients()
    hazard = fit_leave_hazard(lifetime_log, names=tuple(truth), end_time=lifetime_log.meta["end_time"])
    intercept, coefficients, intercept_error, errors = hazard.raw_coefficients()
    _assert_recovered("intercept", intercept, intercept_error, TRUTH.leave_intercept, INTERCEPT_TOLERANCE)
    for name, value in truth.items():
        _assert_recovered(name, coefficients[name], errors[name], value, SLOPE_TOLERANCE)


def test_the_return_fitter_recovers_the_true_weibull_gaps(lifetime_log):
    model = fit_return_model(lifetime_log, end_time=lifetime_log.meta["end_time"])
    assert model.distribution == "weibull"  # chosen by likelihood over the log-normal
    weibull = fit_return_model(lifetime_log, ReturnConfig(distribution="weibull"),
                               end_time=lifetime_log.meta["end_time"])
    intercept, coefficients, errors = weibull.raw_coefficients()
    _assert_recovered("intercept", intercept, errors["intercept"], TRUTH.return_intercept, INTERCEPT_TOLERANCE)
    for name, value in TRUTH.return_coefficients().items():
        _assert_recovered(name, coefficients[name], errors[name], value, SLOPE_TOLERANCE)
    assert weibull.scale == pytest.approx(TRUTH.return_scale, abs=0.05)
