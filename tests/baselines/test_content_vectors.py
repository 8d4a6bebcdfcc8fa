"""The content model on precomputed item vectors (``text_encoder="vectors"``), generated here.

The generated vectors carry each item's genre (one-hot, scaled by 50, plus noise) and nothing of its
title, so what the model learns of the genres it learns through them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from recommender_suite import preferred_genre_auc
from test_sentence_encoder import FAST, cold_item_auc
from tinylog import GENRES

from baselines.content import ContentConfig, ContentRecommender
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import ConfigError, DataError
from recsim_env.evaluation.offline import item_cold_start


def write_genre_vectors(log, path, width: int = 12, scale: float = 50.0) -> np.ndarray:
    """A CSV of item_id + ``width`` components: the item's genre one-hot plus noise, times ``scale``."""
    rng = np.random.default_rng(1)
    genre = np.arange(log.n_items) % len(GENRES)
    vectors = 0.3 * rng.standard_normal((log.n_items, width))
    vectors[np.arange(log.n_items), genre] += 1.0
    table = pd.DataFrame(scale * vectors, columns=[f"v{k}" for k in range(width)])
    table.insert(0, "item_id", log.item_ids)
    table.iloc[::-1].to_csv(path, index=False)  # rows in another order than the log's: aligned by id
    return scale * vectors


def _config(path) -> ContentConfig:
    return ContentConfig(dim=16, history=10, text_encoder="vectors", item_vectors=str(path))


def test_the_projection_of_the_vectors_learns_the_genres_and_a_saved_model_needs_no_file(tiny_log, tmp_path):
    raw = write_genre_vectors(tiny_log, tmp_path / "vectors.csv")
    model = ContentRecommender(_config(tmp_path / "vectors.csv"), FAST).fit(leave_one_out(tiny_log))
    assert preferred_genre_auc(model, tiny_log) > 0.75
    # Kept as they came, scaled by one factor to a mean norm of 1.
    np.testing.assert_allclose(model.text_vectors * np.linalg.norm(raw, axis=1).mean(), raw, rtol=1e-5)
    assert "text_vectors" in model.module.state_dict() and "words.weight" not in model.module.state_dict()
    path = model.save(tmp_path / "content-vectors")
    (tmp_path / "vectors.csv").unlink()
    loaded = ContentRecommender.load(path, log=tiny_log)
    np.testing.assert_allclose(loaded.score([0, 3], np.arange(20)), model.score([0, 3], np.arange(20)), rtol=1e-6)


def test_cold_items_rank_by_their_vectors(tiny_log, tmp_path):
    write_genre_vectors(tiny_log, tmp_path / "vectors.csv")
    train, _ = item_cold_start(tiny_log, held_out_fraction=0.3, n_negatives=5, seed=0)
    model = ContentRecommender(_config(tmp_path / "vectors.csv"), FAST).fit(leave_one_out(train))
    assert cold_item_auc(model, tiny_log, train) > 0.8  # popularity: 0.5 (every cold item has count 0)


def test_exported_embeddings_are_the_projected_vectors(tiny_log, tmp_path):
    write_genre_vectors(tiny_log, tmp_path / "vectors.csv")
    model = ContentRecommender(_config(tmp_path / "vectors.csv"), FAST).fit(leave_one_out(tiny_log))
    users, items, towers = model.embeddings()
    assert items.shape == (tiny_log.n_items, 16) and users.shape == (tiny_log.n_users, 16)
    expected = model.text_vectors @ towers["project.weight"].T + towers["project.bias"]
    np.testing.assert_allclose(items, expected, rtol=1e-5, atol=1e-6)


def test_a_vectors_file_missing_an_item_fails_the_fit_naming_file_and_item(tiny_log, tmp_path):
    write_genre_vectors(tiny_log, tmp_path / "vectors.csv")
    lines = (tmp_path / "vectors.csv").read_text().splitlines()
    missing = lines[1].split(",")[0]
    (tmp_path / "short.csv").write_text("\n".join([lines[0]] + lines[2:]) + "\n")
    with pytest.raises(DataError, match=rf"short.csv: no vector for item\(s\) '{missing}'"):
        ContentRecommender(_config(tmp_path / "short.csv"), FAST).fit(leave_one_out(tiny_log))


@pytest.mark.parametrize("kwargs, match", [
    ({"text_encoder": "vectors"}, "item_vectors .a file. goes with text_encoder='vectors' and only with it"),
    ({"item_vectors": "v.csv"}, r"got text_encoder='trained', item_vectors='v.csv'"),
    ({"text_encoder": "clip"}, "text_encoder must be 'trained', 'minilm' or 'vectors', got 'clip'"),
])
def test_config_pairs_the_vectors_encoder_with_a_file(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ContentConfig(**kwargs)
