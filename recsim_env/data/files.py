"""Raw data files: one view over a folder or a zip, and strict parsing of delimited text.

Dataset archives nest their files differently (``ml-100k.zip`` holds ``ml-100k/u.data``), so
:class:`DataFiles` finds files by base name at the top level or one folder down. :func:`read_delimited`
refuses, naming the file and the line, what pandas would silently repair: a line with the wrong
number of fields (a truncated file ends in one) and bytes that are not valid in the file's encoding.
Parsed frames carry the file line of each row as their index (named ``"line"``; the header, where
there is one, is line 1) and the file's label in ``frame.attrs["source"]``, so later checks in
:mod:`recsim_env.data.schema` can name both. :func:`read_table_file` (bring-your-own CSV/TSV/Parquet)
tells formats apart by their first bytes, not by the file's suffix.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
import zipfile
import zlib
from collections.abc import Callable, Collection
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
                raise DataError(
                    f"{self.label(name)}: cannot be read ({exc}); the file looks truncated or corrupt"
                ) from exc
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
            raise DataError(
                f"{label}: line 1: expected a header line, found {'an empty file' if not text else repr(first)}"
            )
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


def _field_count_error(label: str, line: int, expected: int, found: int, sep: str, text: str,
                       last: bool) -> DataError:
    """One message for a line with the wrong number of fields, whichever reader found it."""
    hint = "; it is the last line: the file looks truncated" if last and found < expected else ""
    return DataError(f"{label}: line {line} has too {'few' if found < expected else 'many'} fields "
                     f"(expected {expected} separated by {sep!r}, got {found}{hint}): {text[:120]!r}")


def _plain_line_numbers(data: bytes, raw_sep: bytes, n_fields: int, skip: int, label: str, sep: str,
                        encoding: str) -> np.ndarray:
    """File lines (1-based) of the non-empty lines after ``skip``, each checked to hold ``n_fields``
    fields (vectorised over the raw bytes; only for text without quoted fields)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends = _line_bounds(buf)
    trimmed = ends - (ends > starts) * (buf[np.maximum(ends - 1, 0)] == 13) if len(buf) else ends
    seps = np.flatnonzero(buf == raw_sep[0])
    counts = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
    lines = np.arange(1, len(starts) + 1)
    keep = (trimmed > starts) & (lines > skip)
    bad = keep & (counts != n_fields)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        text = data[starts[k]:trimmed[k]].replace(raw_sep, sep.encode(encoding)).decode(encoding, "replace")
        raise _field_count_error(label, k + 1, n_fields, int(counts[k]), sep, text, k == len(starts) - 1)
    return lines[keep]


def _parse_plain(data: bytes, sep: str, columns: list[str], skip: int, label: str, encoding: str,
                 name: str) -> pd.DataFrame:
    """Field counts checked on the raw bytes (vectorised), then pandas' C parser, in blocks for progress."""
    raw_sep = sep.encode(encoding)
    if len(raw_sep) > 1:  # the C parser takes one-byte separators only ("::" in ML-1M)
        data, raw_sep = data.replace(raw_sep, b"\x1f"), b"\x1f"
    numbers = _plain_line_numbers(data, raw_sep, len(columns), skip, label, sep, encoding)
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
            raise _field_count_error(label, number, len(columns), len(row), sep, line, number == len(lines))
    return pd.DataFrame(rows, columns=columns, index=pd.Index([n for n, _ in numbered], name="line"), dtype=object)


_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_COMPRESSED: dict[bytes, tuple[str, Callable[[bytes], bytes]]] = {
    b"\x1f\x8b": ("gzip", gzip.decompress), b"BZh": ("bzip2", bz2.decompress), b"\xfd7zXZ\x00": ("xz", lzma.decompress)}


