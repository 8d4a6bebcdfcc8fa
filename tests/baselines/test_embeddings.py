"""Warm-start embedding export and its validating loader."""

from __future__ import annotations

import numpy as np
import pytest
from tinylog import make_tiny_log

from baselines.embeddings import export_embeddings
from baselines.mf import BPRMF, MFConfig
from baselines.ncf import NCFConfig, NeuMF
from baselines.popularity import Popularity
from baselines.training import LoopConfig
from recsim_env.data.embeddings import load_embeddings
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import ArtifactError, ConfigError

FAST = LoopConfig(epochs=3, batch_size=64, lr=1e-2, refit_epochs=0)


def test_mf_round_trip_reproduces_scores(tiny_log, tmp_path):
    model = BPRMF(MFConfig(dim=8), FAST).fit(leave_one_out(tiny_log))
    emb = load_embeddings(export_embeddings(model, tiny_log, tmp_path / "mf"), log=tiny_log, dim=8)
    assert emb.model == "BPRMF" and emb.item_embeddings.shape == (tiny_log.n_items, 8)
    scores = emb.user_embeddings[:2] @ emb.item_embeddings[:5].T + emb.towers["item_bias"][:5]
    np.testing.assert_allclose(scores, model.score([0, 1], np.arange(5)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(emb.item_ids, tiny_log.item_ids.astype(str))


def test_neumf_exports_both_paths_and_the_tower(tiny_log, tmp_path):
    config = NCFConfig(dim=4, layers=(8, 4), pretrain=False)
    model = NeuMF(config, FAST).fit(leave_one_out(tiny_log))
    emb = load_embeddings(export_embeddings(model, tiny_log, tmp_path / "neumf.npz"))
    assert emb.dim == 4 + 4 and emb.user_embeddings.shape == (tiny_log.n_users, 8)
    assert "tower.0.weight" in emb.towers and "out.weight" in emb.towers


def test_loader_refuses_other_vocabulary_size_and_files(tiny_log, tmp_path):
    model = BPRMF(MFConfig(dim=8), FAST).fit(tiny_log)
    path = export_embeddings(model, tiny_log, tmp_path / "mf.npz")
    with pytest.raises(ArtifactError, match="items"):
        load_embeddings(path, log=make_tiny_log(n_items=64))
    with pytest.raises(ArtifactError, match="size 8"):
        load_embeddings(path, dim=16)
    np.savez(tmp_path / "junk.npz", x=np.zeros(2))
    with pytest.raises(ArtifactError, match="not an embeddings file"):
        load_embeddings(tmp_path / "junk.npz")
    with pytest.raises(ConfigError, match="no embeddings"):
        export_embeddings(Popularity().fit(tiny_log), tiny_log, tmp_path / "pop")


def test_agents_warm_start_reader_accepts_the_export(tiny_log, tmp_path):
    warm_start = pytest.importorskip("agents.warm_start")
    model = BPRMF(MFConfig(dim=8), FAST).fit(tiny_log)
    emb = warm_start.load_embeddings(export_embeddings(model, tiny_log, tmp_path / "mf.npz"))
    np.testing.assert_allclose(emb.item, model.module.item.weight.detach().numpy())
    assert emb.user is not None and emb.user.shape == (tiny_log.n_users, 8)
