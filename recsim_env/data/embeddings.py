"""Warm-start embeddings: the one ``.npz`` format that baselines write and agents read.

``numpy.load(path)`` reads a file without this library. Arrays:

==================  ===========================================================================
``format_version``  int, currently 1 (checked when present)
``model``           str, the model class that produced it (``BPRMF``, ``NeuMF``, ``LightGCN``...)
``fingerprint``     str, :meth:`InteractionLog.fingerprint` of the training log (provenance)
``item_ids``        ``(n_items,)`` str, original item ids; row ``i`` of ``item_embeddings`` is item index ``i``
``user_ids``        ``(n_users,)`` str, original user ids (same for ``user_embeddings``)
``item_embeddings`` ``(n_items, d)`` float32 — the only required array
``user_embeddings`` ``(n_users, d_u)`` float32 (``d_u == d`` for MF, LightGCN and the content model)
``tower/<name>``    float32 arrays: the weights that turn embeddings into scores (NCF tower and
                    output layer, MF item biases, the content model's text encoder)
==================  ===========================================================================

Writers: :func:`baselines.embeddings.export_embeddings` (from a fitted model) through
:func:`save_embeddings`. Readers: :func:`load_embeddings` (agents' warm starts, checks), with ``log``
and ``dim`` for vocabulary and size checks. A file whose shapes or vocabulary disagree is an
:class:`~recsim_env.errors.ArtifactError`, never a silent partial copy: a warm start from another
dataset would be worse than a cold one.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsim_env.data.log import InteractionLog
from recsim_env.errors import ArtifactError

FORMAT_VERSION = 1
"""Bumped when the arrays or their meaning change; other versions are refused on load."""


@dataclass(frozen=True, eq=False)
class Embeddings:
    """Warm-start embeddings (see the module docstring for each array)."""

    item_embeddings: np.ndarray
    """``(n_items, d)`` float32."""
    user_embeddings: np.ndarray | None = None
    """``(n_users, d_u)`` float32, or None when the file has none."""
    item_ids: np.ndarray | None = None
    """Original item ids in index order, or None."""
    user_ids: np.ndarray | None = None
    """Original user ids in index order, or None."""
    model: str = ""
    """The model class that produced them."""
    fingerprint: str = ""
    """The training log's fingerprint."""
    towers: dict[str, np.ndarray] = field(default_factory=dict)
    """Score weights by name (``tower/<name>`` in the file)."""
    source: str = ""
    """The file they came from (for messages)."""

    @property
    def dim(self) -> int:
        return int(self.item_embeddings.shape[1])

    @property
    def item(self) -> np.ndarray:
        """The item rows an agent's item tower takes."""
        return self.item_embeddings

    @property
    def user(self) -> np.ndarray | None:
        """The user rows an agent's tower takes: the user embeddings when they share the items' space
        (width), else None — NeuMF's MLP-side user vectors live in another space than its items."""
        if self.user_embeddings is None or self.user_embeddings.shape[1] != self.dim:
            return None
        return self.user_embeddings


def save_embeddings(path: str | os.PathLike, embeddings: Embeddings) -> Path:
    """Write ``embeddings`` to ``path`` (``.npz`` added when missing); returns the path written."""
    path = Path(path)
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"format_version": np.array(FORMAT_VERSION), "model": np.array(embeddings.model),
              "fingerprint": np.array(embeddings.fingerprint),
              "item_embeddings": np.asarray(embeddings.item_embeddings, dtype=np.float32)}
    for name in ("item_ids", "user_ids"):
        if getattr(embeddings, name) is not None:
            arrays[name] = np.asarray(getattr(embeddings, name), dtype=str)
    if embeddings.user_embeddings is not None:
        arrays["user_embeddings"] = np.asarray(embeddings.user_embeddings, dtype=np.float32)
    arrays.update({f"tower/{k}": np.asarray(v, dtype=np.float32) for k, v in embeddings.towers.items()})
    np.savez(path, **arrays)
    return path


def load_embeddings(path: str | os.PathLike, log: InteractionLog | None = None, dim: int | None = None) -> Embeddings:
    """Read and check a warm-start ``.npz``; ``log`` and ``dim`` add vocabulary and size checks.

    Raises :class:`ArtifactError` naming the file when it is missing, corrupt, of another format
    version, or its shapes / vocabulary disagree."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"warm-start file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"warm-start file {path} is not a readable .npz: {exc}") from exc
    if "item_embeddings" not in arrays:
        raise ArtifactError(f"warm-start file {path} is not an embeddings file: it has no 'item_embeddings' array "
                            f"(found {sorted(arrays)})")
    if "format_version" in arrays and int(arrays["format_version"]) != FORMAT_VERSION:
        raise ArtifactError(f"{path}: embeddings format {int(arrays['format_version'])}, this library reads "
                            f"{FORMAT_VERSION}")
    users = arrays.get("user_embeddings")
    emb = Embeddings(item_embeddings=np.asarray(arrays["item_embeddings"], dtype=np.float32),
                     user_embeddings=None if users is None else np.asarray(users, dtype=np.float32),
                     item_ids=arrays.get("item_ids"), user_ids=arrays.get("user_ids"),
                     model=str(arrays.get("model", "")), fingerprint=str(arrays.get("fingerprint", "")),
                     towers={k[len("tower/"):]: v for k, v in arrays.items() if k.startswith("tower/")},
                     source=str(path))
    _check_shapes(emb)
    if dim is not None and emb.dim != dim:
        raise ArtifactError(f"{path}: embeddings have size {emb.dim}, the agent expects {dim}")
    if log is not None:
        _check_vocabulary(emb, log)
    return emb


def _check_shapes(emb: Embeddings) -> None:
    item = emb.item_embeddings
    if item.ndim != 2 or not np.isfinite(item).all():
        raise ArtifactError(f"{emb.source}: 'item_embeddings' must be a finite 2-D array, got shape {item.shape}")
    if emb.item_ids is not None and len(emb.item_ids) != len(item):
        raise ArtifactError(f"{emb.source}: {len(emb.item_ids)} item_ids for {len(item)} item embeddings")
    users = emb.user_embeddings
    if users is not None and (users.ndim != 2 or not np.isfinite(users).all()):
        raise ArtifactError(f"{emb.source}: 'user_embeddings' must be a finite 2-D array, got shape {users.shape}")
    if users is not None and emb.user_ids is not None and len(emb.user_ids) != len(users):
        raise ArtifactError(f"{emb.source}: {len(emb.user_ids)} user_ids for {len(users)} user embeddings")


def _check_vocabulary(emb: Embeddings, log: InteractionLog) -> None:
    for kind, ours, theirs in (("item", emb.item_ids, log.item_ids), ("user", emb.user_ids, log.user_ids)):
        if ours is None:
            raise ArtifactError(f"{emb.source}: has no {kind}_ids to check against {log.name!r}")
        theirs = np.asarray(theirs, dtype=str)
        if len(ours) != len(theirs):
            raise ArtifactError(f"{emb.source}: {len(ours)} {kind}s, but {log.name!r} has {len(theirs)}")
        diff = np.flatnonzero(ours != theirs)
        if diff.size:
            raise ArtifactError(f"{emb.source}: {kind} vocabulary differs from {log.name!r}'s at index {diff[0]} "
                                f"({ours[diff[0]]!r} vs {theirs[diff[0]]!r})")
