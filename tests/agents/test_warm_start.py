from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import FakeSlateVecEnv, Scenario

from agents.networks import ItemTower, ObservationSpec
from agents.reinforce import ReinforceAgent
from agents.slateq import SlateQAgent
from agents.warm_start import apply_to_tower, check_compatible, load_embeddings
from recsim_env.errors import ArtifactError

N_ITEMS, N_USERS, DIM = 12, 5, 8


def _write(path: Path, n_items: int = N_ITEMS, dim: int = DIM, user_dim: int | None = None, **extra) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"format_version": np.array(1), "item_ids": np.array([f"i{i}" for i in range(n_items)]),
              "item_embeddings": rng.normal(size=(n_items, dim)).astype(np.float32),
              "user_embeddings": rng.normal(size=(N_USERS, user_dim or dim)).astype(np.float32), **extra}
    np.savez(path, **arrays)
    return path


def test_agents_start_from_the_files_embeddings(tmp_path: Path) -> None:
    emb = load_embeddings(_write(tmp_path / "e.npz"))
    env = FakeSlateVecEnv(Scenario(n_items=N_ITEMS, n_logged_users=N_USERS))
    spec = ObservationSpec.from_space(env.single_observation_space)
    slateq = SlateQAgent(spec, 2, seed=0, warm_start=emb)
    reinforce = ReinforceAgent(spec, 2, seed=0, warm_start=emb)
    for tower in (slateq.q.tower, slateq.q_target.tower, slateq.click.tower, reinforce.net.tower):
        torch.testing.assert_close(tower.items.weight[:N_ITEMS], torch.from_numpy(emb.item))
        torch.testing.assert_close(tower.users.weight[:N_USERS], torch.from_numpy(emb.user))
    assert slateq.q.tower.dim == DIM  # the file's width overrides the config's


def test_wrong_shape_vocabulary_version_or_file_is_an_artifact_error(tmp_path: Path) -> None:
    tower = ItemTower(N_ITEMS, N_USERS, DIM)
    with pytest.raises(ArtifactError, match="10 rows but the env has 12 items"):
        apply_to_tower(tower, load_embeddings(_write(tmp_path / "a.npz", n_items=10)))
    with pytest.raises(ArtifactError, match="embedding dim 4 but the agent's tower has dim 8"):
        apply_to_tower(tower, load_embeddings(_write(tmp_path / "b.npz", dim=4)))
    ids = np.array([f"i{i}" for i in range(N_ITEMS)])
    ids[7] = "other"
    with pytest.raises(ArtifactError, match="vocabulary differs .* index 7"):
        check_compatible(load_embeddings(_write(tmp_path / "c.npz")), N_ITEMS, N_USERS, ids)
    with pytest.raises(ArtifactError, match="format 2"):
        load_embeddings(_write(tmp_path / "d.npz", format_version=np.array(2)))
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="not a readable .npz"):
        load_embeddings(tmp_path / "junk.npz")
    np.savez(tmp_path / "e.npz", users=np.zeros(3))
    with pytest.raises(ArtifactError, match="no 'item_embeddings'"):
        load_embeddings(tmp_path / "e.npz")
    with pytest.raises(ArtifactError, match="does not exist"):
        load_embeddings(tmp_path / "missing.npz")


def test_user_vectors_of_another_width_are_skipped(tmp_path: Path) -> None:
    emb = load_embeddings(_write(tmp_path / "neumf.npz", user_dim=DIM * 2))
    assert emb.user is None and emb.item.shape == (N_ITEMS, DIM)


@pytest.mark.parametrize("cls", [SlateQAgent, ReinforceAgent])
def test_a_warm_started_agent_reloads_from_its_checkpoint(tmp_path: Path, cls) -> None:
    """The file's width (8) differs from the config's default (32): the checkpoint must rebuild the
    file's shapes, so that ``recsim evaluate`` can load a warm-started agent (it could not)."""
    from agents.checkpoint import save_checkpoint
    from agents.factory import load_agent

    emb = load_embeddings(_write(tmp_path / "e.npz"))
    env = FakeSlateVecEnv(Scenario(n_items=N_ITEMS, n_logged_users=N_USERS))
    spec = ObservationSpec.from_space(env.single_observation_space)
    agent = cls(spec, 2, seed=0, warm_start=emb)
    assert agent.config.embedding_dim == DIM
    path = save_checkpoint(tmp_path / "ckpt.pt", agent.name, agent.format_version, {"agent": agent.state_dict()})
    loaded = load_agent(path)
    obs, _ = env.reset(seed=3)
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    torch.testing.assert_close(loaded.net.tower.items.weight if cls is ReinforceAgent else loaded.q.tower.items.weight,
                               agent.net.tower.items.weight if cls is ReinforceAgent else agent.q.tower.items.weight)
