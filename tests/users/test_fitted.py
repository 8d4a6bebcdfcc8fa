"""FittedUserModel: batched shapes and invariants, dynamics (drift, fatigue, patience), the artifact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recsim_env
from recsim_env.errors import ArtifactError, ConfigError
from recsim_env.protocols import Responses, UserModel
from recsim_env.users import fitted as fitted_module
from recsim_env.users.fitted import Dynamics, FittedUserModel


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


def test_patience_runs_out_without_engagement(tiny_model, rng):
    state = tiny_model.sample(30, rng)
    slates = _slates(tiny_model, 30, 4, rng)
    for step in range(10_000):
        if tiny_model.left(state).all():
            break
        tiny_model.update(state, slates, _no_click(30, 4), rng)
    assert tiny_model.left(state).all()
    assert step < 10_000


def test_liked_items_raise_patience_and_poor_ratings_lower_it(tiny_model, rng):
    state = tiny_model.sample(8, rng)
    start = state.patience.copy()
    slates = _slates(tiny_model, 8, 3, rng)
    tiny_model.with_dynamics(tedium_cost=0.0).update(state, slates, _click(tiny_model, state, slates, 0, 5.0), rng)
    d = tiny_model.dynamics
    np.testing.assert_allclose(state.patience, start - d.step_cost + d.like_gain, rtol=1e-5)
    mid = state.patience.copy()
    tiny_model.with_dynamics(tedium_cost=0.0).update(state, slates, _click(tiny_model, state, slates, 1, 1.0), rng)
    np.testing.assert_allclose(state.patience, mid - d.step_cost - d.dislike_cost, rtol=1e-5)


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
                                          ("like_gain", -1.0), ("recent_len", 0), ("budget_scale", float("nan"))])
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
    model = tiny_model.with_dynamics(fatigue_strength=fatigue, recent_len=3, no_click_utility=-2.0)
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
