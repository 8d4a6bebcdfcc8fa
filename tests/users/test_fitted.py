"""FittedUserModel: batched shapes and invariants, dynamics (drift, fatigue, leave hazard, returns), the artifact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recsim_env
from recsim_env.errors import ArtifactError, ConfigError, DataError
from recsim_env.fit.leave import LeaveHazard
from recsim_env.fit.returns import ReturnModel, genre_diversity
from recsim_env.protocols import Responses, ReturningUserModel, UserModel
from recsim_env.users import fitted as fitted_module
from recsim_env.users.fitted import DEFAULT_START_ACTIVITY, Dynamics, FittedUserModel


def _slates(model: FittedUserModel, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.choice(model.n_items, size=k, replace=False) for _ in range(n)])


def _click(model: FittedUserModel, state, slates: np.ndarray, slot: int, rating: float) -> Responses:
    """Responses in which every user clicked ``slot`` and gave ``rating``."""
    n, k = slates.shape
    per_slot = np.zeros((n, k), dtype=np.float32)
    click, ratings, like = per_slot.copy(), per_slot.copy(), per_slot.copy()
    click[:, slot] = 1.0
    ratings[:, slot] = rating
    like[:, slot] = float(rating >= model.dynamics.like_threshold)
    return Responses(np.full(n, slot, dtype=np.int64), click, ratings, like, per_slot.copy())


def _no_click(n: int, k: int) -> Responses:
    z = np.zeros((n, k), dtype=np.float32)
    return Responses(np.full(n, -1, dtype=np.int64), z, z.copy(), z.copy(), z.copy())


HAND_LEAVE = {"log1p_position": -0.4, "position_0": 0.5, "rating": -0.2, "shortfall": 0.3, "overlap": 0.8,
              "log1p_popularity": -0.1, "log1p_activity": 0.05, "first_session": -1.0, "first_log1p_position": 0.3,
              "first_position_0": 0.4}
"""A hazard with every feature the simulator computes, the first session's curve included (the tiny log's
own is a constant: its sessions are one item long)."""


def _hand_hazard(model: FittedUserModel, no_click: float = 0.0,
                 starts: tuple[np.ndarray, ...] | None = None) -> LeaveHazard:
    hazard = LeaveHazard.from_raw(-2.0, HAND_LEAVE, model.leave.item_counts, model.leave.user_counts,
                                  session_starts=starts)
    return LeaveHazard(**{**vars(hazard), "no_click_probability": no_click})


HAND_STARTS = (0.0, 4.0, 9.0, 9.0)
"""Every logged user's hand-made session starts: activity 0, 4 and 9 with probabilities 1/4, 1/4, 1/2."""


def _hand_starts(model: FittedUserModel) -> tuple[np.ndarray, np.ndarray]:
    n_users = model.n_logged_users
    return np.tile(HAND_STARTS, n_users), np.arange(n_users + 1) * len(HAND_STARTS)


HAND_RETURN = {"log1p_length": -0.3, "mean_rating": -0.2, "liked_share": -0.4, "disliked_share": 0.5,
               "genre_diversity": -0.5, "log1p_sessions": -0.3, "log1p_days_since_first": 0.2}


def _long_term(model: FittedUserModel, no_click: float = 0.0,
               starts: tuple[np.ndarray, ...] | None = None) -> FittedUserModel:
    """``model`` with the hand-set hazard (``starts``: its session starts, as ``LeaveHazard.from_raw``'s)
    and a hand-set return model."""
    returns = ReturnModel.from_raw(1.0, HAND_RETURN, 0.8, "weibull")
    return model.with_long_term(leave=_hand_hazard(model, no_click, starts), returns=returns)


def test_implements_the_user_model_protocol(tiny_model, tiny_log):
    assert isinstance(tiny_model, UserModel)
    assert tiny_model.n_items == tiny_log.n_items
    assert tiny_model.n_logged_users == tiny_log.n_users
    # age (standardised) + gender one-hot (F, M)
    assert tiny_model.n_user_features == 3
    assert tiny_model.meta["user_feature_names"] == ["age", "gender=F", "gender=M"]


def test_sample_shapes_and_features(tiny_model, rng):
    state = tiny_model.sample(7, rng)
    idx = tiny_model.user_index(state)
    assert idx.shape == (7,) and idx.dtype == np.int64
    assert ((idx >= 0) & (idx < tiny_model.n_logged_users)).all()
    feats = tiny_model.features(state)
    assert feats.shape == (7, tiny_model.n_user_features) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, tiny_model.arrays.user_features[idx])
    assert (state.patience > 0).all() and not tiny_model.left(state).any()


def test_respond_shapes_dtypes_and_consistency(tiny_model, rng):
    state = tiny_model.sample(200, rng)
    slates = _slates(tiny_model, 200, 6, rng)
    r = tiny_model.respond(state, slates, np.ones((200, 6), dtype=bool), rng)
    assert r.choice.shape == (200,) and r.choice.dtype == np.int64
    assert ((r.choice >= -1) & (r.choice < 6)).all()
    for arr in (r.click, r.rating, r.like, r.dwell):
        assert arr.shape == (200, 6) and arr.dtype == np.float32
    clicked = r.choice >= 0
    assert clicked.any() and (~clicked).any()
    np.testing.assert_array_equal(r.click.sum(axis=1), clicked.astype(np.float32))
    ratings = r.rating[clicked, r.choice[clicked]]
    assert ((ratings >= 1) & (ratings <= 5)).all() and np.array_equal(ratings, np.round(ratings))
    np.testing.assert_array_equal(r.like[clicked, r.choice[clicked]], (ratings >= 4).astype(np.float32))
    assert (r.rating[r.click == 0] == 0).all()
    assert (r.dwell == 0).all()  # the tiny log has no dwell: none is invented


