"""Warm starts: load exported embeddings (:mod:`recsim_env.data.embeddings`) into an agent's :class:`ItemTower`.

Item rows load always; user rows when the file's user vectors share the items' width
(:attr:`Embeddings.user`: NeuMF's MLP side does not, so only its items load). A file whose shapes or
vocabulary disagree with the env is an :class:`ArtifactError`, never a silent partial copy.

Precomputed item vectors (:func:`recsim_env.data.item_vectors.load_item_vectors`) start the item
table the same way, through :func:`item_vector_embeddings`: centred, reduced to their ``dim`` leading
principal components where asked, and scaled to the tower's initial spread. They are a start, not a
fixed input: training moves the rows of the items it meets, and the others keep their vectors' place.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from agents.networks import ItemTower
from recsim_env.data.embeddings import Embeddings, load_embeddings
from recsim_env.errors import ArtifactError, ConfigError

logger = logging.getLogger(__name__)

__all__ = ["Embeddings", "apply_to_tower", "check_compatible", "item_vector_embeddings", "load_embeddings",
           "with_file_width"]

INIT_STD = 0.1
"""The spread :class:`ItemTower` draws its rows with (``nn.init.normal_(std=0.1)``)."""


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


def item_vector_embeddings(vectors: np.ndarray, item_ids: np.ndarray, dim: int | None = None,
                           std: float = INIT_STD, source: str = "item vectors") -> Embeddings:
    """Warm-start item rows from precomputed ``(n_items, d)`` item vectors (no user rows).

    The vectors are centred (a shared offset says nothing about any one item) and, with ``dim < d``,
    projected onto their ``dim`` leading principal components, which keep the most of their spread;
    then every entry is scaled by one factor to standard deviation ``std``, the tower's own initial
    spread, so the agent's first updates move them as far as they would move a cold start. ``dim``
    ``None`` keeps the width ``d``; a ``dim`` above ``d`` is refused (there is nothing to widen with).

    Args:
        vectors: item vectors aligned to the env's item index (``load_item_vectors(path, log)``).
        item_ids: the log's original item ids in index order (checked against the env's catalog).
        dim: the towers' width; the agent takes the result's width (:func:`with_file_width`).
        std: the standard deviation of the returned entries.
        source: what the vectors came from, for messages.

    Returns:
        :class:`Embeddings` with item rows only: pass it as ``warm_start=``, or write it with
        :func:`recsim_env.data.embeddings.save_embeddings` for ``recsim train --warm-start``.

    Examples:
        >>> emb = item_vector_embeddings(np.random.default_rng(0).normal(size=(20, 6)), np.arange(20), dim=3)
        >>> emb.item.shape, emb.user is None, round(float(emb.item.std()), 3)
        ((20, 3), True, 0.1)
    """
    values = np.asarray(vectors, dtype=np.float64)
    if values.ndim != 2 or len(values) != len(item_ids):
        raise ConfigError(f"{source}: vectors must be (n_items, d) with one row per item id, got shape "
                          f"{values.shape} for {len(item_ids)} ids")
    width = values.shape[1] if dim is None else dim
    if not 1 <= width <= values.shape[1]:
        raise ConfigError(f"{source}: dim must be in [1, {values.shape[1]}] (the vectors' width), got {dim!r}")
    centred = values - values.mean(axis=0)
    if width < values.shape[1]:
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        centred = centred @ components[:width].T
    spread = float(centred.std())
    rows = centred * (std / spread) if spread > 0 else centred
    return Embeddings(item_embeddings=rows.astype(np.float32), item_ids=np.asarray(item_ids).astype(str),
                      model="item-vectors", source=source)
