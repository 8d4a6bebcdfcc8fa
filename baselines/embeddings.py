"""Export a fitted model's embeddings as a warm start for the agents.

The format (one ``.npz``) lives in :mod:`recsim_env.data.embeddings`, with its reader; this module
only turns a model's ``embeddings()`` into it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsim_env.data.embeddings import Embeddings, save_embeddings
from recsim_env.data.log import InteractionLog
from recsim_env.errors import ArtifactError, ConfigError


def export_embeddings(model: object, log: InteractionLog, path: str | Path) -> Path:
    """Write ``model``'s embeddings (it must define ``embeddings()``) for the users/items of ``log``."""
    if not hasattr(model, "embeddings"):
        raise ConfigError(f"{type(model).__name__} has no embeddings to export (MF, NCF, LightGCN and content "
                          "models do)")
    users, items, towers = model.embeddings()
    if items.shape[0] != log.n_items or users.shape[0] != log.n_users:
        raise ArtifactError(f"{type(model).__name__} embeddings cover {users.shape[0]} users x {items.shape[0]} "
                            f"items, but {log.name!r} has {log.n_users} x {log.n_items}")
    fingerprint = getattr(model, "fingerprint", "") or log.fingerprint()
    return save_embeddings(path, Embeddings(
        item_embeddings=np.asarray(items, dtype=np.float32), user_embeddings=np.asarray(users, dtype=np.float32),
        item_ids=np.asarray(log.item_ids, dtype=str), user_ids=np.asarray(log.user_ids, dtype=str),
        model=type(model).__name__, fingerprint=str(fingerprint), towers=dict(towers)))
