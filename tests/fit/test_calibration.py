"""The reference-policy rollout: it records the leave hazard it applied after each consumed item."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from recsim_env.fit.calibration import simulate_sessions, spent_probability
from recsim_env.fit.leave import LeaveHazard


def test_spent_probability_inverts_the_leave_clock():
    probability = np.array([0.0, 0.05, 0.5, 0.99])
    before = np.float32([1.5, 0.7, 2.0, 9.0])
    after = (before - np.float32(-np.log1p(-probability))).astype(np.float32)
    assert np.allclose(spent_probability(before, after), probability, atol=1e-6)


def test_the_rollout_records_the_hazard_its_items_were_given(tiny_model):
    """A hand-set hazard of the rating alone: every recorded probability is ``sigmoid(b + w * rating)`` of
    the rating recorded beside it, and the realised leave share agrees with their mean."""
    leave = tiny_model.leave
    hazard = LeaveHazard.from_raw(-2.0, {"rating": -0.3}, leave.item_counts, leave.user_counts)
    model = tiny_model.with_long_term(leave=hazard)
    rollout = simulate_sessions(model, 400, np.random.default_rng(0), step_cap=60, record=True)
    ratings = np.concatenate(rollout.ratings)
    applied = np.concatenate(rollout.leave_probabilities)
    assert applied.shape == ratings.shape and len(np.unique(ratings)) > 1
    assert np.allclose(applied, expit(-2.0 - 0.3 * ratings), atol=1e-5)
    lengths = np.array([len(items) for items in rollout.consumed])
    ended = np.zeros(applied.size, bool)
    ended[np.cumsum(lengths)[lengths > 0] - 1] = rollout.left[lengths > 0]
    share, expected = ended.mean(), applied.mean()
    assert abs(share - expected) < 3 * np.sqrt(expected * (1 - expected) / applied.size)


def test_without_record_nothing_is_kept(tiny_model):
    rollout = simulate_sessions(tiny_model, 20, np.random.default_rng(0), step_cap=10)
    assert rollout.consumed == [] and rollout.leave_probabilities == []
