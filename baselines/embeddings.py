"""Warm-start embeddings: the format RL agents load.

One ``.npz`` file (``numpy.load(path)`` reads it without this library) with:

==================  ===========================================================================
``format_version``  int, currently 1
``model``           str, the model class that produced it (``BPRMF``, ``NeuMF``, ``ContentRecommender``...)
``fingerprint``     str, :meth:`InteractionLog.fingerprint` of the training log (provenance)
``item_ids``        ``(n_items,)`` str, original item ids; row ``i`` of ``item_embeddings`` is item index ``i``
``user_ids``        ``(n_users,)`` str, original user ids (same for ``user_embeddings``)
``item_embeddings`` ``(n_items, d)`` float32
``user_embeddings`` ``(n_users, d_u)`` float32 (``d_u == d`` for MF and the content model)
``tower/<name>``    float32 arrays: the weights that turn embeddings into scores (NCF tower and
                    output layer, MF item biases, the content model's text encoder)
==================  ===========================================================================

:func:`load_embeddings` checks the version and, given a log, that its item and user vocabularies are
the ones the embeddings were trained on (:class:`ArtifactError` otherwise), and optionally the size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsim_env.data.log import InteractionLog
from recsim_env.errors import ArtifactError, ConfigError

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class Embeddings:
    """Loaded warm-start embeddings (see the module docstring for each field)."""

    model: str
    fingerprint: str
    item_ids: np.ndarray
    user_ids: np.ndarray
    item_embeddings: np.ndarray
    user_embeddings: np.ndarray
    towers: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.item_embeddings.shape[1])


def export_embeddings(model: object, log: InteractionLog, path: str | Path) -> Path:
    """Write ``model``'s embeddings (it must define ``embeddings()``) for the users/items of ``log``."""
    if not hasattr(model, "embeddings"):
        raise ConfigError(f"{type(model).__name__} has no embeddings to export (MF, NCF and content models do)")
    users, items, towers = model.embeddings()
    if items.shape[0] != log.n_items or users.shape[0] != log.n_users:
        raise ArtifactError(f"{type(model).__name__} embeddings cover {users.shape[0]} users x {items.shape[0]} "
                            f"items, but {log.name!r} has {log.n_users} x {log.n_items}")
    path = Path(path)
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, format_version=np.array(FORMAT_VERSION), model=np.array(type(model).__name__),
             fingerprint=np.array(getattr(model, "fingerprint", "") or log.fingerprint()),
             item_ids=np.asarray(log.item_ids, dtype=str), user_ids=np.asarray(log.user_ids, dtype=str),
             item_embeddings=np.asarray(items, dtype=np.float32), user_embeddings=np.asarray(users, dtype=np.float32),
             **{f"tower/{k}": np.asarray(v, dtype=np.float32) for k, v in towers.items()})
    return path


def load_embeddings(path: str | Path, log: InteractionLog | None = None, dim: int | None = None) -> Embeddings:
    """Read and validate an embeddings file; ``log`` and ``dim`` add vocabulary and size checks."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read embeddings ({exc})") from exc
    missing = {"format_version", "model", "item_ids", "user_ids", "item_embeddings", "user_embeddings"} - set(arrays)
    if missing:
        raise ArtifactError(f"{path}: not an embeddings file, it lacks {sorted(missing)}")
    if int(arrays["format_version"]) != FORMAT_VERSION:
        raise ArtifactError(f"{path}: embeddings format {int(arrays['format_version'])}, expected {FORMAT_VERSION}")
    emb = Embeddings(str(arrays["model"]), str(arrays.get("fingerprint", "")), arrays["item_ids"], arrays["user_ids"],
                     arrays["item_embeddings"], arrays["user_embeddings"],
                     {k[len("tower/"):]: v for k, v in arrays.items() if k.startswith("tower/")})
    _check_shapes(path, emb, log, dim)
    return emb


def _check_shapes(path: Path, emb: Embeddings, log: InteractionLog | None, dim: int | None) -> None:
    if emb.item_embeddings.ndim != 2 or emb.item_embeddings.shape[0] != len(emb.item_ids):
        raise ArtifactError(f"{path}: item_embeddings shape {emb.item_embeddings.shape} does not match "
                            f"{len(emb.item_ids)} item ids")
    if emb.user_embeddings.ndim != 2 or emb.user_embeddings.shape[0] != len(emb.user_ids):
        raise ArtifactError(f"{path}: user_embeddings shape {emb.user_embeddings.shape} does not match "
                            f"{len(emb.user_ids)} user ids")
    if dim is not None and emb.dim != dim:
        raise ArtifactError(f"{path}: embeddings have size {emb.dim}, the agent expects {dim}")
    if log is None:
        return
    for kind, ours, theirs in (("item", emb.item_ids, log.item_ids), ("user", emb.user_ids, log.user_ids)):
        theirs = np.asarray(theirs, dtype=str)
        if len(ours) != len(theirs):
            raise ArtifactError(f"{path}: {len(ours)} {kind}s, but {log.name!r} has {len(theirs)}")
        diff = np.flatnonzero(ours != theirs)
        if diff.size:
            raise ArtifactError(f"{path}: {kind} vocabulary differs from {log.name!r}'s at index {diff[0]} "
                                f"({ours[diff[0]]!r} vs {theirs[diff[0]]!r})")
