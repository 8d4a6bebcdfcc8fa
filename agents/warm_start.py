"""Warm starts: load the baselines' exported embeddings into an agent's :class:`ItemTower`.

The file is the ``.npz`` that :mod:`baselines.embeddings` exports. Read here:

- ``item_embeddings``: ``(n_items, d)`` float, row ``i`` for item index ``i`` (required);
- ``user_embeddings``: ``(n_users, d)`` float, row ``u`` for logged-user index ``u`` (optional);
- ``item_ids``: ``(n_items,)`` original item ids, checked against the env's vocabulary when the
  caller passes one (optional);
- ``format_version``: checked when present (optional).

User embeddings of another width than the items' (NeuMF's MLP side) are skipped: only items load.

A file whose shapes or vocabulary disagree with the env is an :class:`ArtifactError`, never a silent
partial copy: a warm start from another dataset would be worse than a cold one.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.networks import ItemTower
from recsim_env.errors import ArtifactError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""The :mod:`baselines.embeddings` format version this reader understands."""


@dataclass(frozen=True, eq=False)
class Embeddings:
    """Pretrained embeddings as read from a warm-start file."""

    item: np.ndarray
    """``(n_items, d)`` float32."""
    user: np.ndarray | None
    """``(n_users, d)`` float32, or None when the file has none."""
    item_ids: np.ndarray | None
    """Original item ids in index order, or None."""
    source: str
    """The file they came from (for messages)."""

    @property
    def dim(self) -> int:
        return int(self.item.shape[1])


def load_embeddings(path: str | os.PathLike) -> Embeddings:
    """Read and check a warm-start ``.npz``; :class:`ArtifactError` if missing, corrupt or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"warm-start file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"warm-start file {path} is not a readable .npz: {exc}") from exc
    if "item_embeddings" not in arrays:
        raise ArtifactError(f"warm-start file {path} has no 'item_embeddings' array (found {sorted(arrays)})")
    item = np.asarray(arrays["item_embeddings"], dtype=np.float32)
    user = arrays.get("user_embeddings")
    if item.ndim != 2 or not np.isfinite(item).all():
        raise ArtifactError(f"{path}: 'item_embeddings' must be a finite 2-D array, got shape {item.shape}")
    if "format_version" in arrays and int(arrays["format_version"]) != FORMAT_VERSION:
        raise ArtifactError(f"{path}: embeddings format {int(arrays['format_version'])}, agents read {FORMAT_VERSION}")
    if user is not None:
        user = np.asarray(user, dtype=np.float32)
        if user.ndim != 2 or user.shape[1] != item.shape[1]:
            # NeuMF's user vectors live in another space than its item vectors: only items warm-start then.
            logger.info("%s: user embeddings of shape %s do not match item dim %d; loading items only",
                        path, user.shape, item.shape[1])
            user = None
    ids = arrays.get("item_ids")
    if ids is not None and len(ids) != len(item):
        raise ArtifactError(f"{path}: {len(ids)} item_ids for {len(item)} item embeddings")
    return Embeddings(item=item, user=user, item_ids=ids, source=str(path))


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
