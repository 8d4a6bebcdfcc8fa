"""Warm starts: load exported embeddings (:mod:`recsim_env.data.embeddings`) into an agent's :class:`ItemTower`.

Item rows load always; user rows when the file's user vectors share the items' width
(:attr:`Embeddings.user`: NeuMF's MLP side does not, so only its items load). A file whose shapes or
vocabulary disagree with the env is an :class:`ArtifactError`, never a silent partial copy.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from agents.networks import ItemTower
from recsim_env.data.embeddings import Embeddings, load_embeddings
from recsim_env.errors import ArtifactError

logger = logging.getLogger(__name__)

__all__ = ["Embeddings", "apply_to_tower", "check_compatible", "load_embeddings", "with_file_width"]


def with_file_width(config: Any, emb: Embeddings | None) -> Any:
    """``config`` (a frozen agent config with ``embedding_dim``) with the warm-start file's width: the
    file sets the towers' width, and the config records it so a checkpoint rebuilds the same shapes."""
    if emb is None or emb.dim == config.embedding_dim:
        return config
    return replace(config, embedding_dim=emb.dim)


def check_compatible(emb: Embeddings, n_items: int, n_users: int, item_ids: np.ndarray | None = None) -> None:
    """Raise :class:`ArtifactError` unless ``emb`` covers exactly this env's items (and users)."""
    if emb.item.shape[0] != n_items:
        raise ArtifactError(f"{emb.source}: item_embeddings has {emb.item.shape[0]} rows but the env has "
                            f"{n_items} items; the file was exported for another dataset or split")
    if emb.user is not None and n_users > 0 and emb.user.shape[0] != n_users:
        raise ArtifactError(f"{emb.source}: user_embeddings has {emb.user.shape[0]} rows but the env has "
                            f"{n_users} logged users")
    if item_ids is not None and emb.item_ids is not None:
        mine, theirs = np.asarray(item_ids).astype(str), np.asarray(emb.item_ids).astype(str)
        bad = np.flatnonzero(mine != theirs)
        if bad.size:
            i = int(bad[0])
            raise ArtifactError(f"{emb.source}: item vocabulary differs from the env's at index {i} "
                                f"({theirs[i]!r} vs {mine[i]!r}; {bad.size} mismatches)")


def apply_to_tower(tower: ItemTower, emb: Embeddings, item_ids: np.ndarray | None = None) -> None:
    """Copy ``emb`` into ``tower`` in place (rows beyond the file's, i.e. the "none" rows, are kept)."""
    n_items, n_users = tower.items.num_embeddings - 1, tower.users.num_embeddings - 1
    check_compatible(emb, n_items, n_users, item_ids)
    if emb.dim != tower.dim:
        raise ArtifactError(f"{emb.source}: embedding dim {emb.dim} but the agent's tower has dim {tower.dim}; "
                            "build the agent with embedding_dim equal to the file's")
    with torch.no_grad():
        tower.items.weight[:n_items] = torch.from_numpy(emb.item)
        if emb.user is not None and n_users > 0:
            tower.users.weight[:n_users] = torch.from_numpy(emb.user)
