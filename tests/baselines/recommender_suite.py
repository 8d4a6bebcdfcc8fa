"""A reusable test suite every baseline inherits (in the style of LensKit's ``ScorerTests``).

A subclass sets ``make`` (a factory of an unfitted model). A personalised model also inherits
:class:`LearnsPreferences`: it must rank each user's unseen preferred-genre items above the other
unseen items of the tiny log far better than chance (AUC above ``min_auc``).
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np
import pytest
from tinylog import GENRES, make_tiny_log

from baselines.base import ScoringRecommender
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import ArtifactError, ConfigError, DataError
from recsim_env.evaluation import metrics


def preferred_genre_auc(model: ScoringRecommender, log: InteractionLog) -> float:
    """Mean over users of the AUC of unseen preferred-genre items vs unseen other items."""
    item_genre = np.arange(log.n_items) % len(GENRES)
    values = []
    for u in range(log.n_users):
        seen = model.seen(u)
        liked = np.bincount(item_genre[seen], minlength=len(GENRES)).argmax()
        unseen = np.setdiff1d(np.arange(log.n_items), seen)
        scores = model.score([u], unseen)[0]
        pos, neg = scores[item_genre[unseen] == liked], scores[item_genre[unseen] != liked]
        if pos.size and neg.size:
            values.append(metrics.auc(pos, neg))
    return float(np.mean(values))


def observation(cands: np.ndarray, users: np.ndarray, history: np.ndarray) -> dict[str, np.ndarray]:
    n = len(cands)
    return {"user_index": users.reshape(n, 1).astype(np.int64), "user_features": np.zeros((n, 3), np.float32),
            "history_items": history.astype(np.int64),
            "history_responses": np.zeros((n, history.shape[1], 3), np.float32),
            "candidates": cands.astype(np.int64), "context": np.zeros((n, 4), np.float32)}


class LearnsPreferences:
    """The known-answer learning test of a personalised model (mixed into a RecommenderSuite)."""

    min_auc: ClassVar[float] = 0.75

    def test_learns_preferred_genre(self, fitted, tiny_log):
        assert preferred_genre_auc(fitted, tiny_log) > self.min_auc


class RecommenderSuite:
    make: ClassVar[Callable[[], ScoringRecommender]]

    # A classmethod: a class-scoped fixture runs once per class, so an instance method's ``self`` would be
    # one test's instance only (pytest 9.1 deprecates that form; pytest 10 removes it).
    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, tiny_log: InteractionLog) -> ScoringRecommender:
        return cls.make().fit(leave_one_out(tiny_log))

    def test_scores_have_the_asked_shape_and_are_finite(self, fitted, tiny_log):
        scores = fitted.score(np.arange(5), np.tile(np.arange(7), (5, 1)))
        assert scores.shape == (5, 7) and np.isfinite(scores).all()
        assert fitted.score([1, 2], [3, 4, 5]).shape == (2, 3)

    def test_unknown_users_get_popularity_and_unknown_items_rank_last(self, fitted, tiny_log):
        scores = fitted.score([-1, tiny_log.n_users + 5], [0, 1, tiny_log.n_items, -3])
        np.testing.assert_array_equal(scores[:, :2], np.tile(fitted.counts[[0, 1]], (2, 1)))
        assert np.isneginf(scores[:, 2:]).all()

    def test_recommend_excludes_seen_items_and_checks_k(self, fitted, tiny_log):
        recs = fitted.recommend([0, 1], 5)
        assert recs.shape == (2, 5) and recs.dtype == np.int64
        for row, u in enumerate([0, 1]):
            assert not set(recs[row].tolist()) & set(fitted.seen(u).tolist())
            assert len(set(recs[row].tolist())) == 5
        with pytest.raises(ConfigError, match="k=61"):
            fitted.recommend([0], tiny_log.n_items + 1)

    def test_predict_batched_and_unbatched_without_repeats(self, fitted, tiny_log):
        fitted.slate_size = 3
        rng = np.random.default_rng(0)
        cands = np.stack([rng.choice(tiny_log.n_items, 8, replace=False) for _ in range(4)])
        cands[0, 5] = cands[0, 1]  # a repeated candidate item must not be shown twice
        history = np.full((4, 5), -1)
        history[3, 2:] = [1, 5, 9]
        obs = observation(cands, np.array([0, 1, -1, -1]), history)
        action, state = fitted.predict(obs)
        assert action.shape == (4, 3) and action.dtype == np.int64 and state is None
        assert ((action >= 0) & (action < 8)).all()
        for row in range(4):
            assert len(set(cands[row, action[row]].tolist())) == 3
        single, _ = fitted.predict({k: v[1] for k, v in obs.items()})
        np.testing.assert_array_equal(single, action[1])
        best = np.argsort(-fitted.score([1], cands[1])[0], kind="stable")[:3]
        np.testing.assert_array_equal(action[1], best)

    def test_predict_needs_slate_size_and_enough_candidates(self, fitted, tiny_log):
        obs = observation(np.arange(4)[None], np.array([0]), np.full((1, 3), -1))
        saved = fitted.slate_size
        try:
            fitted.slate_size = None
            with pytest.raises(ConfigError, match="slate_size"):
                fitted.predict(obs)
            fitted.slate_size = 5
            with pytest.raises(ConfigError, match="4 candidates"):
                fitted.predict(obs)
        finally:
            fitted.slate_size = saved

    def test_save_load_round_trip(self, fitted, tiny_log, tmp_path):
        path = fitted.save(tmp_path / "model")
        loaded = type(fitted).load(path, log=tiny_log)
        users, items = np.arange(6), np.tile(np.arange(10), (6, 1))
        np.testing.assert_allclose(loaded.score(users, items), fitted.score(users, items), rtol=1e-6)
        np.testing.assert_array_equal(loaded.recommend([0], 4), fitted.recommend([0], 4))
        assert type(ScoringRecommender.load(path)) is type(fitted)
        if hasattr(fitted, "train_config"):
            assert loaded.train_config == fitted.train_config

    def test_load_refuses_other_models_and_vocabularies(self, fitted, tiny_log, tmp_path):
        from baselines.popularity import Popularity, RandomScores

        path = fitted.save(tmp_path / "model.npz")
        other = RandomScores if not isinstance(fitted, RandomScores) else Popularity
        with pytest.raises(ArtifactError, match="not a"):
            other.load(path)
        with pytest.raises(ArtifactError, match="items"):
            type(fitted).load(path, log=make_tiny_log(n_items=64))
        with pytest.raises(ArtifactError, match="no such checkpoint"):
            type(fitted).load(tmp_path / "missing.npz")

    def test_fit_refuses_empty_and_single_user_logs(self, tiny_log):
        empty = tiny_log.with_interactions(tiny_log.interactions.iloc[:0])
        with pytest.raises(DataError, match="no interactions"):
            type(self).make().fit(empty)
        one = tiny_log.with_interactions(tiny_log.interactions[tiny_log.interactions["user"] == 3])
        with pytest.raises(DataError, match="1 user"):
            type(self).make().fit(one)
