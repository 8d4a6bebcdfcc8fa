"""Atomic, versioned agent checkpoints that hold data only.

A checkpoint is one ``torch.save`` file holding a header (agent class name, container format, agent
format version) and the agent's payload (network and optimizer states, replay contents, step
counters, RNG states). It is written to a temporary file in the same directory, flushed and fsynced,
then moved over the target with :func:`os.replace`, so a crash mid-write leaves the previous good
checkpoint in place and a half-written file never carries the final name.

Loading runs no code from the file. Agents are files people share, and a pickle can call any
function while it loads, so the file is read with ``torch.load(weights_only=True)``: tensors, plain
Python containers and scalars, and nothing else — no global is allowlisted. What is not of those
kinds is converted on save into something that is (:func:`_encode`): a numpy array into a tensor
(or, when small, its raw bytes with its dtype and shape), a numpy scalar into a 0-d array, and the
few dataclass configs a checkpoint holds (:data:`DATACLASSES`) into their fields, rebuilt on load
through the class's own constructor and validation. Anything else is refused when the checkpoint is
written, not discovered when it is read.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from recsim_env.errors import ArtifactError

logger = logging.getLogger(__name__)

MAGIC = "recsim-env/agent-checkpoint"
CONTAINER_FORMAT = 2
"""2: data only, loaded with ``weights_only=True`` (1 pickled numpy arrays and configs as objects)."""

DATACLASSES = ("agents.slateq.SlateQConfig", "agents.exploration.LinearSchedule", "agents.reinforce.ReinforceConfig")
"""The dataclasses a checkpoint may hold, by import path: the agents' configs. Only these are rebuilt
on load, whatever names a file carries."""

_TAG = "__recsim_checkpoint__"
_PLAIN = (bool, int, float, complex, str, bytes)
_TENSOR_MIN_BYTES = 1 << 16
"""Arrays this large are saved as tensors; smaller ones as raw bytes. torch writes every tensor as a
record of its own, so REINFORCE's tens of thousands of per-step rows took 17 s to save as tensors
against 1 s as bytes; bytes in turn are pickled as text (1.5x the size), so large arrays go as tensors."""
_TENSOR_DTYPES = frozenset(np.dtype(name) for name in (
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex64", "complex128"))


def save_checkpoint(path: str | os.PathLike, agent_class: str, version: int, payload: dict[str, Any]) -> Path:
    """Write ``payload`` under a header naming ``agent_class`` and ``version``; atomic replace.

    ``payload`` may hold tensors, numpy arrays and scalars, Python scalars, strings, bytes, the
    configs of :data:`DATACLASSES`, and dicts (string or int keys), lists and tuples of these;
    anything else raises :class:`TypeError` naming where it sits."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    header = {"magic": MAGIC, "container": CONTAINER_FORMAT, "agent_class": agent_class, "version": int(version)}
    torch.save({**header, "payload": _encode(payload, "payload")}, buffer)
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


