"""`CellStore`: a benchmark run directory's finished (policy, simulator, seed) cells, written atomically.

Layout under the run directory::

    cells/<simulator>/<policy>/seed-<s>.csv    one row per evaluated episode
    cells/<simulator>/<policy>/seed-<s>.json   per-seed metrics (coverage); written last = the cell is done
    offline/<context>/<policy>/seed-<s>.json    offline NCF-protocol metrics of a supervised policy
    curves/<context>/<policy>/seed-<s>.csv     learning curve of a policy that logged one
    run.json                                   the settings every cell depends on

Every file is written to a temporary name and renamed, so an interrupted run (Ctrl-C) leaves only
whole files: a rerun skips the finished cells and redoes the rest. A rerun whose result-shaping
settings differ from ``run.json`` is refused instead of mixing incomparable cells.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from recsim_env.errors import ConfigError
from recsim_env.evaluation.rollout import EpisodeStats


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename; the
    temporary name is unique, so two processes writing one path leave one whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(directory: Path) -> None:
    """Create ``directory`` and prove a file can be written there; else a :class:`ConfigError`."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"output directory {directory} is not writable ({exc.strerror or exc}); "
                          f"choose another with --out") from None


class CellStore:
    """Reads and writes the finished cells of one run directory (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def bind(self, settings: Mapping[str, Any]) -> None:
        """Record ``settings`` for a new run, or check that an existing run used the same ones."""
        path = self.root / "run.json"
        wanted = json.loads(json.dumps(settings, sort_keys=True))
        if path.exists():
            stored = json.loads(path.read_text(encoding="utf-8"))
            changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
            if changed:
                raise ConfigError(f"{self.root} holds a run with other settings ({', '.join(changed)}: "
                                  f"{ {k: stored.get(k) for k in changed} } there, "
                                  f"{ {k: wanted.get(k) for k in changed} } now); resume it with the same "
                                  f"settings, pass --overwrite to start over, or pass another --out")
            return
        atomic_write_text(path, json.dumps(wanted, indent=2, sort_keys=True))

    def _cell(self, simulator: str, policy: str, seed: int) -> Path:
        return self.root / "cells" / simulator / policy / f"seed-{seed}"

    def done(self, policy: str, simulator: str, seed: int) -> bool:
        base = self._cell(simulator, policy, seed)
        return base.with_suffix(".json").exists() and base.with_suffix(".csv").exists()

    def write(self, policy: str, simulator: str, seed: int, stats: EpisodeStats) -> None:
        base = self._cell(simulator, policy, seed)
        atomic_write_text(base.with_suffix(".csv"), stats.episodes.to_csv(index=False))
        row = stats.seeds.iloc[0].to_dict()
        atomic_write_text(base.with_suffix(".json"), json.dumps({k: _plain(v) for k, v in row.items()}))

    def read(self, policy: str, simulator: str, seed: int) -> EpisodeStats:
        base = self._cell(simulator, policy, seed)
        episodes = pd.read_csv(base.with_suffix(".csv"))
        seeds = pd.DataFrame([json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))])
        return EpisodeStats(episodes, seeds)

    def write_json(self, kind: str, context: str, policy: str, seed: int, values: Mapping[str, Any]) -> None:
        path = self.root / kind / context / policy / f"seed-{seed}.json"
        atomic_write_text(path, json.dumps({k: _plain(v) for k, v in values.items()}))

    def read_json(self, kind: str, context: str, policy: str, seed: int) -> dict[str, Any] | None:
        path = self.root / kind / context / policy / f"seed-{seed}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def write_curve(self, context: str, policy: str, seed: int, curve: pd.DataFrame) -> None:
        atomic_write_text(self.root / "curves" / context / policy / f"seed-{seed}.csv", curve.to_csv(index=False))

    def curves(self) -> pd.DataFrame:
        """Every stored learning curve, with ``context``, ``policy`` and ``seed`` columns."""
        frames = []
        for path in sorted((self.root / "curves").glob("*/*/seed-*.csv")):
            frame = pd.read_csv(path)
            frames.append(frame.assign(context=path.parts[-3], policy=path.parts[-2],
                                       seed=int(path.stem.removeprefix("seed-"))))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers for JSON."""
    return value.item() if hasattr(value, "item") else value
