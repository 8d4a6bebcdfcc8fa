"""Raw data files: one view over a folder or a zip, and strict parsing of delimited text.

Dataset archives nest their files differently (``ml-100k.zip`` holds ``ml-100k/u.data``), so
:class:`DataFiles` finds files by base name at the top level or one folder down. :func:`read_delimited`
refuses, naming the file and the line, what pandas would silently repair: a line with the wrong
number of fields (a truncated file ends in one) and bytes that are not valid in the file's encoding.
Parsed frames carry the file line of each row as their index (named ``"line"``) and the file's
label in ``frame.attrs["source"]``, so later checks in :mod:`recsim_env.data.schema` can name both.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsim_env.errors import DataError

_BLOCK_LINES = 200_000  # rows parsed between progress updates


class DataFiles:
    """Files of a folder or zip, by base name (top level first, then one folder down)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._zip: zipfile.ZipFile | None = None
        self._entries: dict[str, str] = {}
        if root.is_dir():
            found = [p for p in root.iterdir() if p.is_file()]
            found += [p for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.iterdir()) if p.is_file()]
            for p in found:
                self._entries.setdefault(p.name, str(p))
        else:
            self._zip = _open_zip(root)
            infos = [i for i in self._zip.infolist() if not i.is_dir() and i.filename.count("/") <= 1]
            for info in sorted(infos, key=lambda i: i.filename.count("/")):
                if "__MACOSX" not in info.filename:
                    self._entries.setdefault(info.filename.rsplit("/", 1)[-1], info.filename)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def has(self, name: str) -> bool:
        return name in self._entries

    def with_suffix(self, suffix: str) -> list[str]:
        return [n for n in self.names() if n.endswith(suffix)]

    def label(self, name: str) -> str:
        """Where ``name`` lives, for messages: a path, or ``archive.zip:member``."""
        return self._entries[name] if self._zip is None else f"{self.root}:{self._entries[name]}"

    def size(self, name: str) -> int:
        if self._zip is None:
            return os.path.getsize(self._entries[name])
        return self._zip.getinfo(self._entries[name]).file_size

    def open(self, name: str) -> BinaryIO:
        if name not in self._entries:
            raise DataError(f"{self.root}: no file named {name!r} (it has {', '.join(self.names()) or 'none'})")
        if self._zip is None:
            return open(self._entries[name], "rb")
        return self._zip.open(self._entries[name])

    def read_bytes(self, name: str) -> bytes:
        chunks = []
        with self.open(name) as fh, tqdm(total=self.size(name), desc=f"read {name}", unit="B",
                                         unit_scale=True, disable=None, leave=False) as bar:
            try:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    chunks.append(block)
                    bar.update(len(block))
            except (zipfile.BadZipFile, EOFError, OSError) as exc:  # a truncated or corrupt archive
                raise DataError(f"{self.label(name)}: cannot be read ({exc}); the file looks truncated or corrupt") from exc
        return b"".join(chunks)


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file or folder") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a folder and not a readable zip archive ({exc}); "
                        f"a truncated download looks like this") from exc


def open_files(path: str | os.PathLike) -> DataFiles:
    """A :class:`DataFiles` over a folder or a zip archive."""
    return DataFiles(Path(path).expanduser())


def _decode(data: bytes, encoding: str, label: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{label}: line {line}: bytes {data[exc.start:exc.end]!r} are not valid {encoding} "
                        f"({exc.reason}); is the file in another encoding, or corrupt?") from exc


def read_delimited(files: DataFiles, name: str, *, sep: str, columns: list[str] | None = None,
                   encoding: str = "utf-8", quoted: bool = False) -> pd.DataFrame:
    """Parse ``name`` into string columns, checking every line has as many fields as ``columns``.

    Without ``columns`` the first line is the header. Empty lines are skipped. ``quoted``: fields
    may be CSV-quoted (titles holding the separator). The index holds the 1-based file line of each
    row (named ``"line"``); ``attrs["source"]`` holds the file's label.
    """
    label = files.label(name)
    data = files.read_bytes(name)
    text = _decode(data, encoding, label)
    if columns is None:
        first = text.split("\n", 1)[0].rstrip("\r").lstrip("\ufeff")
        if not first.strip():
            raise DataError(f"{label}: line 1: expected a header line, found {'an empty file' if not text else repr(first)}")
        columns = [c.strip() for c in next(csv.reader([first], delimiter=sep)) if quoted] if quoted \
            else [c.strip() for c in first.split(sep)]
        skip = 1
    else:
        skip = 0
    if quoted and '"' in text:
        frame = _parse_quoted(text, sep, columns, skip, label)
    else:
        del text  # the fast path parses the bytes; free the decoded copy first
        frame = _parse_plain(data, sep, columns, skip, label, encoding, name)
    frame.attrs["source"] = label
    return frame


