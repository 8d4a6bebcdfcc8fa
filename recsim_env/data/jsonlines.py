"""JSON lines, streamed: one record per line, read a line at a time from plain or compressed files.

Review dumps (Amazon, Yelp) run to many gigabytes, so nothing here holds more than one line's
objects at once; callers keep only the fields they need. The compression is read from the first
bytes, as :func:`recsim_env.data.files.read_table_file` reads it, but decompressed as a stream.
Lines are numbered from 1 (these files have no header); empty lines are skipped.

A line that is not a JSON object is a :class:`~recsim_env.errors.DataError` naming the file and the
line (``strict``), or is skipped and counted, with one warning at the end giving the count and the
first such line (``lenient``). Lenient reading also accepts Python dict literals (single quotes,
``True``/``None``), which older Amazon metadata dumps hold instead of JSON.
"""

from __future__ import annotations

import ast
import bz2
import codecs
import gzip
import json
import logging
import lzma
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from recsim_env.data.files import _COMPRESSED, DataFiles
from recsim_env.errors import DataError

log = logging.getLogger(__name__)

_STREAMS = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}  # each takes an open file object
_SNIFF_BYTES = 1 << 20  # a first line longer than this is not a record of a JSON-lines dump
_CORRUPT = (OSError, EOFError, zlib.error, lzma.LZMAError)
_DECODE = json.JSONDecoder().decode


@contextmanager
def open_stream(files: DataFiles, name: str) -> Iterator[BinaryIO]:
    """``name`` as a stream of its decompressed bytes (gzip, bzip2 and xz are told by their first bytes)."""
    with files.open(name) as raw:  # a file or a zip member: both buffered, so peek() looks without consuming
        head = raw.peek(8)[:8]
        kind = next((kind for magic, (kind, _) in _COMPRESSED.items() if head.startswith(magic)), None)
        if kind is None:
            yield raw
            return
        # the decompressors leave a file object they were given open: the outer `with` closes it
        with _STREAMS[kind](raw) as stream:
            yield stream


def first_record(files: DataFiles, name: str) -> dict | None:
    """The first non-empty line as a JSON object (or a Python dict literal); ``None`` if it is not one."""
    try:
        with open_stream(files, name) as stream:
            line = b""
            while not line.strip():
                line = stream.readline(_SNIFF_BYTES)
                if not line:
                    return None
    except _CORRUPT as exc:
        raise DataError(f"{files.label(name)}: cannot be read ({exc}); the file looks truncated or corrupt") from exc
    line = line.removeprefix(codecs.BOM_UTF8)
    if not line.lstrip().startswith(b"{"):  # a CSV header, a Parquet file: not worth parsing
        return None
    record = _parse(line, lenient=True)
    return record if isinstance(record, dict) else None


def records(files: DataFiles, name: str, *, lenient: bool = False) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` for each non-empty line of ``name`` (see the module docstring)."""
    label = files.label(name)
    number = 0
    skipped = 0
    first_skipped = 0
    with open_stream(files, name) as stream:
        try:
            for number, line in enumerate(stream, start=1):
                if line.isspace():  # stops at the first other byte: no copy of the line, unlike strip()
                    continue
                if number == 1:  # a byte-order mark, which some tools write and JSON does not allow
                    line = line.removeprefix(codecs.BOM_UTF8)
                record = _parse(line, lenient)
                if isinstance(record, dict):
                    yield number, record
                    continue
                if not lenient:
                    raise _bad_line(label, number, line, record, at_end=not stream.peek(1))
                skipped += 1
                first_skipped = first_skipped or number
        except _CORRUPT as exc:
            raise DataError(f"{label}: cannot be read past line {number} ({exc}); "
                            f"the file looks truncated or corrupt") from exc
    if skipped:
        log.warning("%s: skipped %d line(s) that are neither JSON objects nor Python dict literals, first at "
                    "line %d", label, skipped, first_skipped)


class _Unparsed:
    """What a line that is no record parses to: the reason, kept for the error message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse(line: bytes, lenient: bool) -> object:
    try:
        return _DECODE(line.decode("utf-8"))  # json.loads(bytes) would first guess the encoding, each line
    except json.JSONDecodeError as exc:  # its own text says "line 1": of the one line parsed, not the file
        reason = f"{exc.msg} at column {exc.colno}"
    except ValueError as exc:  # UnicodeDecodeError: bytes that are not UTF-8
        reason = str(exc)
    if lenient:
        try:
            return ast.literal_eval(line.decode("utf-8", "replace").strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return _Unparsed(reason)


def _bad_line(label: str, number: int, line: bytes, record: object, at_end: bool) -> DataError:
    what = f"not JSON ({record.reason})" if isinstance(record, _Unparsed) else \
        f"a JSON {type(record).__name__}, not an object"
    hint = "; it is the last line: the file looks truncated" if at_end and isinstance(record, _Unparsed) else ""
    text = line.decode("utf-8", "replace").strip()
    return DataError(f"{label}: line {number} is {what}{hint}: {text[:120]!r}")
