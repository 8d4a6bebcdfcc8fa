"""Precomputed item vectors start the agents' item towers: file -> aligned vectors -> warm-start rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from agents.factory import build_agent, read_warm_start
from agents.warm_start import item_vector_embeddings
from recsim_env.data.embeddings import save_embeddings
from recsim_env.data.item_vectors import load_item_vectors
from recsim_env.env.config import EnvConfig
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel


def _distances(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)


def test_rows_keep_the_vectors_geometry_at_the_towers_spread():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(30, 2)) @ rng.normal(size=(2, 7)) + 5.0  # rank 2 in 7-d, offset from 0
    for dim in (None, 2):
        rows = item_vector_embeddings(plane, np.arange(30), dim=dim).item
        assert rows.shape == (30, 7 if dim is None else 2) and rows.std() == pytest.approx(0.1, rel=1e-5)
        np.testing.assert_allclose(rows.mean(axis=0), 0.0, atol=1e-6)
        # One scale factor for all: distances between items are the vectors' distances, scaled.
        ratio = _distances(rows)[np.triu_indices(30, 1)] / _distances(plane)[np.triu_indices(30, 1)]
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
    with pytest.raises(ConfigError, match=r"dim must be in \[1, 7\] \(the vectors' width\), got 8"):
        item_vector_embeddings(plane, np.arange(30), dim=8)
    with pytest.raises(ConfigError, match=r"one row per item id, got shape \(30, 7\) for 29 ids"):
        item_vector_embeddings(plane, np.arange(29))


def test_an_agent_starts_from_a_vectors_file_through_the_warm_start_path(tmp_path):
    model = SyntheticUserModel(SyntheticConfig(n_items=40, n_users=50))
    log = model.generate_log(20, np.random.default_rng(0), slate_size=3, n_candidates=10)
    env = RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=4)
    table = pd.DataFrame(np.random.default_rng(1).normal(size=(log.n_items, 16)), columns=[f"e{k}" for k in range(16)])
    table.insert(0, "item_id", log.item_ids)
    table.to_parquet(tmp_path / "vectors.parquet")
    vectors = load_item_vectors(tmp_path / "vectors.parquet", log)
    path = save_embeddings(tmp_path / "start.npz", item_vector_embeddings(vectors, log.item_ids, dim=8))
    emb = read_warm_start(path, env)  # what `recsim train --warm-start` reads, checked against the env's items
    agent = build_agent("slateq", env, seed=0, warm_start=emb)
    assert agent.q.tower.dim == 8
    torch.testing.assert_close(agent.q.tower.items.weight[:40], torch.from_numpy(emb.item))
    agent.predict(env.reset(seed=0)[0])  # and it acts