def load_checkpoint(path: str | os.PathLike, agent_class: str, version: int,
                    retired: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and return its payload.

    Raises :class:`ArtifactError` when the file is missing, corrupt or truncated, holds anything but
    data (a pickled object or function: refused before anything in it runs), or was written by
    another agent class, container format or format version. ``retired`` says, by old format
    version, why that version is no longer read; the error for such a file adds it.
    """
    blob = _read(Path(path))
    if blob["agent_class"] != agent_class:
        raise ArtifactError(f"checkpoint {path} belongs to agent {blob['agent_class']!r}, not {agent_class!r}")
    if blob["version"] != version:
        why = (retired or {}).get(blob["version"])
        reason = f" ({why}): train again to write one" if why else ""
        raise ArtifactError(
            f"checkpoint {path} has format version {blob['version']}; {agent_class} reads version {version}{reason}")
    return _decode(blob["payload"], f"checkpoint {path}")


def checkpoint_agent(path: str | os.PathLike) -> str:
    """The agent class name a checkpoint was written by (:class:`ArtifactError` if unreadable)."""
    return _read(Path(path))["agent_class"]


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ArtifactError(_refusal(path)) from exc
    except Exception as exc:  # torch raises several types for truncated / garbage files
        raise ArtifactError(f"checkpoint {path} is corrupt or half-written: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("magic") != MAGIC:
        raise ArtifactError(f"{path} is not a recsim-env agent checkpoint")
    if blob.get("container") != CONTAINER_FORMAT:
        raise ArtifactError(f"checkpoint {path} has container format {blob.get('container', 1)}; this version reads "
                            f"{CONTAINER_FORMAT}: train again to write one")
    return blob


def _refusal(path: Path) -> str:
    """Why a file that ``weights_only`` refused was not loaded, naming the objects it asks for."""
    try:  # lists the globals the file would import, without importing or running any
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError, OSError, pickle.PickleError):  # garbage: nothing to name
        names = []
    if not names:  # refused for what it is, not for what it asks: garbage that starts like a pickle
        return f"checkpoint {path} is corrupt or half-written (its pickle was refused; nothing in it was run)"
    objects = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return (f"checkpoint {path} holds Python objects ({objects}), which a checkpoint of this version never does; it "
            f"was refused and nothing in it was run. Checkpoints written before checkpoint format {CONTAINER_FORMAT} "
            f"pickled numpy arrays and configs as objects and are refused too: train again to write one")


def _encode(value: Any, where: str) -> Any:
    """``value`` with numpy arrays and scalars and :data:`DATACLASSES` instances turned into tagged
    dicts of tensors, bytes and plain values, which ``torch.load(weights_only=True)`` reads."""
    # Exact types: numpy's float64 and str_ subclass float and str, yet pickle as numpy objects.
    if type(value) is bytes and not value:  # protocol 2 pickles b"" as a call to bytes(), which is refused
        return {_TAG: "empty_bytes"}
    if value is None or type(value) in _PLAIN or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return _encode_array(value, where)
    if isinstance(value, np.generic):
        return {_TAG: "numpy_scalar", "array": _encode_array(np.asarray(value), where)}
    if isinstance(value, dict):
        if _TAG in value:
            raise TypeError(f"{where}: the key {_TAG!r} is reserved by the checkpoint format")
        for key in value:
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: checkpoint dict keys must be str or int, got {key!r}")
        return {key: _encode(item, f"{where}[{key!r}]") for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_encode(item, f"{where}[{index}]") for index, item in enumerate(value))
    if dataclasses.is_dataclass(value) and _dataclass_name(type(value)) in DATACLASSES:
        fields = {field.name: _encode(getattr(value, field.name), f"{where}.{field.name}")
                  for field in dataclasses.fields(value)}
        return {_TAG: "dataclass", "type": _dataclass_name(type(value)), "fields": fields}
    raise TypeError(f"{where}: a checkpoint holds data only (tensors, arrays, plain values, the configs of "
                    f"agents.checkpoint.DATACLASSES), not {type(value).__module__}.{type(value).__qualname__}")


def _encode_array(array: np.ndarray, where: str) -> dict[str, Any]:
    if array.dtype.hasobject or array.dtype.fields is not None:
        raise TypeError(f"{where}: a checkpoint holds arrays of plain values, not dtype {array.dtype}")
    if array.nbytes >= _TENSOR_MIN_BYTES and array.dtype in _TENSOR_DTYPES:
        # A copy: torch.from_numpy shares memory, and a read-only array (or a view) must not be written through.
        return {_TAG: "ndarray", "tensor": torch.from_numpy(np.array(array, order="C"))}
    # An empty array has no bytes to store (and b"" would not load: see _encode).
    data = np.ascontiguousarray(array).tobytes() if array.size else None
    return {_TAG: "ndarray", "dtype": array.dtype.str, "shape": list(array.shape), "bytes": data}


def _decode(value: Any, where: str) -> Any:
    """The inverse of :func:`_encode`."""
    if type(value) in (list, tuple):
        return type(value)(_decode(item, where) for item in value)
    if not isinstance(value, dict):
        return value
    kind = value.get(_TAG)
    if kind is None:
        return {key: _decode(item, where) for key, item in value.items()}
    if kind == "ndarray":
        return _decode_array(value, where)
    if kind == "numpy_scalar":
        return _decode_array(value["array"], where)[()]
    if kind == "dataclass":
        return _decode_dataclass(value, where)
    if kind == "empty_bytes":
        return b""
    raise ArtifactError(f"{where} holds an entry of unknown kind {kind!r}")


def _decode_array(value: dict[str, Any], where: str) -> np.ndarray:
    if "tensor" in value:
        return value["tensor"].numpy()
    dtype = np.dtype(value["dtype"])
    if dtype.hasobject or dtype.fields is not None:
        raise ArtifactError(f"{where} holds an array of dtype {dtype}, which a checkpoint never does")
    if value["bytes"] is None:
        return np.zeros(value["shape"], dtype=dtype)
    # A copy: frombuffer's array is read-only and would pin the whole bytes object.
    return np.frombuffer(value["bytes"], dtype=dtype).reshape(value["shape"]).copy()


def _decode_dataclass(value: dict[str, Any], where: str) -> Any:
    name = value["type"]
    if name not in DATACLASSES:
        raise ArtifactError(f"{where} holds a {name!r}, which is not among the configs a checkpoint may hold")
    module_name, class_name = name.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**{key: _decode(item, where) for key, item in value["fields"].items()})


def _dataclass_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def rng_state(generator: torch.Generator, np_rng) -> dict[str, Any]:
    """The RNG states a resumed run needs to continue the same random stream."""
    return {"torch": generator.get_state(), "numpy": np_rng.bit_generator.state}


def restore_rng_state(state: dict[str, Any], generator: torch.Generator, np_rng) -> None:
    generator.set_state(state["torch"])
    np_rng.bit_generator.state = state["numpy"]
