"""New users from demographics: the ridge map, MF-BPR's and NeuMF's demographic start, the new-user protocol."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from baselines.demographics import UserFeatureMap, encode_user_features, hold_out_users
from baselines.mf import BPRMF, MFConfig
from baselines.ncf import NCFConfig, NeuMF
from baselines.training import LoopConfig
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import DataError

FAST = LoopConfig(epochs=30, batch_size=64, lr=2e-2, weight_decay=0.0, patience=30, refit_epochs=0,
                  recency_half_life=None)
N_WOMEN = 10
N_MEN = 14  # more men: popularity favours the men's items, so the fallback ranks a new woman wrong


def gendered_log() -> InteractionLog:
    """Women consume items 0-9, men items 10-19 (the last woman is held out: :func:`without_new_woman`)."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(N_WOMEN + N_MEN):
        liked = np.arange(10) if user < N_WOMEN else np.arange(10, 20)
        for step, item in enumerate(rng.permutation(liked)[:8]):
            rows.append({"user_id": f"u{user}", "item_id": f"i{item}", "timestamp": step})
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(N_WOMEN + N_MEN)],
                          "gender": ["F" if u < N_WOMEN else "M" for u in range(N_WOMEN + N_MEN)],
                          "age": [20 + u % 7 for u in range(N_WOMEN + N_MEN)]})
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(20)]})
    return InteractionLog.from_frames(pd.DataFrame(rows), items, users, name="gendered")


def without_new_woman(log: InteractionLog) -> InteractionLog:
    """The log without the new woman's interactions (she stays in the users table, features and all)."""
    inter = log.interactions
    return log.with_interactions(inter[inter["user"] != new_woman(log)], "gendered/known")


def new_woman(log: InteractionLog) -> int:
    return int(np.flatnonzero(log.user_ids == f"u{N_WOMEN - 1}")[0])


def womens_item_share(scores: np.ndarray, log: InteractionLog) -> float:
    """Share of the top-10 items that are women's items (0-9)."""
    top = np.argsort(-scores)[:10]
    return float(np.isin(log.item_ids[top], [f"i{i}" for i in range(10)]).mean())


@pytest.fixture(scope="module")
def log() -> InteractionLog:
    return gendered_log()


@pytest.fixture(scope="module")
def model(log) -> BPRMF:
    return BPRMF(MFConfig(dim=8, cold_user_alpha=1.0), FAST).fit(leave_one_out(without_new_woman(log)))


def test_map_recovers_a_linear_map_and_falls_back_to_the_mean():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 3))
    weights = rng.normal(size=(3, 4))
    embeddings = features @ weights + np.array([1.0, -2.0, 0.5, 0.0])
    fitted = UserFeatureMap(alpha=1e-6).fit(features, embeddings)
    np.testing.assert_allclose(fitted.predict(features[:5]), embeddings[:5], atol=1e-6)
    no_features = UserFeatureMap().fit(np.zeros((200, 0)), embeddings)
    np.testing.assert_allclose(no_features.predict(np.zeros((2, 0))), np.tile(embeddings.mean(0), (2, 1)))
    with pytest.raises(DataError, match="fitted on 3 features, got 2"):
        fitted.predict(features[:, :2])


def test_encoding_is_one_hot_gender_and_standardised_age(log):
    features = encode_user_features(log.users)
    assert features.shape == (N_WOMEN + N_MEN, 3)  # gender=F, gender=M, age (the table's column order)
    np.testing.assert_array_equal(features[:, 0], (log.users["gender"] == "F").to_numpy())
    assert abs(features[:, 2].mean()) < 1e-6 and abs(features[:, 2].std() - 1.0) < 1e-6


def test_new_woman_starts_among_womens_items_not_popularity(log, model):
    user = new_woman(log)
    assert not model.known_users(np.array([user]))[0]
    assert womens_item_share(model.score([user], np.arange(20))[0], log) >= 0.8
    fallback = BPRMF(MFConfig(dim=8, cold_user_features=False), FAST).fit(leave_one_out(without_new_woman(log)))
    np.testing.assert_array_equal(fallback.score([user], np.arange(20))[0], fallback.counts)


