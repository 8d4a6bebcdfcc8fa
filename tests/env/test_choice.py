"""Choice models: probabilities are distributions over valid slots, position bias, sampling, calibration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recsim_env.errors import ConfigError
from recsim_env.protocols import ChoiceModel
from recsim_env.users.choice import (
    CascadeChoice,
    MultinomialLogit,
    calibrate_no_click,
    click_through_rate,
    sample_categorical,
)

utilities = arrays(np.float64, (3, 6), elements=st.floats(-50, 50))
masks = arrays(np.bool_, (3, 6))
models = st.one_of(
    st.builds(MultinomialLogit, st.floats(0.05, 5), st.floats(-5, 5), st.floats(0, 3)),
    st.builds(CascadeChoice, st.floats(0.05, 5), st.floats(-5, 5), st.floats(0, 0.9)),
)


@settings(max_examples=60, deadline=None)
@given(u=utilities, valid=masks, model=models)
def test_probabilities_are_distributions_over_valid_slots(u, valid, model):
    p = model.probabilities(u, valid)
    assert p.shape == (3, 7)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(p[:, :6][~valid] == 0)


@settings(max_examples=40, deadline=None)
@given(value=st.floats(-20, 20), decay=st.floats(0.1, 3), k=st.integers(2, 12))
def test_position_bias_is_monotone_for_equal_utilities(value, decay, k):
    p = MultinomialLogit(position_decay=decay).probabilities(np.full((1, k), value), np.ones((1, k), bool))
    assert np.all(np.diff(p[0, :k]) < 0)


def test_cascade_favours_earlier_slots_for_equal_utilities():
    p = CascadeChoice().probabilities(np.zeros((1, 5)), np.ones((1, 5), bool))
    assert np.all(np.diff(p[0, :5]) < 0)
    np.testing.assert_allclose(p[0, 0], 0.5)  # sigmoid(0) at the first slot


def test_logit_matches_closed_form():
    u = np.array([[1.0, 0.0, 2.0]])
    model = MultinomialLogit(temperature=2.0, no_click_utility=0.5, position_decay=1.0)
    w = np.exp(u[0] / 2.0) / np.arange(1, 4) ** 1.0
    expected = np.append(w, np.exp(0.25)) / (w.sum() + np.exp(0.25))
    np.testing.assert_allclose(model.probabilities(u, np.ones((1, 3), bool))[0], expected)


def test_extreme_utilities_stay_finite():
    p = MultinomialLogit().probabilities(np.array([[1e6, -1e6, 3.0]]), np.array([[True, True, False]]))
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("model", [MultinomialLogit(position_decay=0.7, no_click_utility=0.3),
                                   CascadeChoice(temperature=0.8, abandon_probability=0.1)])
def test_sampling_follows_probabilities(model, rng):
    u = np.tile(np.array([[0.5, -0.2, 1.0, 0.0]]), (100_000, 1))
    valid = np.tile(np.array([[True, True, False, True]]), (100_000, 1))
    draws = model.sample(u, valid, rng)
    freq = np.bincount(draws + 1, minlength=5) / len(draws)
    p = model.probabilities(u[:1], valid[:1])[0]
    np.testing.assert_allclose(freq[1:], p[:4], atol=0.006)
    np.testing.assert_allclose(freq[0], p[4], atol=0.006)
    assert freq[3] == 0  # the invalid slot is never chosen


def test_cascade_equals_scanning_simulation(rng):
    model = CascadeChoice(temperature=1.0, no_click_utility=0.2, abandon_probability=0.15)
    u = np.array([0.3, -0.5, 1.2])
    n = 100_000
    chosen = np.full(n, -1)
    active = np.ones(n, bool)
    for j, uj in enumerate(u):
        active &= rng.random(n) >= 0.15
        click = active & (rng.random(n) < 1 / (1 + np.exp(-(uj - 0.2))))
        chosen[click] = j
        active &= ~click
    freq = np.bincount(chosen + 1, minlength=4) / n
    p = model.probabilities(u[None], np.ones((1, 3), bool))[0]
    np.testing.assert_allclose(freq[1:], p[:3], atol=0.006)


def test_sample_categorical_takes_unnormalised_rows(rng):
    draws = sample_categorical(np.tile([[2.0, 0.0, 6.0]], (50_000, 1)), rng)
    assert set(np.unique(draws)) == {0, -1}
    assert abs((draws == 0).mean() - 0.25) < 0.01


@pytest.mark.parametrize("target", [0.05, 0.3, 0.7])
@pytest.mark.parametrize("model", [MultinomialLogit(position_decay=0.5), CascadeChoice(temperature=2.0)])
def test_calibrate_no_click_hits_target_ctr(model, target, rng):
    u = rng.normal(size=(500, 10))
    valid = rng.random((500, 10)) > 0.1
    b = calibrate_no_click(u, valid, target, model)
    calibrated = dataclasses.replace(model, no_click_utility=b)
    assert abs(click_through_rate(u, valid, calibrated) - target) < 0.005
    assert abs((calibrated.sample(np.tile(u, (20, 1)), np.tile(valid, (20, 1)), rng) >= 0).mean() - target) < 0.01


def test_calibrate_refuses_unreachable_target(rng):
    u = rng.normal(size=(10, 3))
    valid = np.zeros((10, 3), bool)
    valid[:5] = True  # half the rows cannot click at all: CTR <= 0.5
    with pytest.raises(ConfigError, match="target_ctr=0.9"):
        calibrate_no_click(u, valid, 0.9, MultinomialLogit())
    with pytest.raises(ConfigError, match="target_ctr"):
        calibrate_no_click(u, valid, 1.5, MultinomialLogit())
    with pytest.raises(ConfigError, match="equal non-empty"):
        calibrate_no_click(u, valid[:, :2], 0.3, MultinomialLogit())


@pytest.mark.parametrize("make, match", [
    (lambda: MultinomialLogit(temperature=0), "temperature"),
    (lambda: MultinomialLogit(position_decay=-1), "position_decay"),
    (lambda: MultinomialLogit(no_click_utility=float("nan")), "no_click_utility"),
    (lambda: CascadeChoice(abandon_probability=1.0), "abandon_probability"),
    (lambda: CascadeChoice(temperature=-2), "temperature"),
])
def test_bad_choice_config_is_refused(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_models_satisfy_the_protocol():
    assert isinstance(MultinomialLogit(), ChoiceModel)
    assert isinstance(CascadeChoice(), ChoiceModel)


@settings(max_examples=60, deadline=None)
@given(u=arrays(np.float64, (1, 6), elements=st.floats(-50, 50)), valid=arrays(np.bool_, (1, 6)),
       temperature=st.floats(0.05, 5), no_click=st.floats(-5, 5), decay=st.floats(0, 3), seed=st.integers(0, 99))
def test_one_user_fast_path_draws_what_the_batched_path_draws(u, valid, temperature, no_click, decay, seed):
    """The single env's plain-Python draw is the batched inverse-CDF draw, uniform for uniform."""
    model = MultinomialLogit(temperature, no_click, decay)
    fast = model.sample(u, valid, np.random.default_rng(seed))
    batched = sample_categorical(model.probabilities(u, valid), np.random.default_rng(seed))
    assert fast.dtype == np.int64 and fast.shape == (1,)
    assert fast[0] == -1 or valid[0, fast[0]]
    # Equal draws except where the uniform lands within rounding of a cumulative edge.
    if fast[0] != batched[0]:
        edges = np.cumsum(model.probabilities(u, valid)[0])
        draw = np.random.default_rng(seed).random()
        assert np.min(np.abs(edges - draw)) < 1e-9


def test_logit_weights_stay_finite_when_a_slot_towers_over_no_click():
    """Logits far above no-click take the column-max shift: finite weights, the right distribution."""
    model = MultinomialLogit(temperature=0.5, no_click_utility=-5.0, position_decay=1.0)
    u = np.array([[400.0, 399.0, -np.inf, 0.0], [1.0, 0.5, 0.0, -1.0]])
    valid = np.array([[True, True, False, True], [True, True, True, True]])
    p = model.probabilities(u, valid)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    for row in range(2):
        logits = np.append(np.where(valid[row], u[row] / 0.5 - np.log1p(np.arange(4)), -np.inf), -5.0 / 0.5)
        expected = np.exp(logits - logits.max())
        np.testing.assert_allclose(p[row], expected / expected.sum(), rtol=1e-12, atol=1e-300)
