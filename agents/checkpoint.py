"""Atomic, versioned agent checkpoints.

A checkpoint is one ``torch.save`` file holding a header (agent class name, format version) and the
agent's payload (network and optimizer states, replay contents, step counters, RNG states). It is
written to a temporary file in the same directory, flushed and fsynced, then moved over the target
with :func:`os.replace`, so a crash mid-write leaves the previous good checkpoint in place and a
half-written file never carries the final name.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from recsim_env.errors import ArtifactError

logger = logging.getLogger(__name__)

MAGIC = "recsim-env/agent-checkpoint"


def save_checkpoint(path: str | os.PathLike, agent_class: str, version: int, payload: dict[str, Any]) -> Path:
    """Write ``payload`` under a header naming ``agent_class`` and ``version``; atomic replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"magic": MAGIC, "agent_class": agent_class, "version": int(version), "payload": payload}, buffer)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    logger.debug("checkpoint %s written (%d bytes)", path, buffer.tell())
    return path


def _fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is flushed (POSIX; skipped elsewhere).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, agent_class: str, version: int) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and return its payload.

    Raises :class:`ArtifactError` when the file is missing, corrupt or truncated, or was written by
    another agent class or format version.
    """
    blob = _read(Path(path))
    if blob["agent_class"] != agent_class:
        raise ArtifactError(f"checkpoint {path} belongs to agent {blob['agent_class']!r}, not {agent_class!r}")
    if blob["version"] != version:
        raise ArtifactError(
            f"checkpoint {path} has format version {blob['version']}; {agent_class} reads version {version}")
    return blob["payload"]


def checkpoint_agent(path: str | os.PathLike) -> str:
    """The agent class name a checkpoint was written by (:class:`ArtifactError` if unreadable)."""
    return _read(Path(path))["agent_class"]


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for truncated / garbage files
        raise ArtifactError(f"checkpoint {path} is corrupt or half-written: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("magic") != MAGIC:
        raise ArtifactError(f"{path} is not a recsim-env agent checkpoint")
    return blob


def rng_state(generator: torch.Generator, np_rng) -> dict[str, Any]:
    """The RNG states a resumed run needs to continue the same random stream."""
    return {"torch": generator.get_state(), "numpy": np_rng.bit_generator.state}


def restore_rng_state(state: dict[str, Any], generator: torch.Generator, np_rng) -> None:
    generator.set_state(state["torch"])
    np_rng.bit_generator.state = state["numpy"]