def read_table_file(path: Path, text_columns: Collection[str] = ()) -> pd.DataFrame:
    """A CSV/TSV or Parquet file as a DataFrame (for bring-your-own logs).

    The format comes from the file's first bytes, not its suffix: Parquet, or delimited text (plain,
    gzip, bzip2, xz, or a zip holding one file) separated by tabs (a ``.tsv`` name, or a header with
    tabs and no commas) or else commas. Text columns named in ``text_columns`` (ids) are
    kept as the file spells them (``007`` stays ``007``, ``9007199254740993`` is not rounded to a
    float); the others get pandas' inferred dtypes. Every line must hold as many fields as the
    header. The index of a text table is each row's file line (named ``"line"``, header = line 1);
    a Parquet table keeps its 0-based row positions.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_PARQUET_MAGIC) or path.suffix.lower() in (".parquet", ".pq"):
        frame = _read_parquet(path)
    else:
        frame = _read_text_table(path, _decompressed(path), text_columns)
    frame.attrs["source"] = str(path)
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from exc


def _decompressed(path: Path) -> bytes:
    """The file's bytes, decompressed where its first bytes say it is compressed."""
    data = path.read_bytes()
    if data.startswith(_ZIP_MAGIC):
        return _single_zip_member(path, data)
    for magic, (kind, decompress) in _COMPRESSED.items():
        if data.startswith(magic):
            try:
                return decompress(data)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
                raise DataError(f"{path}: cannot be decompressed as {kind} ({exc}); "
                                f"the file looks truncated or corrupt") from exc
    return data


def _single_zip_member(path: Path, data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise DataError(f"{path}: a zip archive of {len(members)} files; load_frames reads one table, "
                                f"load_dataset reads a dataset folder or archive")
            return archive.read(members[0])
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{path}: cannot be read as a zip archive ({exc}); the file looks truncated or corrupt"
        ) from exc


def _read_text_table(path: Path, data: bytes, text_columns: Collection[str]) -> pd.DataFrame:
    label = str(path)
    text = _decode(data, "utf-8", label)
    header = text.split("\n", 1)[0].rstrip("\r").lstrip("\ufeff")
    if not header.strip():
        raise DataError(
            f"{label}: the file is empty" if not text.strip() else f"{label}: line 1: expected a header line"
        )
    sep = "\t" if ".tsv" in "".join(path.suffixes).lower() or ("\t" in header and "," not in header) else ","
    columns = next(csv.reader([header], delimiter=sep))
    if '"' in text:
        numbers = _quoted_line_numbers(text, sep, len(columns), label)
    else:
        numbers = _plain_line_numbers(data, sep.encode(), len(columns), 1, label, sep, "utf-8")
    del text
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep, index_col=False, encoding="utf-8",
                            dtype={c: str for c in columns if c in text_columns})
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{label}: malformed {sep!r}-separated file: {exc}") from exc
    if len(frame) != len(numbers):
        raise DataError(f"{label}: parsed {len(frame)} rows from {len(numbers)} records; "
                        f"the file has stray line breaks or carriage returns")
    frame.index = pd.Index(numbers, name="line")
    return frame


def _quoted_line_numbers(text: str, sep: str, n_fields: int, label: str) -> np.ndarray:
    """First file line of each record after the header (quoted fields may span lines), each checked
    to hold ``n_fields`` fields."""
    n_lines = text.count("\n") + (not text.endswith("\n"))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    numbers = []
    previous_end = 0
    try:
        for row in reader:
            first_line = previous_end + 1
            previous_end = reader.line_num
            if previous_end == 1 or not row:  # the header, or a blank line (pandas skips those too)
                continue
            if len(row) != n_fields:
                raise _field_count_error(label, first_line, n_fields, len(row), sep, sep.join(row),
                                         previous_end == n_lines)
            numbers.append(first_line)
    except csv.Error as exc:
        raise DataError(f"{label}: malformed CSV near line {reader.line_num}: {exc}") from exc
    return np.asarray(numbers, dtype=np.int64)