def test_invalid_slots_are_never_chosen(tiny_model, rng):
    state = tiny_model.sample(300, rng)
    slates = _slates(tiny_model, 300, 5, rng)
    valid = np.ones((300, 5), dtype=bool)
    valid[:, 0] = False
    valid[:150, 1:] = False
    r = tiny_model.respond(state, slates, valid, rng)
    assert (r.choice != 0).all()
    assert (r.choice[:150] == -1).all()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_utilities_are_batch_invariant(tiny_model, n, k, seed):
    rng = np.random.default_rng(seed)
    state = tiny_model.sample(n, rng)
    slates = rng.integers(0, tiny_model.n_items, size=(n, k))
    batch = tiny_model.utilities(state, slates)
    assert batch.shape == (n, k) and batch.dtype == np.float32
    for row in range(n):
        single = tiny_model.utilities(fitted_module.FittedState(
            **{name: getattr(state, name)[row:row + 1] for name in vars(state)}), slates[row:row + 1])
        np.testing.assert_allclose(single[0], batch[row], rtol=1e-5, atol=1e-5)
    probs = tiny_model.choice_probabilities(state, slates, np.ones((n, k), dtype=bool))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


def test_same_seed_same_responses(tiny_model):
    def run(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        state = tiny_model.sample(50, rng)
        out = []
        for _ in range(5):
            slates = _slates(tiny_model, 50, 4, rng)
            r = tiny_model.respond(state, slates, np.ones((50, 4), dtype=bool), rng)
            tiny_model.update(state, slates, r, rng)
            out += [r.choice, r.rating, state.patience.copy()]
        return out

    for a, b in zip(run(3), run(3)):
        np.testing.assert_array_equal(a, b)


def test_drift_moves_interest_toward_consumed_items(tiny_model, rng):
    model = tiny_model.with_dynamics(drift_rate=0.3)
    state = model.sample(20, rng)
    slates = _slates(model, 20, 3, rng)
    target = model.arrays.item_vectors[slates[:, 0]]
    before = np.linalg.norm(state.interest - target, axis=1)
    model.update(state, slates, _click(model, state, slates, 0, 5.0), rng)
    after = np.linalg.norm(state.interest - target, axis=1)
    np.testing.assert_allclose(after, 0.7 * before, rtol=1e-4)


def test_fatigue_lowers_utility_of_similar_items(tiny_model, rng):
    model = tiny_model.with_dynamics(fatigue_strength=2.0, drift_rate=0.0, repeat_penalty=0.0)
    state = model.sample(10, rng)
    genre = model.arrays.item_genres.argmax(axis=1)
    same = np.flatnonzero(genre == genre[0])
    other = np.flatnonzero(genre != genre[0])
    probe = np.tile([same[1], other[0]], (10, 1))
    before = model.utilities(state, probe)
    consumed = np.tile([same[2], other[1]], (10, 1))
    model.update(state, consumed, _click(model, state, consumed, 0, 5.0), rng)
    after = model.utilities(state, probe)
    np.testing.assert_allclose(before[:, 0] - after[:, 0], 2.0 * 0.7 ** 0, rtol=1e-4)  # g·g = 1, not yet decayed
    np.testing.assert_allclose(after[:, 1], before[:, 1], rtol=1e-5)  # other genre: untouched
    model.update(state, consumed, _no_click(10, 2), rng)
    decayed = model.utilities(state, probe)
    np.testing.assert_allclose(before[:, 0] - decayed[:, 0], 2.0 * 0.7, rtol=1e-4)


def test_repeats_of_consumed_items_lose_utility(tiny_model, rng):
    state = tiny_model.sample(5, rng)
    slates = _slates(tiny_model, 5, 3, rng)
    tiny_model.update(state, slates, _click(tiny_model, state, slates, 1, 5.0), rng)
    with_penalty = tiny_model.utilities(state, slates)
    without = tiny_model.with_dynamics(repeat_penalty=0.0).utilities(state, slates)
    np.testing.assert_allclose(without - with_penalty, [[0.0, tiny_model.dynamics.repeat_penalty, 0.0]] * 5,
                               atol=1e-5)


def test_a_fitted_model_is_a_returning_user_model(tiny_model):
    assert isinstance(tiny_model, ReturningUserModel)


def test_steps_without_a_click_leave_at_the_assumed_probability(tiny_model):
    never = tiny_model.with_long_term(leave=_hand_hazard(tiny_model, no_click=0.0))
    rng = np.random.default_rng(3)
    state = never.sample(50, rng)
    slates = _slates(never, 50, 4, rng)
    for _ in range(200):
        never.update(state, slates, _no_click(50, 4), rng)
    assert not never.left(state).any()  # 0: ignored slates add no leaves to the fitted hazard
    sometimes = tiny_model.with_no_click_leave(0.1)
    assert sometimes.leave.meta["no_click_source"] == "assumed: set to 0.1"
    state = sometimes.sample(20_000, rng)
    sometimes.update(state, _slates(sometimes, 1, 4, rng).repeat(20_000, axis=0), _no_click(20_000, 4), rng)
    assert abs(sometimes.left(state).mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / 20_000)


def test_the_leave_clock_spends_the_hazard_of_each_consumed_item(tiny_model):
    """Each click spends -log(1 - p) of the session's clock, p the hazard of the item's features in the state."""
    model = _long_term(tiny_model)
    rng = np.random.default_rng(4)
    state = model.sample(12, rng)
    hazard = model.leave
    profile = np.zeros((12, model.arrays.item_genres.shape[1]))
    for step, rating in enumerate((5.0, 2.0, 4.0)):
        slates = _slates(model, 12, 3, rng)
        items = slates[:, 1]
        genres = model.arrays.item_genres[items].astype(np.float64)
        norm = np.linalg.norm(profile, axis=1)
        overlap = np.where(norm > 0, (profile * genres).sum(axis=1) / np.maximum(norm, 1e-12), 0.0)
        expected = hazard.probability(hazard.features_for(state.logged, items, np.full(12, step), np.full(12, rating),
                                                          overlap))
        before = state.patience.astype(np.float64)
        model.update(state, slates, _click(model, state, slates, 1, rating), rng)
        np.testing.assert_allclose(before - state.patience, -np.log1p(-expected), rtol=2e-5, atol=2e-6)
        profile = hazard.overlap_decay * profile + genres
        np.testing.assert_allclose(state.session_profile, profile, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(state.position, 3)


def test_the_first_item_ends_the_session_with_the_hazard_probability(tiny_model):
    """The clock is the Bernoulli hazard in another form: P(leave after the first click) is its p."""
    model = _long_term(tiny_model)
    rng = np.random.default_rng(5)
    n = 20_000
    state = model.sample(n, rng)
    state.logged[:] = state.logged[0]
    slates = np.tile(_slates(model, 1, 3, rng), (n, 1))
    model.update(state, slates, _click(model, state, slates, 0, 2.0), rng)
    hazard = model.leave
    p = hazard.probability(hazard.features_for(state.logged[:1], slates[:1, 0], np.zeros(1), np.full(1, 2.0),
                                               np.zeros(1)))[0]
    assert abs(model.left(state).mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_return_gaps_follow_the_return_model_on_the_sessions_totals(tiny_model):
    model = _long_term(tiny_model)
    rng = np.random.default_rng(6)
    state = model.sample(8, rng)
    start_sessions, start_days = state.sessions.copy(), state.days.copy()
    ratings = (5.0, 1.0, 4.0)
    consumed = []
    for rating in ratings:
        slates = _slates(model, 8, 3, rng)
        consumed.append(slates[:, 2])
        model.update(state, slates, _click(model, state, slates, 2, rating), rng)
    consumed = np.column_stack(consumed)
    mass = (model.arrays.item_genres[consumed] > 0).sum(axis=1).astype(np.float64)
    design = model.returns.covariates(np.full(8, 3), np.full(8, np.mean(ratings)), np.full(8, 2 / 3),
                                      np.full(8, 1 / 3), genre_diversity(mass), start_sessions, start_days)
    expected = model.returns.sample_gaps(design, np.random.default_rng(7))
    np.testing.assert_allclose(model.return_gaps(state, np.arange(8), np.random.default_rng(7)), expected, rtol=1e-6)
    # The default starts at a training session's state: the hand-set hazard has one per user, its first.
    np.testing.assert_array_equal(start_sessions, np.ones(8))
    np.testing.assert_array_equal(start_days, np.zeros(8))
    # "total": a simulated user continues the logged one: their logged sessions, and this one, count.
    total = model.with_start_activity("total").sample(8, np.random.default_rng(6))
    logged_sessions = np.diff(model.arrays.session_offsets)[total.logged]
    np.testing.assert_array_equal(total.sessions, logged_sessions + 1)
    np.testing.assert_array_equal(total.days, model.arrays.user_span_days[total.logged])


def test_start_session_keeps_the_user_and_resets_the_session(tiny_model):
    model = _long_term(tiny_model).with_dynamics(fatigue_strength=1.0)
    rng = np.random.default_rng(8)
    state = model.sample(5, rng)
    for _ in range(3):
        slates = _slates(model, 5, 3, rng)
        model.update(state, slates, _click(model, state, slates, 0, 4.0), rng)
    kept = {name: getattr(state, name).copy() for name in ("logged", "interest", "recent", "seen", "clicks")}
    rows = np.array([1, 3])
    before = {name: getattr(state, name).copy() for name in vars(state)}
    model.start_session(state, rows, np.array([2.5, 10.0]), np.random.default_rng(9))
    for name, values in kept.items():
        np.testing.assert_array_equal(getattr(state, name), values, err_msg=name)
    np.testing.assert_array_equal(state.sessions[rows], before["sessions"][rows] + 1)
    np.testing.assert_array_equal(state.days[rows], before["days"][rows] + [2.5, 10.0])
    clocks = np.random.default_rng(9).standard_exponential(2).astype(np.float32)
    np.testing.assert_array_equal(state.patience[rows], clocks)
    for name in ("position", "fatigue", "session_profile", "session_genres", "session_ratings"):
        assert not getattr(state, name)[rows].any(), name
        np.testing.assert_array_equal(getattr(state, name)[[0, 2, 4]], before[name][[0, 2, 4]], err_msg=name)
    fresh_query = state.query[rows, model._dim + 1:]
    assert not fresh_query.any()  # the query's copy of the fatigue restarts with it


def test_a_later_session_counts_the_earlier_sessions_items_as_activity(tiny_model):
    """The hazard's activity is the user's interactions before the session: the logged count in the first
    simulated session, plus its items in the next (the clock spent is the hazard of those features)."""
    model = _long_term(tiny_model)
    rng = np.random.default_rng(10)
    state = model.sample(6, rng)
    for _ in range(3):
        slates = _slates(model, 6, 3, rng)
        model.update(state, slates, _click(model, state, slates, 0, 4.0), rng)
    model.start_session(state, np.arange(6), np.full(6, 1.0), rng)
    hazard = model.leave
    slates = _slates(model, 6, 3, rng)
    items = slates[:, 2]
    expected = hazard.probability(hazard.features_for(state.logged, items, np.zeros(6), np.full(6, 3.0),
                                                      np.zeros(6), earlier=3))
    without = hazard.probability(hazard.features_for(state.logged, items, np.zeros(6), np.full(6, 3.0), np.zeros(6)))
    assert (np.abs(expected - without) > 1e-6).all()  # the 3 earlier items move the hazard
    before = state.patience.astype(np.float64)
    model.update(state, slates, _click(model, state, slates, 2, 3.0), rng)
    np.testing.assert_allclose(before - state.patience, -np.log1p(-expected), rtol=2e-5, atol=2e-6)


def test_start_activity_picks_the_users_logged_session_start_by_the_uniform():
    """Known answer: a user with logged session starts (0, 4, 9, 9) starts at ``starts[floor(u * 4)]``; a
    user without a logged session at its count; ``None`` (the lifetime convention) at its count."""
    from recsim_env.users.fitted_longterm import LeaveTerms

    starts, offsets = np.array([0.0, 4.0, 9.0, 9.0, 2.0]), np.array([0, 4, 4, 5])  # user 1: no session
    hazard = LeaveHazard.from_raw(-2.0, HAND_LEAVE, np.ones(3), np.array([20.0, 7.0, 3.0]),
                                  session_starts=(starts, offsets))
    terms = LeaveTerms(hazard, 3, 3)
    users = np.array([0, 0, 0, 0, 0, 1, 2, 2])
    uniforms = np.array([0.0, 0.2499, 0.25, 0.5, 0.9999, 0.3, 0.0, 0.9999])
    np.testing.assert_array_equal(terms.start_activity(users, uniforms), [0, 0, 4, 9, 9, 7, 2, 2])
    np.testing.assert_array_equal(terms.start_activity(users, None), [20, 20, 20, 20, 20, 7, 3, 3])


def test_new_sessions_start_at_the_logged_users_session_start_distribution(tiny_model):
    """Opt-in start state: each new user's activity is a draw from its logged user's own session starts
    (here 0, 4, 9 at 1/4, 1/4, 1/2 for every user), one per new user; the first item's clock spent is the
    hazard at that activity. A lifetime model starts at the logged user's count."""
    default = _long_term(tiny_model, starts=_hand_starts(tiny_model))
    assert default.start_activity == "sessions" and default.for_lifetime().start_activity == "total"
    model = default.with_start_activity("drawn")
    assert model.start_activity == "drawn"
    n = 8000
    state = model.sample(n, np.random.default_rng(3))
    share = {value: float((state.activity == value).mean()) for value in (0.0, 4.0, 9.0)}
    assert sum(share.values()) == 1.0
    np.testing.assert_allclose([share[0.0], share[4.0], share[9.0]], [0.25, 0.25, 0.5], atol=0.02)  # sd 0.005
    replaced = state.activity.copy()
    model.replace(state, np.arange(n) < n // 2, np.random.default_rng(4))  # a new draw for each new user
    assert (state.activity[: n // 2] != replaced[: n // 2]).mean() > 0.4
    rng = np.random.default_rng(5)
    small = model.sample(6, rng)
    slates = _slates(model, 6, 3, rng)
    items = slates[:, 0]
    hazard = model.leave
    expected = hazard.probability(hazard.features(np.zeros(6), np.full(6, 4.0), np.zeros(6),
                                                  hazard.item_counts[items], small.activity))
    before = small.patience.astype(np.float64)
    model.update(small, slates, _click(model, small, slates, 0, 4.0), rng)
    np.testing.assert_allclose(before - small.patience, -np.log1p(-expected), rtol=2e-5, atol=2e-6)
    lifetime = model.for_lifetime()
    assert lifetime.start_activity == "total" and model.start_activity == "drawn"
    total = lifetime.sample(50, np.random.default_rng(3))
    np.testing.assert_array_equal(total.activity, model.leave.user_counts[total.logged])
    with pytest.raises(ConfigError, match="start_activity"):
        model.with_start_activity("median")


def _uneven_starts(model: FittedUserModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User ``u`` has ``1 + u % 3`` logged sessions; its ``k``-th starts at activity ``10u + k``, day ``3k + u``."""
    counts = 1 + np.arange(model.n_logged_users) % 3
    users = np.repeat(np.arange(model.n_logged_users), counts)
    index = np.concatenate([np.arange(m) for m in counts])
    return 10.0 * users + index, np.r_[0, np.cumsum(counts)], 3.0 * index + users


def test_the_default_start_is_a_uniform_training_session_with_its_state(tiny_model):
    """Known answer: every training session of an active user is equally likely (so users weigh by their
    session count), and a new user takes that session's user, activity, sessions before it (+ this one)
    and days; within a binomial tolerance over 30,000 draws."""
    starts, offsets, days = _uneven_starts(tiny_model)
    model = _long_term(tiny_model, starts=(starts, offsets, days))
    assert model.start_activity == DEFAULT_START_ACTIVITY == "sessions"
    n = 30000
    state = model.sample(n, np.random.default_rng(11))
    users = np.repeat(np.arange(model.n_logged_users), np.diff(offsets))
    pool = np.flatnonzero(np.isin(users, model.arrays.active_users))
    # Each drawn state is one logged session's: decode the session from (user, activity) and check the rest.
    session = offsets[state.logged] + (state.activity - 10.0 * state.logged).astype(np.int64)
    assert np.isin(session, pool).all()
    np.testing.assert_array_equal(users[session], state.logged)
    np.testing.assert_array_equal(state.sessions, session - offsets[state.logged] + 1.0)
    np.testing.assert_array_equal(state.days, days[session])
    share = np.bincount(session, minlength=len(starts))[pool] / n
    expected = 1.0 / len(pool)
    assert np.abs(share - expected).max() < 4.5 * np.sqrt(expected * (1 - expected) / n)
    again = model.sample(n, np.random.default_rng(11))  # one seed, one stream
    for name in ("logged", "activity", "sessions", "days", "patience"):
        np.testing.assert_array_equal(getattr(again, name), getattr(state, name), err_msg=name)
    replaced = state.logged.copy()
    model.replace(state, np.arange(n) < n // 2, np.random.default_rng(12))  # replaced users draw anew
    assert (state.logged[: n // 2] != replaced[: n // 2]).mean() > 0.5
    np.testing.assert_array_equal(state.logged[n // 2:], replaced[n // 2:])


def test_total_start_draws_the_stream_it_always_drew(tiny_model):
    """``"total"`` bit for bit as before the other modes: one integer per user over the active users, then
    the leave clocks; the logged user's count, sessions (+ this one) and span."""
    model = _long_term(tiny_model, starts=_hand_starts(tiny_model)).with_start_activity("total")
    state = model.sample(64, np.random.default_rng(13))
    rng = np.random.default_rng(13)
    active = model.arrays.active_users
    logged = active[rng.integers(0, len(active), size=64)]
    clocks = np.maximum(rng.standard_exponential(64).astype(np.float32), np.float32(np.finfo(np.float32).tiny))
    np.testing.assert_array_equal(state.logged, logged)
    np.testing.assert_array_equal(state.patience, clocks)
    np.testing.assert_array_equal(state.activity, model.leave.user_counts[logged])
    np.testing.assert_array_equal(state.sessions, np.diff(model.arrays.session_offsets)[logged] + 1.0)
    np.testing.assert_array_equal(state.days, model.arrays.user_span_days[logged])


def test_an_unknown_start_mode_is_refused_by_name(tiny_model):
    with pytest.raises(ConfigError, match="'latest'"):
        tiny_model.with_start_activity("latest")
    with pytest.raises(ConfigError, match="'Sessions'"):
        FittedUserModel(tiny_model.arrays, tiny_model.scales, tiny_model.dynamics, tiny_model.meta,
                        tiny_model.leave, tiny_model.returns, "Sessions")


def test_a_lifetime_env_runs_the_model_that_continues_the_logged_user(tiny_model):
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.lifetime import LifetimeConfig, LifetimeSimulation
    from recsim_env.env.rewards import WeightedReward

    model = _long_term(tiny_model, starts=_hand_starts(tiny_model)).with_start_activity("drawn")
    sim = LifetimeSimulation(model, None, EnvConfig(slate_size=2, n_candidates=3), WeightedReward(), 4,
                             LifetimeConfig())
    assert sim.model.start_activity == "total"
    sim.reset(0)
    np.testing.assert_array_equal(sim.state.activity, model.leave.user_counts[sim.state.logged])


def test_without_a_return_model_return_gaps_says_which_stage_is_missing(tiny_model, rng):
    assert tiny_model.returns is None  # the tiny log's gaps are all one hour: nothing to fit
    state = tiny_model.sample(3, rng)
    with pytest.raises(DataError, match="tiny: return_gaps needs the return model, which was not fitted: "
                                        "tiny: the return model needs gaps that vary"):
        tiny_model.return_gaps(state, np.arange(3), rng)
    tiny_model.start_session(state, np.arange(3), np.zeros(3), rng)  # the session env's own path still works


def test_replace_only_touches_masked_users(tiny_model, rng):
    state = tiny_model.sample(6, rng)
    state.patience[:] = -1.0
    before = state.interest.copy()
    mask = np.array([True, False, True, False, False, False])
    tiny_model.replace(state, mask, rng)
    assert (state.patience[mask] > 0).all() and (state.patience[~mask] == -1.0).all()
    np.testing.assert_array_equal(state.interest[~mask], before[~mask])


def test_save_load_round_trip(tiny_model, tmp_path, rng):
    path = tiny_model.save(tmp_path / "model.npz")
    loaded = FittedUserModel.load(path, expected_fingerprint=tiny_model.meta["fingerprint"])
    assert loaded.dynamics == tiny_model.dynamics and loaded.scales == tiny_model.scales
    for name in fitted_module.ARRAY_NAMES:
        np.testing.assert_array_equal(getattr(loaded.arrays, name), getattr(tiny_model.arrays, name))
    slates = _slates(tiny_model, 40, 4, rng)
    valid = np.ones((40, 4), dtype=bool)
    a = tiny_model.respond(tiny_model.sample(40, np.random.default_rng(1)), slates, valid, np.random.default_rng(2))
    b = loaded.respond(loaded.sample(40, np.random.default_rng(1)), slates, valid, np.random.default_rng(2))
    np.testing.assert_array_equal(a.choice, b.choice)
    np.testing.assert_array_equal(a.rating, b.rating)


def test_load_refuses_other_dataset(tiny_model, tmp_path):
    path = tiny_model.save(tmp_path / "model.npz")
    with pytest.raises(ArtifactError, match="fingerprint"):
        FittedUserModel.load(path, expected_fingerprint="0000000000000000")


def test_load_refuses_other_format_version(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(fitted_module, "FORMAT_VERSION", fitted_module.FORMAT_VERSION + 1)
    path = tiny_model.save(tmp_path / "model.npz")
    monkeypatch.undo()
    with pytest.raises(ArtifactError, match="format version"):
        FittedUserModel.load(path)


def test_load_refuses_a_leave_hazard_of_another_format_saying_refit(tiny_model, tmp_path, monkeypatch):
    path = tiny_model.save(tmp_path / "m.npz")
    monkeypatch.setattr(fitted_module, "LEAVE_FORMAT_VERSION", fitted_module.LEAVE_FORMAT_VERSION + 1)
    with pytest.raises(ArtifactError, match="leave hazard is of format .* refit"):
        FittedUserModel.load(path)


def test_load_refuses_other_library_version(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(recsim_env, "__version__", "0.0.0-other")
    path = tiny_model.save(tmp_path / "model.npz")
    monkeypatch.undo()
    with pytest.raises(ArtifactError, match="0.0.0-other"):
        FittedUserModel.load(path)


def test_load_refuses_garbage(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not an artifact")
    with pytest.raises(ArtifactError, match="junk.npz"):
        FittedUserModel.load(path)


@pytest.mark.parametrize("field, value", [("drift_rate", 1.5), ("fatigue_decay", 1.0), ("temperature", 0.0),
                                          ("drift_scale", -1.0), ("recent_len", 0), ("no_click_utility", float("nan"))])
def test_dynamics_validation_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        Dynamics(**{field: value})


def test_repeat_check_is_the_same_with_and_without_the_count_table(tiny_model, monkeypatch):
    """The count table (small catalogs) and the ring scan (large ones) agree, also after the ring wraps."""
    model = tiny_model.with_dynamics(recent_len=4)

    def run() -> list[np.ndarray]:
        rng = np.random.default_rng(7)
        state = model.sample(30, rng)
        out = []
        for _ in range(25):
            slates = rng.integers(0, 6, size=(30, 3))  # few distinct items: many repeats
            out.append(model._repeats(state, slates))
            model.update(state, slates, _click(model, state, slates, int(rng.integers(0, 3)), 5.0), rng)
        return out

    table = run()
    monkeypatch.setattr(fitted_module, "SEEN_TABLE_LIMIT", 0)
    scan = run()
    assert any(r.any() for r in table) and any((~r).any() for r in table)
    for a, b in zip(table, scan):
        np.testing.assert_array_equal(a, b)


def _one(state, row: int):
    """User ``row`` of ``state`` as its own one-user state (copies)."""
    return fitted_module.FittedState(**{name: getattr(state, name)[row:row + 1].copy() for name in vars(state)})


def _row(responses: Responses, row: int) -> Responses:
    return Responses(*(np.asarray(a)[row:row + 1] for a in responses))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 12), seed=st.integers(0, 2**31 - 1), fatigue=st.sampled_from([0.0, 1.5]),
       table=st.booleans())
def test_one_user_update_is_the_batched_update_exactly(tiny_model, n, seed, fatigue, table):
    """The scalar one-user update leaves every state array (query included) bit for bit as the batched one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fitted_module, "SEEN_TABLE_LIMIT", fitted_module.SEEN_TABLE_LIMIT if table else 0)
        _check_one_user_update(tiny_model, n, seed, fatigue)


def _check_one_user_update(tiny_model, n: int, seed: int, fatigue: float) -> None:
    model = _long_term(tiny_model, no_click=0.05, starts=_hand_starts(tiny_model)).with_dynamics(
        fatigue_strength=fatigue, recent_len=3, no_click_utility=-2.0).with_start_activity("drawn")
    rng = np.random.default_rng(seed)
    batch = model.sample(n, rng)
    singles = [_one(batch, row) for row in range(n)]
    clicked = 0
    for _ in range(12):
        slates = rng.integers(0, 5, size=(n, 3))  # few items: repeats, ring wrap-around
        responses = model.respond(batch, slates, np.ones((n, 3), dtype=bool), rng)
        clicked += int((responses.choice >= 0).sum())
        model.update(batch, slates, responses, rng)
        for row, single in enumerate(singles):
            model.update(single, slates[row:row + 1], _row(responses, row), rng)
    assert clicked > 0
    for row, single in enumerate(singles):
        for name in vars(batch):
            np.testing.assert_array_equal(getattr(single, name)[0], getattr(batch, name)[row], err_msg=name)
        np.testing.assert_allclose(model._utilities_one(single, slates[row]), model.utilities(batch, slates)[row],
                                   rtol=1e-6, atol=1e-6)


def test_one_user_responses_follow_the_batched_distribution(tiny_model, rng):
    """One user's scalar respond draws choices and ratings as the batched path does (same user, many draws)."""
    state = tiny_model.sample(1, rng)
    slate = _slates(tiny_model, 1, 5, rng)
    valid = np.ones((1, 5), dtype=bool)
    draws = 4000
    single = [tiny_model.respond(state, slate, valid, rng) for _ in range(draws)]
    tiled = fitted_module.FittedState(**{name: np.repeat(getattr(state, name), draws, axis=0) for name in vars(state)})
    batched = tiny_model.respond(tiled, np.repeat(slate, draws, axis=0), np.repeat(valid, draws, axis=0), rng)
    probs = tiny_model.choice_probabilities(state, slate, valid)[0]
    one_choice = np.array([r.choice[0] for r in single])
    for choices in (one_choice, batched.choice):
        freq = np.bincount(np.where(choices < 0, 5, choices), minlength=6) / draws
        np.testing.assert_allclose(freq, probs, atol=0.03)
    one_rating = np.concatenate([r.rating[0][r.click[0] > 0] for r in single])
    many_rating = batched.rating[batched.click > 0]
    assert one_rating.size > 200 and many_rating.size > 200
    assert abs(one_rating.mean() - many_rating.mean()) < 0.15
    assert set(np.unique(one_rating)) <= set(np.arange(1.0, 6.0))
    np.testing.assert_array_equal(np.array([r.like[0].sum() for r in single]),
                                  np.array([(r.rating[0] >= 4).sum() for r in single], dtype=np.float32))


def test_replace_draws_the_users_sample_would(tiny_model):
    """In-place replacement writes exactly the users a fresh sample draws from the same generator state."""
    rng = np.random.default_rng(5)
    state = tiny_model.sample(8, rng)
    slates = _slates(tiny_model, 8, 3, rng)
    tiny_model.update(state, slates, _click(tiny_model, state, slates, 0, 5.0), rng)
    mask = np.array([True, False, True, True, False, False, True, False])
    tiny_model.replace(state, mask, np.random.default_rng(9))
    fresh = tiny_model.sample(int(mask.sum()), np.random.default_rng(9))
    for name in vars(state):
        np.testing.assert_array_equal(getattr(state, name)[mask], getattr(fresh, name), err_msg=name)
    assert (state.clicks[~mask] == 1).all()


def test_a_state_built_without_a_query_scores_as_a_sampled_one(tiny_model, rng):
    """States built by hand (the fidelity report's) get their query from the model on first use."""
    model = tiny_model.with_dynamics(fatigue_strength=1.0)
    state = model.sample(6, rng)
    slates = _slates(model, 6, 4, rng)
    model.update(state, slates, _click(model, state, slates, 2, 4.0), rng)
    bare = fitted_module.FittedState(**{name: getattr(state, name).copy() for name in vars(state) if name != "query"})
    np.testing.assert_allclose(model.utilities(bare, slates), model.utilities(state, slates), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(bare.query, state.query)


def test_consumption_memory_is_the_same_for_non_contiguous_state_arrays(tiny_model):
    """The flat-index fast path and the 2-D fallback (a state built from views) remember the same items."""
    model = tiny_model.with_dynamics(recent_len=3)
    rng = np.random.default_rng(11)
    state = model.sample(6, rng)
    twin = fitted_module.FittedState(**{name: getattr(state, name).copy() for name in vars(state)})
    twin.recent, twin.seen = np.asfortranarray(twin.recent), np.asfortranarray(twin.seen)
    assert not twin.recent.flags.c_contiguous
    for step in range(8):
        slates = rng.integers(0, 5, size=(6, 3))
        responses = _click(model, state, slates, step % 3, 5.0)
        model.update(state, slates, responses, rng)
        model.update(twin, slates, responses, rng)
    for name in ("recent", "seen", "clicks", "query", "patience"):
        np.testing.assert_array_equal(getattr(twin, name), getattr(state, name), err_msg=name)
    assert state.seen.sum() == 6 * 3


def test_load_refuses_a_truncated_artifact_as_an_artifact_error(tiny_model, tmp_path):
    path = tiny_model.save(tmp_path / "model.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArtifactError, match=r"model\.npz: not a readable fitted user model artifact \("):
        FittedUserModel.load(path)


def test_a_truncated_cached_artifact_is_refitted_with_a_warning(tiny_log, tmp_path, monkeypatch, caplog):
    from recsim_env.fit import datasets as fitting

    early = tiny_log.with_interactions(tiny_log.interactions.iloc[::2], "tiny/early")
    monkeypatch.setattr(fitting, "dataset_splits", lambda dataset, cache_dir: (early, early))
    first, _ = fitting.fitted_user_model("tiny", "train", tmp_path, fitting.FitConfig.fast())
    (cached,) = (tmp_path / "models").glob("tiny-train-*.npz")
    cached.write_bytes(cached.read_bytes()[:1000])
    with caplog.at_level("WARNING", logger="recsim_env.fit.datasets"):
        again, _ = fitting.fitted_user_model("tiny", "train", tmp_path, fitting.FitConfig.fast())
    assert "refitting: cached artifact unusable" in caplog.text and cached.name in caplog.text
    np.testing.assert_array_equal(again.arrays.item_vectors, first.arrays.item_vectors)
    FittedUserModel.load(cached)  # the refit replaced the truncated file


def _save_with(model: FittedUserModel, path, **arrays: np.ndarray):
    """``model``'s artifact with some arrays swapped, written as a damaged file would be found."""
    model.save(path)
    with np.load(path) as npz:
        contents = {name: npz[name] for name in npz.files}
    np.savez(path, **{**contents, **arrays})
    return path


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_load_refuses_non_finite_arrays_naming_the_array(tiny_model, tmp_path, value):
    vectors = np.full_like(tiny_model.arrays.item_vectors, value)
    path = _save_with(tiny_model, tmp_path / "model.npz", item_vectors=vectors)
    count = vectors.size
    with pytest.raises(ArtifactError, match=rf"model\.npz: array 'item_vectors' has {count} non-finite values"):
        FittedUserModel.load(path)


def test_load_refuses_arrays_whose_shapes_disagree_naming_both(tiny_model, tmp_path):
    vectors = tiny_model.arrays.item_vectors
    half = vectors[: len(vectors) // 2]
    path = _save_with(tiny_model, tmp_path / "model.npz", item_vectors=half)
    with pytest.raises(ArtifactError, match=rf"model\.npz: array 'item_bias' has shape \({len(vectors)},\) but "
                                            rf"'item_vectors' has shape \({len(half)}, {vectors.shape[1]}\): they "
                                            r"disagree on the number of items"):
        FittedUserModel.load(path)
    users = tiny_model.arrays.user_pref.shape[0]
    path = _save_with(tiny_model, tmp_path / "model.npz", active_users=np.array([0, users]))
    with pytest.raises(ArtifactError, match=rf"array 'active_users' names user {users}, outside the {users} "
                                            r"users of 'user_pref'"):
        FittedUserModel.load(path)


def test_the_leave_hazard_and_return_model_travel_in_the_artifact(tiny_model, tmp_path):
    model = _long_term(tiny_model, no_click=0.03)
    loaded = FittedUserModel.load(model.save(tmp_path / "model.npz"))
    assert loaded.leave.feature_names == model.leave.feature_names and loaded.leave.no_click_probability == 0.03
    assert loaded.returns.covariate_names == model.returns.covariate_names

    def run(m: FittedUserModel) -> list[np.ndarray]:
        rng = np.random.default_rng(10)
        state = m.sample(40, rng)
        for _ in range(6):
            slates = _slates(m, 40, 4, rng)
            m.update(state, slates, m.respond(state, slates, np.ones((40, 4), dtype=bool), rng), rng)
        return [state.patience, m.return_gaps(state, np.arange(40), rng)]

    for a, b in zip(run(model), run(loaded)):
        np.testing.assert_array_equal(a, b)
    no_returns = FittedUserModel.load(tiny_model.save(tmp_path / "tiny.npz"))
    assert no_returns.returns is None and no_returns.meta["return_model_error"] == tiny_model.meta["return_model_error"]


def test_the_first_session_curve_in_the_simulator_is_the_hazards():
    """At activity 0 the simulator's log-odds adds ``first_session + 0.3 log1p(p) + 0.4 [p = 0]`` (HAND_LEAVE)
    to the curve of a later session; batched, one-user and the hazard's own design agree, past the table's
    first 64 positions too."""
    from recsim_env.users.fitted_longterm import LeaveTerms

    hazard = LeaveHazard.from_raw(-2.0, HAND_LEAVE, np.full(3, 5.0), np.array([0.0, 7.0, 3.0]))
    terms = LeaveTerms(hazard, 3, 3)
    position = np.array([0, 3, 70, 0, 3, 70])
    activity = np.array([0.0, 0.0, 0.0, 1e-9, 1e-9, 1e-9])  # a later session all but at activity 0
    items, rating, overlap = np.array([0, 1, 2, 0, 1, 2]), np.full(6, 3.0), np.full(6, 0.25)
    logits = terms.logits(position, items, activity, rating, overlap)
    extra = -1.0 + 0.3 * np.log1p(position[:3]) + 0.4 * (position[:3] == 0)
    np.testing.assert_allclose(logits[:3] - logits[3:], extra, atol=1e-8)
    one = [terms.cost_one(int(p), int(i), float(a), 3.0, 0.25) for p, i, a in zip(position, items, activity)]
    np.testing.assert_array_equal(np.array(one, np.float32), terms.costs(position, items, activity, rating, overlap))
    design = hazard.features(position, rating, overlap, hazard.item_counts[items], activity)
    np.testing.assert_allclose(terms.probability(position, items, activity, rating, overlap),
                               hazard.probability(design), rtol=1e-12)


def test_true_utilities_are_the_utilities_the_users_choose_by(tiny_model, rng):
    """The oracle's and planner's view of a fitted simulator is its own choice model: greedy on
    true_utilities shows the items of highest click probability, in that order (a hand check over one slate)."""
    state = tiny_model.sample(6, rng)
    items = rng.integers(0, tiny_model.n_items, size=(6, 12))
    truth = tiny_model.true_utilities(state, items)
    np.testing.assert_array_equal(truth, tiny_model.utilities(state, items))
    # Under the multinomial logit, the item of highest utility is the one most often chosen when all are shown.
    probs = tiny_model.choice_probabilities(state, items, np.ones(items.shape, dtype=bool))[:, :-1]
    slot_effect = tiny_model.choice_probabilities(state, np.repeat(items[:, :1], 12, axis=1),
                                                  np.ones(items.shape, dtype=bool))[:, :-1]
    ratio = probs / slot_effect  # each slot's probability over a slate of copies: the position effect divided out
    order = np.argsort(-truth, axis=1, kind="stable")
    np.testing.assert_array_equal(np.argmax(ratio, axis=1), order[:, 0])
