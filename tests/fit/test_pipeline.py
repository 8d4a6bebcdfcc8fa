"""fit_user_model and its parts: config validation, the rating model, sequences, caching, known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import ConfigError, DataError
from recsim_env.fit import datasets as fitting
from recsim_env.fit.config import FitConfig, config_from_meta
from recsim_env.fit.learners import fit_drift_weights
from recsim_env.fit.pipeline import (
    fit_user_model,
    sequence_states,
    tail_mask,
    user_feature_matrix,
)
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel


@pytest.mark.parametrize("field, value", [("embedding_dim", 0), ("epochs", 1.5), ("lr", 0.0), ("target_ctr", 1.0),
                                          ("holdout_fraction", 0.6), ("drift_grid", ()), ("drift_grid", (0.1, 2.0)),
                                          ("l2", -1.0), ("fatigue_decay", 1.0), ("no_click_leave", 1.5)])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        FitConfig(**{field: value})


def test_too_small_log_is_refused(tiny_log):
    few = tiny_log.with_interactions(tiny_log.interactions.head(5))
    with pytest.raises(DataError, match="too few"):
        fit_user_model(few, FitConfig.fast())


def test_rating_model_beats_the_global_mean(tiny_log):
    split = leave_one_out(tiny_log)
    model = fit_user_model(split.train, FitConfig.fast(epochs=20))
    test = split.test.interactions
    state = model.sample(len(test), np.random.default_rng(0))
    state.logged[:] = test["user"].to_numpy()
    pred = model.expected_rating(state, test["item"].to_numpy()[:, None])[:, 0]
    truth = test["rating"].to_numpy()
    rmse = np.sqrt(np.mean((pred - truth) ** 2))
    baseline = np.sqrt(np.mean((split.train.interactions["rating"].mean() - truth) ** 2))
    assert rmse < 0.8 * baseline


def test_fit_is_deterministic_for_a_seed(tiny_log, tiny_model):
    again = fit_user_model(tiny_log, FitConfig.fast())
    np.testing.assert_array_equal(again.arrays.user_pref, tiny_model.arrays.user_pref)
    np.testing.assert_array_equal(again.arrays.rating_item, tiny_model.arrays.rating_item)
    assert again.dynamics == tiny_model.dynamics


def test_the_worker_process_fits_what_the_fit_in_turn_fits(tiny_log, tiny_model, monkeypatch):
    """A long log fits ratings, leave hazard and return model in a forked worker beside the relevance fit:
    every fitted array is the one the fit in turn gives (the rating model starts from the same RNG state)."""
    from recsim_env.fit import pipeline

    monkeypatch.setattr(pipeline, "_worker_wanted", lambda n_interactions: True)
    forked = fit_user_model(tiny_log, FitConfig.fast())
    for name, value in vars(tiny_model.arrays).items():
        np.testing.assert_array_equal(getattr(forked.arrays, name), value, err_msg=name)
    assert forked.scales == tiny_model.scales and forked.dynamics == tiny_model.dynamics
    header, arrays = forked.leave.to_parts()
    expected_header, expected_arrays = tiny_model.leave.to_parts()
    for name, value in expected_arrays.items():
        np.testing.assert_array_equal(arrays[name], value, err_msg=name)
    assert header["intercept"] == expected_header["intercept"]
    assert (forked.returns is None) == (tiny_model.returns is None)
    if tiny_model.returns is not None:
        np.testing.assert_array_equal(forked.returns.coefficients, tiny_model.returns.coefficients)


def test_a_failure_in_the_worker_is_raised_in_the_fit(tiny_log, monkeypatch):
    from recsim_env.fit import pipeline

    def broken(*args, **kwargs):
        raise DataError("the rating fit broke")

    monkeypatch.setattr(pipeline, "_worker_wanted", lambda n_interactions: True)
    monkeypatch.setattr(pipeline, "_fit_responses", broken)
    with pytest.raises(DataError, match="the rating fit broke"):
        fit_user_model(tiny_log, FitConfig.fast())


def test_fit_records_provenance(tiny_log, tiny_model):
    meta = tiny_model.meta
    assert meta["dataset"] == "tiny" and meta["fingerprint"] == tiny_log.fingerprint()
    assert config_from_meta(meta) == FitConfig.fast()
    assert meta["fatigue_source"] == "fitted"


def test_user_features_standardise_numbers_and_one_hot_categories():
    users = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "age": ["20", "30", "40", "50"],
                          "job": ["x", "y", "x", None], "zip": ["1", "2", "3", "A4"]})
    feats, names = user_feature_matrix(users, max_categories=3)
    assert names == ["age", "job=x", "job=y"]  # zip has 4 levels > 3: left out
    np.testing.assert_allclose(feats[:, 0].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(feats[:, 0].std(), 1.0, atol=1e-6)
    np.testing.assert_array_equal(feats[:, 1:], [[1, 0], [0, 1], [1, 0], [0, 0]])


def test_tail_mask_holds_out_the_last_share_of_each_user():
    users = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    mask = tail_mask(users, 0.2)
    np.testing.assert_array_equal(np.flatnonzero(mask), [8, 9])  # user 1: floor(0.6) = 0 rows


def _sequence_log(timestamps: list[int]) -> InteractionLog:
    inter = pd.DataFrame(
        {
            "user": np.zeros(len(timestamps), np.int32),
            "item": np.arange(len(timestamps), dtype=np.int32),
            "timestamp": np.array(timestamps, np.int64),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [str(i) for i in range(len(timestamps))],
            "title": "",
            "genres": [()] * len(timestamps),
            "year": np.nan,
        }
    )
    return InteractionLog(inter, items, pd.DataFrame({"user_id": ["u"]}), "seq")


def test_sequence_states_are_an_ema_and_fatigue_restarts_each_session():
    log = _sequence_log([0, 60, 120, 100_000])  # the last interaction opens a new session
    vectors = np.eye(4, dtype=np.float32)
    genres = np.eye(4, dtype=np.float32)
    h, f, final = sequence_states(log, vectors, genres, rate=0.5, fatigue_decay=0.5, gap=1800)
    np.testing.assert_allclose(h[0], 0.0)
    np.testing.assert_allclose(h[2], [0.25, 0.5, 0, 0])
    np.testing.assert_allclose(final[0], [0.0625, 0.125, 0.25, 0.5])
    np.testing.assert_allclose(f[2], [0.5, 1.0, 0, 0])
    np.testing.assert_allclose(f[3], 0.0)  # new session: no fatigue carried over


def test_sequence_states_of_some_rows_are_those_rows_of_all(tiny_log, rng):
    """The row-subset form (what the drift fit asks for, memory O(rows)) gives the same bits, in the rows' order."""
    vectors = rng.normal(size=(tiny_log.n_items, 4)).astype(np.float32)
    genres = rng.random((tiny_log.n_items, 3)).astype(np.float32)
    rows = rng.choice(tiny_log.n_interactions, 50, replace=False)
    h, f, final = sequence_states(tiny_log, vectors, genres, 0.3, 0.7, 1800)
    some_h, some_f, some_final = sequence_states(tiny_log, vectors, genres, 0.3, 0.7, 1800, rows)
    np.testing.assert_array_equal(some_h, h[rows])
    np.testing.assert_array_equal(some_f, f[rows])
    np.testing.assert_array_equal(some_final, final)