def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ends = np.flatnonzero(buf == 10)
    if len(buf) and buf[-1] != 10:  # a last line without a newline
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    return starts, ends


def _parse_plain(data: bytes, sep: str, columns: list[str], skip: int, label: str, encoding: str,
                 name: str) -> pd.DataFrame:
    """Field counts checked on the raw bytes (vectorised), then pandas' C parser, in blocks for progress."""
    raw_sep = sep.encode(encoding)
    if len(raw_sep) > 1:  # the C parser takes one-byte separators only ("::" in ML-1M)
        data, raw_sep = data.replace(raw_sep, b"\x1f"), b"\x1f"
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends = _line_bounds(buf)
    trimmed = ends - (ends > starts) * (buf[np.maximum(ends - 1, 0)] == 13) if len(buf) else ends
    seps = np.flatnonzero(buf == raw_sep[0])
    counts = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
    lines = np.arange(1, len(starts) + 1)
    keep = (trimmed > starts) & (lines > skip)
    bad = keep & (counts != len(columns))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        text = data[starts[k]:ends[k]].replace(b"\x1f", sep.encode(encoding)).decode(encoding, "replace")
        hint = " (the last line: the file looks truncated)" if k == len(starts) - 1 and counts[k] < len(columns) else ""
        raise DataError(f"{label}: line {k + 1}: expected {len(columns)} fields separated by {sep!r}, "
                        f"found {int(counts[k])}{hint}: {text[:120]!r}")
    numbers = lines[keep]
    reader = pd.read_csv(io.BytesIO(data), sep=raw_sep.decode(encoding), header=None, names=columns, skiprows=skip,
                         dtype=str, na_filter=False, quoting=csv.QUOTE_NONE, encoding=encoding,
                         skip_blank_lines=True, chunksize=_BLOCK_LINES, engine="c")
    with tqdm(total=len(numbers), desc=f"parse {name}", unit="rows", unit_scale=True, disable=None,
              leave=False) as bar:
        parts = []
        for chunk in reader:
            parts.append(chunk)
            bar.update(len(chunk))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns, dtype=object)
    if len(frame) != len(numbers):
        raise DataError(f"{label}: parsed {len(frame)} rows from {len(numbers)} non-empty lines; "
                        f"the file has stray line breaks or carriage returns")
    frame.index = pd.Index(numbers, name="line")
    return frame


def _parse_quoted(text: str, sep: str, columns: list[str], skip: int, label: str) -> pd.DataFrame:
    """CSV with quoted fields, one record per line (MovieLens ``movies.csv``), via the csv module."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    numbered = [(k + 1, line.rstrip("\r")) for k, line in enumerate(lines) if k >= skip and line.rstrip("\r")]
    try:
        rows = list(csv.reader((line for _, line in numbered), delimiter=sep, strict=True))
    except csv.Error as exc:
        raise DataError(f"{label}: malformed CSV: {exc}") from exc
    for (number, line), row in zip(numbered, rows):
        if len(row) != len(columns):
            hint = " (the last line: the file looks truncated)" if number == len(lines) and len(row) < len(columns) else ""
            raise DataError(f"{label}: line {number}: expected {len(columns)} fields separated by {sep!r}, "
                            f"found {len(row)}{hint}: {line[:120]!r}")
    return pd.DataFrame(rows, columns=columns, index=pd.Index([n for n, _ in numbered], name="line"), dtype=object)


def read_table_file(path: Path) -> pd.DataFrame:
    """A CSV/TSV or Parquet file as a DataFrame with inferred dtypes (for bring-your-own logs)."""
    suffixes = "".join(path.suffixes[-2:]).lower()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if suffixes.endswith((".parquet", ".pq")):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from exc
    else:
        sep = "\t" if ".tsv" in suffixes else ","
        try:
            with warnings.catch_warnings():  # pandas only warns when line 2 has more fields than the header
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(path, sep=sep, index_col=False, on_bad_lines="error")
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path}: the file is empty") from exc
        except (pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{path}: malformed {sep!r}-separated file: {exc}") from exc
    frame.attrs["source"] = str(path)
    return frame

