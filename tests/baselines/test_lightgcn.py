"""LightGCN: the normalised graph and its propagation against hand-computed values, learning on the
tiny log (beats popularity), the shared suite (save / load, acting in the env) and embedding export."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from recommender_suite import LearnsPreferences, RecommenderSuite
from tinylog import make_tiny_log

from baselines.base import merge_validation
from baselines.embeddings import export_embeddings
from baselines.lightgcn import (
    LightGCN,
    LightGCNConfig,
    LightGCNModule,
    graph_edges,
    normalized_adjacency,
)
from baselines.popularity import Popularity
from baselines.recipes import build_model
from baselines.training import LoopConfig
from recsim_env.data.embeddings import load_embeddings
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import leave_one_out, seen_items
from recsim_env.errors import ArtifactError, ConfigError
from recsim_env.evaluation.offline import SampledRanking

FAST = LoopConfig(epochs=15, batch_size=64, lr=1e-2, weight_decay=0.0, patience=3, refit_epochs=0,
                   recency_half_life=None)
SQRT2 = np.sqrt(2.0)


def two_user_log() -> InteractionLog:
    """u0 consumed i0 then i1; u1 consumed i1 then i2 (i1 twice: a repeat adds no edge)."""
    rows = [("u0", "i0", 1), ("u0", "i1", 2), ("u1", "i1", 3), ("u1", "i2", 4), ("u1", "i1", 5)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return InteractionLog.from_frames(frame, name="two-users")


def test_normalized_adjacency_of_two_users_and_three_items():
    # Degrees: u0 2, u1 2, i0 1, i1 2, i2 1; entry (u, i) is 1 / sqrt(deg u * deg i).
    users, items, weights = graph_edges(two_user_log())
    adjacency = normalized_adjacency(users, items, weights, 2, 3).to_dense().numpy()
    half, root = 0.5, 1 / SQRT2
    expected = np.array([[0, 0, root, half, 0],
                         [0, 0, 0, half, root],
                         [root, 0, 0, 0, 0],
                         [half, half, 0, 0, 0],
                         [0, root, 0, 0, 0]])
    np.testing.assert_allclose(adjacency, expected, rtol=1e-6)


def test_recency_weighted_edges_keep_a_repeated_pairs_latest_weight():
    users, items, weights = graph_edges(two_user_log(), half_life=1.0)
    assert list(zip(users.tolist(), items.tolist())) == [(0, 0), (0, 1), (1, 1), (1, 2)]
    # u1's rows i1, i2, i1 weigh 1/4, 1/2, 1 before rescaling; the pair (u1, i1) keeps its latest (1).
    np.testing.assert_allclose(weights[2:] / weights[2], [1.0, 0.5])
    np.testing.assert_allclose(weights[:2] / weights[1], [0.5, 1.0])


def test_one_layer_propagation_equals_the_hand_result():
    module = LightGCNModule(2, 3, dim=1, layers=1, init_std=0.1)
    with torch.no_grad():
        module.user.weight[:, 0] = torch.tensor([1.0, 2.0])
        module.item.weight[:, 0] = torch.tensor([3.0, 5.0, 7.0])
    module.set_graph(normalized_adjacency(*graph_edges(two_user_log()), 2, 3))
    user_final, item_final = module.propagate()
    # Final = (layer 0 + layer 1) / 2, layer 1 = Â @ layer 0 with Â from the test above.
    users = [(1 + 3 / SQRT2 + 5 / 2) / 2, (2 + 5 / 2 + 7 / SQRT2) / 2]
    items = [(3 + 1 / SQRT2) / 2, (5 + 1 / 2 + 2 / 2) / 2, (7 + 2 / SQRT2) / 2]
    np.testing.assert_allclose(user_final.detach().numpy()[:, 0], users, rtol=1e-6)
    np.testing.assert_allclose(item_final.detach().numpy()[:, 0], items, rtol=1e-6)
    scores = module(torch.tensor([0]), torch.tensor([[1]]))
    np.testing.assert_allclose(scores.detach().numpy(), [[users[0] * items[1]]], rtol=1e-6)


def test_propagation_gradient_equals_the_dense_one():
    module = LightGCNModule(2, 3, dim=4, layers=2, init_std=0.5)
    adjacency = normalized_adjacency(*graph_edges(two_user_log()), 2, 3)
    module.set_graph(adjacency)
    (module.propagate()[0] ** 2).sum().backward()
    sparse_grad = torch.cat([module.user.weight.grad, module.item.weight.grad])
    ego = torch.cat([module.user.weight, module.item.weight]).detach().requires_grad_()
    dense = adjacency.to_dense()
    final = (ego + dense @ ego + dense @ (dense @ ego)) / 3
    (final[:2] ** 2).sum().backward()
    torch.testing.assert_close(sparse_grad, ego.grad)


def test_fit_on_a_split_adds_the_validation_interactions_to_the_graph(tiny_log):
    split = leave_one_out(tiny_log)
    model = LightGCN(LightGCNConfig(dim=8, layers=2), replace(FAST, epochs=2)).fit(split)
    valid = split.valid.interactions
    user, item = int(valid["user"].iloc[0]), int(valid["item"].iloc[0])
    assert item in model.seen(user)
    known = merge_validation(split)
    n_pairs = len(np.unique(known.interactions["user"] * known.n_items + known.interactions["item"]))
    assert model.module.adjacency._nnz() == 2 * n_pairs == 2 * len(model.edge_weights)


def test_learns_better_than_popularity(tiny_log):
    """Each user mostly consumes one genre: the held-out item is easy for a personalised model."""
    split = leave_one_out(tiny_log)
    ranking = SampledRanking.build(split.test, seen_items(tiny_log), 30, seed=0)
    model = LightGCN(LightGCNConfig(dim=16, layers=2), FAST).fit(split)
    popularity = Popularity().fit(split)
    learned, baseline = ranking.evaluate(model, 5)["HR@5"], ranking.evaluate(popularity, 5)["HR@5"]
    assert learned > 0.6 and learned > baseline + 0.4, (learned, baseline)  # seen: 0.80-0.83 vs 0.075


def test_same_seed_same_model(tiny_log):
    first = LightGCN(LightGCNConfig(dim=8), replace(FAST, epochs=3)).fit(leave_one_out(tiny_log))
    again = LightGCN(LightGCNConfig(dim=8), replace(FAST, epochs=3)).fit(leave_one_out(tiny_log))
    np.testing.assert_array_equal(first.score([0, 1], np.arange(10)), again.score([0, 1], np.arange(10)))


def test_config_and_checkpoint_errors(tiny_log, tmp_path):
    with pytest.raises(ConfigError, match="edge_half_life"):
        LightGCNConfig(edge_half_life=0.0)
    with pytest.raises(ConfigError, match="layers >= 0"):
        LightGCNConfig(layers=-1)
    with pytest.raises(ConfigError, match="no graph"):
        LightGCNModule(2, 3, 4, 1, 0.1).propagate()
    model = LightGCN(LightGCNConfig(dim=8), replace(FAST, epochs=1)).fit(tiny_log)
    path = model.save(tmp_path / "model")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k != "model/edge_weights"}
    np.savez(path, **arrays)
    with pytest.raises(ArtifactError, match="edge_weights"):
        LightGCN.load(path)


def test_export_embeddings_reproduce_scores(tiny_log, tmp_path):
    model = LightGCN(LightGCNConfig(dim=8, layers=2), FAST).fit(leave_one_out(tiny_log))
    emb = load_embeddings(export_embeddings(model, tiny_log, tmp_path / "lightgcn"), log=tiny_log, dim=8)
    assert emb.model == "LightGCN" and emb.user_embeddings.shape == (tiny_log.n_users, 8)
    scores = emb.user_embeddings[:3] @ emb.item_embeddings[:7].T
    np.testing.assert_allclose(scores, model.score([0, 1, 2], np.arange(7)), rtol=1e-5, atol=1e-6)


def test_registry_builds_it():
    model = build_model("lightgcn", seed=2)
    assert isinstance(model, LightGCN) and model.train_config.seed == 2
    assert model.config.edge_half_life is None or build_model("lightgcn", plain=True).config.edge_half_life is None


class TestLightGCN(RecommenderSuite, LearnsPreferences):
    make = staticmethod(lambda: LightGCN(LightGCNConfig(dim=16, layers=2), FAST))


class TestLightGCNRecencyGraphAndRefit(RecommenderSuite, LearnsPreferences):
    make = staticmethod(lambda: LightGCN(LightGCNConfig(dim=16, layers=2, edge_half_life=5.0),
                                         replace(FAST, refit_epochs=1, recency_half_life=10.0)))


def test_acts_in_the_env_and_scores_a_cold_user_from_their_clicks():
    from recsim_env.env.rec_env import make_env

    env_log = make_tiny_log(n_users=30, n_items=80, per_user=12, seed=3)
    env = make_env(env_log, slate_size=4, n_candidates=12, history_length=5, step_cap=6)
    model = LightGCN(LightGCNConfig(dim=8, layers=2), FAST).fit(leave_one_out(env_log)).bind(env.action_space)
    obs, _ = env.reset(seed=0)
    for _ in range(6):
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(action) and len(set(obs["candidates"][action].tolist())) == 4
        obs, reward, terminated, truncated, _ = env.step(action)
        assert np.isfinite(reward)
        if terminated or truncated:
            break
    cold = {k: np.asarray(v)[None] for k, v in obs.items()}
    cold["user_index"] = np.full_like(cold["user_index"], -1)
    cold["history_items"] = np.array([[0, 4, 8, -1, -1]])  # three items of one genre
    cands = cold["candidates"][0]
    item_final = model.embeddings()[1]
    expected = item_final[cands] @ item_final[[0, 4, 8]].mean(axis=0)  # the clicks' mean final embedding
    np.testing.assert_allclose(model.score_observation(cold)[0], expected, rtol=1e-5)
    assert not np.allclose(expected, model.counts[cands])  # not the popularity fallback