def test_log_without_ratings_gives_zero_ratings(tiny_log, rng):
    implicit = tiny_log.with_interactions(tiny_log.interactions.drop(columns=["rating"]))
    model = fit_user_model(implicit, FitConfig.fast())
    assert not model.scales.has_rating
    state = model.sample(100, rng)
    slates = rng.integers(0, model.n_items, (100, 5))
    r = model.respond(state, slates, np.ones((100, 5), bool), rng)
    assert (r.choice >= 0).any() and (r.rating == 0).all() and (r.like == 0).all()


def test_log_with_dwell_gives_dwell(tiny_log, rng):
    inter = tiny_log.interactions.assign(dwell=np.float32(120.0))
    model = fit_user_model(tiny_log.with_interactions(inter), FitConfig.fast())
    state = model.sample(100, rng)
    slates = rng.integers(0, model.n_items, (100, 5))
    r = model.respond(state, slates, np.ones((100, 5), bool), rng)
    clicked = r.choice >= 0
    np.testing.assert_allclose(r.dwell[clicked, r.choice[clicked]], 120.0, rtol=1e-3)


def test_fitted_user_model_caches_the_artifact(tiny_log, tmp_path, monkeypatch):
    calls = []
    early = tiny_log.with_interactions(tiny_log.interactions.iloc[::2], "tiny/early")
    monkeypatch.setattr(fitting, "dataset_splits", lambda dataset, cache_dir: (early, early))
    real_fit = fitting.fit_user_model
    monkeypatch.setattr(fitting, "fit_user_model", lambda log, config: calls.append(1) or real_fit(log, config))
    first, catalog = fitting.fitted_user_model("tiny", "train", tmp_path, FitConfig.fast())
    second, _ = fitting.fitted_user_model("tiny", "train", tmp_path, FitConfig.fast())
    assert len(calls) == 1 and list((tmp_path / "models").glob("tiny-train-*.npz"))
    np.testing.assert_array_equal(first.arrays.item_vectors, second.arrays.item_vectors)
    assert catalog.n_items == tiny_log.n_items


def test_unknown_split_is_refused():
    with pytest.raises(ConfigError, match="split"):
        fitting.movielens_user_model(split="test")


