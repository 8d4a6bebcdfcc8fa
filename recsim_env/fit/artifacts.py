"""One ``.npz`` layout for the fitted long-term parts: a JSON header (kind, format version, scalars)
plus plain arrays, written then renamed, read with ``allow_pickle=False``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recsim_env.errors import ArtifactError


def save_parts(path: str | Path, header: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``header`` (JSON) and ``arrays`` to ``path``; a crash never leaves half a file there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, header=np.array(json.dumps(header)), **arrays)
    tmp.replace(path)
    return path


def check_kind(header: dict, where: str, kind: str, format_version: int) -> None:
    """:class:`ArtifactError` unless ``header`` says ``kind`` at ``format_version``."""
    if header.get("kind") != kind or header.get("format_version") != format_version:
        raise ArtifactError(f"{where}: a {header.get('kind')!r} artifact of format {header.get('format_version')}, "
                            f"expected {kind!r} format {format_version}; refit it")


def load_parts(path: str | Path, kind: str, format_version: int, fields: tuple[str, ...],
               description: str) -> tuple[dict, dict[str, np.ndarray]]:
    """``(header, arrays)`` of a :func:`save_parts` file of ``kind``; :class:`ArtifactError` naming the
    file when it is unreadable, of another kind or version, or lacks one of ``fields``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(str(npz["header"]))
            check_kind(header, str(path), kind, format_version)
            arrays = {name: npz[name] for name in fields}
    except ArtifactError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a readable {description} artifact ({exc})") from exc
    return header, arrays