def test_env_user_outside_the_log_starts_from_observed_features(log, model):
    woman = encode_user_features(log.users)[new_woman(log)]
    obs = {"candidates": np.arange(20)[None], "user_index": np.array([-1]),
           "history_items": np.full((1, 3), -1), "user_features": woman[None].astype(np.float32)}
    assert womens_item_share(model.score_observation(obs)[0], log) >= 0.8


def test_checkpoint_keeps_the_demographic_start(log, model, tmp_path):
    user = new_woman(log)
    loaded = BPRMF.load(model.save(tmp_path / "mf"))
    np.testing.assert_allclose(loaded.score([user], np.arange(20)), model.score([user], np.arange(20)))


def test_new_user_protocol_holds_users_out_entirely(log):
    train, ranking = hold_out_users(log, fraction=0.25, n_negatives=5, seed=3)
    held = set(ranking.users.tolist())
    assert len(held) == 6  # a quarter of the 24 users
    assert held.isdisjoint(train.interactions["user"].tolist())
    first = log.interactions.groupby("user").head(1).set_index("user")["item"]
    np.testing.assert_array_equal(ranking.candidates[:, 0], first.loc[ranking.users].to_numpy())
    assert train.n_users == log.n_users  # held-out users keep their features


NCF_SMALL = NCFConfig(dim=8, layers=(16, 8), pretrain=False, cold_user_features=True, cold_user_alpha=1.0)


@pytest.fixture(scope="module")
def neumf(log) -> NeuMF:
    return NeuMF(NCF_SMALL, FAST).fit(leave_one_out(without_new_woman(log)))


@pytest.fixture(scope="module")
def neumf_fallback(log) -> NeuMF:
    """The same training (one seed), without the demographic start."""
    return NeuMF(replace(NCF_SMALL, cold_user_features=False), FAST).fit(leave_one_out(without_new_woman(log)))


def test_neumf_new_woman_starts_among_womens_items_not_popularity(log, neumf, neumf_fallback):
    user = new_woman(log)
    assert not neumf.known_users(np.array([user]))[0]
    assert womens_item_share(neumf.score([user], np.arange(20))[0], log) >= 0.8
    np.testing.assert_array_equal(neumf_fallback.score([user], np.arange(20))[0], neumf_fallback.counts)
    assert womens_item_share(neumf_fallback.counts, log) < 0.5


def test_neumf_in_the_env_starts_from_features_until_the_first_click(log, neumf, neumf_fallback):
    woman = encode_user_features(log.users)[new_woman(log)].astype(np.float32)
    for index in (new_woman(log), -1):  # in the users table, and outside it (features from the observation)
        obs = {"candidates": np.arange(20)[None], "user_index": np.array([index]),
               "history_items": np.full((1, 3), -1), "user_features": woman[None]}
        assert womens_item_share(neumf.score_observation(obs)[0], log) >= 0.8
    # A click takes over: the history-aware vector, as before the demographic start.
    clicked = {"candidates": np.arange(20)[None], "user_index": np.array([-1]),
               "history_items": np.array([[-1, -1, 12]]), "user_features": woman[None]}
    np.testing.assert_allclose(neumf.score_observation(clicked), neumf_fallback.score_observation(clicked))


def test_neumf_start_is_the_vectors_the_map_predicts_and_survives_a_checkpoint(log, neumf, tmp_path):
    user = new_woman(log)
    start = neumf.feature_map.predict(neumf.user_features[[user]])
    assert start.shape == (1, 8 + 8)  # the GMF and the MLP user vectors side by side
    known = np.arange(5)  # a known user's own vectors score as score() does: the layout is the model's
    np.testing.assert_allclose(neumf._score_vectors(neumf._user_vectors()[known], np.tile(np.arange(20), (5, 1))),
                               neumf.score(known, np.arange(20)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(neumf.score([user], np.arange(20)), neumf._score_vectors(start, np.arange(20)[None]))
    loaded = NeuMF.load(neumf.save(tmp_path / "neumf"))
    np.testing.assert_allclose(loaded.score([user], np.arange(20)), neumf.score([user], np.arange(20)), rtol=1e-6)