@pytest.mark.slow
def test_known_answer_on_synthetic_logs():
    """Fit on logs of the synthetic ground-truth model and recover what it knows.

    Tolerances: the fitted topic affinities (mean utility per topic, centred over users and topics)
    correlate >= 0.4 with the true interests per user on average; without drift in the truth the
    fitted drift rate is 0; the fitted fatigue is below 0.35 when the truth has none and at least
    0.4 above that when the truth's fatigue weight is 1.5 (the scales differ: the truth decays
    fatigue per step, the fit per consumed item).
    """
    fit = FitConfig(embedding_dim=16, epochs=10, l2=0.01, drift_events=1000)
    fitted = {}
    for weight in (0.0, 1.5):
        truth = SyntheticUserModel(SyntheticConfig(n_users=300, n_items=200, fatigue_weight=weight,
                                                   drift_rate=0.0, clickbait_appeal=0.0))
        fitted[weight] = fit_user_model(truth.generate_log(300, np.random.default_rng(0)), fit)
    model = fitted[0.0]
    a = model.arrays
    scores = a.user_pref @ a.item_vectors.T + a.item_bias
    affinity = np.stack([scores[:, truth.item_topic == t].mean(axis=1) for t in range(truth.config.n_topics)], 1)
    interest = truth.population_interest[:300].copy()
    for m in (affinity, interest):
        m -= m.mean(axis=0)
        m -= m.mean(axis=1, keepdims=True)
    corr = np.mean([np.corrcoef(affinity[u], interest[u])[0, 1] for u in range(300)])
    assert corr >= 0.4
    assert model.dynamics.drift_rate == 0.0
    assert fitted[0.0].meta["fitted_fatigue"] < 0.35
    assert fitted[1.5].meta["fitted_fatigue"] > fitted[0.0].meta["fitted_fatigue"] + 0.4


def test_a_log_without_timestamps_fits_the_hazard_alone_and_the_session_env_runs(tiny_log):
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv

    frame = tiny_log.interactions.drop(columns=["timestamp"]).reset_index(drop=True)
    clockless = InteractionLog.from_frames(
        pd.DataFrame({"user_id": tiny_log.users["user_id"].to_numpy()[frame["user"]],
                      "item_id": tiny_log.items["item_id"].to_numpy()[frame["item"]], "rating": frame["rating"]}),
        tiny_log.items, tiny_log.users, ColumnMapping(timestamp=None, rating="rating", genres="genres"),
        name="clockless")
    model = fit_user_model(clockless, FitConfig.fast())
    assert model.returns is None and "the return model needs timestamps" in model.meta["return_model_error"]
    assert model.leave.meta["source"] == "fitted"  # one session per user: the hazard still has both outcomes
    env = RecVectorEnv(model, config=EnvConfig(slate_size=3, n_candidates=10, step_cap=500), num_envs=8)
    env.reset(seed=0)
    ended = 0
    for _ in range(200):  # every logged session is 15 items long: the hazard ends sessions near there
        _, _, terminated, truncated, _ = env.step(np.tile(np.arange(3), (8, 1)))
        ended += int(terminated.sum())
    assert ended > 0


def _autograd_drift_weights(base, drift, fatigue, positives):
    """The drift fit as it was before its gradient was written out (autograd through the whole table)."""
    tables = [torch.from_numpy(a) for a in (base, drift, fatigue)]
    pos = torch.from_numpy(positives)
    params = [torch.zeros((), requires_grad=True) for _ in range(3)]
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=20, line_search_fn="strong_wolfe")
    rows = torch.arange(len(pos))

    def nll():
        logits = torch.exp(params[2]) * (tables[0] + torch.exp(params[0]) * tables[1] - params[1] * tables[2])
        return (torch.logsumexp(logits, dim=1) - logits[rows, pos]).mean()

    def closure():
        opt.zero_grad()
        loss = nll()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(nll()), float(torch.exp(params[0])), float(params[1]), float(torch.exp(params[2]))


def test_drift_weights_match_the_autograd_fit(rng):
    """Known answer: the blocked, written-out gradient reaches the autograd fit's optimum."""
    events, items = 300, 5000  # more items than one block holds: the blocks are summed
    base = rng.normal(size=(events, items)).astype(np.float32)
    drift = rng.normal(size=(events, items)).astype(np.float32)
    fatigue = rng.random((events, items)).astype(np.float32)
    logits = 0.7 * (base + 0.5 * drift - 0.8 * fatigue)
    positives = np.array([rng.choice(items, p=np.exp(r - r.max()) / np.exp(r - r.max()).sum()) for r in logits])
    fitted = fit_drift_weights(base, drift, fatigue, positives)
    # The reference in float64: the optimum is flat (the NLL agrees to 1e-8), and where L-BFGS stops in it
    # moves by ~1e-3 with float32 noise (the float32 autograd fit stops 8e-4 from the float64 one in γ).
    reference = _autograd_drift_weights(*(a.astype(np.float64) for a in (base, drift, fatigue)), positives)
    np.testing.assert_allclose(fitted[0], reference[0], rtol=1e-7)
    np.testing.assert_allclose(fitted[1:], reference[1:], rtol=1e-3, atol=2e-5)
