"""Precomputed item vectors (image, audio or any embedding computed elsewhere), aligned to a log's items.

:func:`load_item_vectors` reads one of three layouts, chosen by the file's first bytes / suffix:

==============================  ===================================================================
CSV / TSV (plain or gzip, bz2,  a header; a column ``item_id`` (the log's original item ids, kept
xz, one-file zip) or Parquet    as spelled: ``007`` stays ``007``) and ``d`` numeric columns, one
                                vector component each, in the file's column order (names are free:
                                ``v0, v1, ...``). Every other column is a component. Parquet may
                                instead hold one list column beside ``item_id``: the whole vector.
``.npz``                        two arrays: ``item_ids`` ``(n,)`` (strings or integers) and
                                ``vectors`` ``(n, d)`` floats. Read with ``allow_pickle=False``.
``.npy``                        one 2-D numeric array ``(n, 1 + d)``: column 0 the item id, an
                                integer (``7.0`` is item ``"7"``), columns ``1..d`` the vector. For
                                ids that are not integers (Amazon ASINs) use ``.npz`` or a table.
==============================  ===================================================================

Every item of the log must have exactly one row; rows for items the log lacks (a catalogue wider
than a k-core-filtered log) are ignored and counted in the log. Refused with a
:class:`~recsim_env.errors.DataError` naming the file, the item and its line (text: the file line,
header = line 1; Parquet, ``.npy``, ``.npz``: the 0-based row): a missing item, a duplicate id, a
non-numeric component, a NaN or infinite component, a width other than ``dim`` when one is asked.
A text line with too few or too many fields is refused by the reader, naming the line.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsim_env.data.files import read_table_file
from recsim_env.data.log import InteractionLog
from recsim_env.errors import DataError

logger = logging.getLogger(__name__)

ID_COLUMN = "item_id"
"""The id column of a table layout (``id_column`` names another)."""


@dataclass(frozen=True, eq=False)
class _Rows:
    """A parsed file before alignment: ids as text, components, and where each row sits in the file."""

    ids: np.ndarray
    vectors: np.ndarray
    places: list[str]
    source: str


def load_item_vectors(path: str | os.PathLike, log: InteractionLog, *, dim: int | None = None,
                      id_column: str = ID_COLUMN) -> np.ndarray:
    """``(log.n_items, d)`` float32: row ``i`` is the vector of the log's item index ``i``.

    Args:
        path: a table (CSV / TSV / Parquet), ``.npz`` or ``.npy`` file in a layout of the module docstring.
        log: the log whose item index the rows are aligned to (its ``item_ids``, compared as text).
        dim: the width the caller expects; another width is a DataError. ``None``: the file's.
        id_column: the id column of a table layout.

    Returns:
        The aligned vectors (float32, finite).

    Examples:
        >>> import tempfile, numpy as np, pandas as pd
        >>> from recsim_env.data.log import InteractionLog
        >>> log = InteractionLog.from_frames(pd.DataFrame({"user_id": ["u"] * 2, "item_id": ["b", "a"],
        ...                                                "timestamp": [1, 2]}))
        >>> path = Path(tempfile.mkdtemp()) / "vectors.csv"
        >>> _ = path.write_text("item_id,v0,v1\\na,1.0,0.0\\nb,0.0,2.0\\nc,3.0,3.0\\n")
        >>> load_item_vectors(path, log)[log.items["item_id"].tolist().index("a")].tolist()
        [1.0, 0.0]
    """
    rows = _read_rows(Path(path).expanduser(), id_column)
    _check_values(rows, dim)
    return _align(rows, log)


def _read_rows(path: Path, id_column: str) -> _Rows:
    if not path.is_file():
        raise DataError(f"{path}: no such item-vectors file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path)
    if suffix == ".npz":
        return _read_npz(path)
    return _read_table(path, id_column)


def _read_table(path: Path, id_column: str) -> _Rows:
    frame = read_table_file(path, text_columns=(id_column,))
    if id_column not in frame.columns:
        raise DataError(f"{path}: no {id_column!r} column for the item ids; it has {list(map(str, frame.columns))}")
    text = frame.index.name == "line"
    places = [f"line {n}" if text else f"row {n}" for n in frame.index]
    ids = frame[id_column].map(_id_text).to_numpy(dtype=object)
    components = frame.drop(columns=[id_column])
    if components.shape[1] == 1 and len(components) and _is_sequence(components.iloc[0, 0]):
        return _Rows(ids, _stack_lists(components.iloc[:, 0], ids, places, path), places, str(path))
    columns = [_numeric_column(components[c], ids, places, path, id_column) for c in components.columns]
    vectors = np.stack(columns, axis=1) if columns else np.zeros((len(ids), 0))
    return _Rows(ids, vectors, places, str(path))


def _numeric_column(values: pd.Series, ids: np.ndarray, places: list[str], path: Path, id_column: str) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(numbers.isna().to_numpy() & values.notna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise DataError(f"{path}: {places[row]}: column {values.name!r} holds {values.iloc[row]!r}, not a number "
                        f"(item {ids[row]!r}); every column but {id_column!r} is a vector component")
    return numbers.to_numpy(dtype=np.float64)


def _is_sequence(value: object) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _stack_lists(values: pd.Series, ids: np.ndarray, places: list[str], path: Path) -> np.ndarray:
    """One list column (Parquet's usual form of an embedding) as an ``(n, d)`` array, every row ``d`` long."""
    width = len(values.iloc[0])
    for row, vector in enumerate(values):
        if not _is_sequence(vector) or len(vector) != width:
            found = len(vector) if _is_sequence(vector) else type(vector).__name__
            raise DataError(f"{path}: {places[row]}: item {ids[row]!r} has a vector of {found} components in "
                            f"column {values.name!r}, the first row has {width}")
    try:
        return np.array([np.asarray(v, dtype=np.float64) for v in values]).reshape(len(values), width)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: column {values.name!r} holds vectors that are not numbers ({exc})") from exc


def _read_npz(path: Path) -> _Rows:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz of plain arrays ({exc})") from exc
    missing = [name for name in ("item_ids", "vectors") if name not in arrays]
    if missing:
        raise DataError(f"{path}: lacks array(s) {missing}; an item-vectors .npz holds 'item_ids' (n,) and "
                        f"'vectors' (n, d); it has {sorted(arrays)}")
    ids = arrays["item_ids"]
    vectors = arrays["vectors"]
    if ids.ndim != 1 or vectors.ndim != 2 or len(ids) != len(vectors):
        raise DataError(f"{path}: 'item_ids' must be (n,) and 'vectors' (n, d), got shapes {ids.shape} and "
                        f"{vectors.shape}")
    if not np.issubdtype(vectors.dtype, np.number):
        raise DataError(f"{path}: 'vectors' must be numeric, got dtype {vectors.dtype}")
    return _Rows(np.array([_id_text(i) for i in ids], dtype=object), vectors.astype(np.float64),
                 [f"row {n}" for n in range(len(ids))], str(path))


def _read_npy(path: Path) -> _Rows:
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy of numbers ({exc})") from exc
    if table.ndim != 2 or table.shape[1] < 2 or not np.issubdtype(table.dtype, np.number):
        raise DataError(f"{path}: an item-vectors .npy is one numeric (n, 1 + d) array, item id in column 0; "
                        f"got shape {table.shape} and dtype {table.dtype}")
    ids = table[:, 0]
    fractional = np.flatnonzero(~np.isfinite(ids) | (ids != np.round(ids)))
    if fractional.size:
        row = int(fractional[0])
        raise DataError(f"{path}: row {row}: item id {float(ids[row])!r} in column 0 is not an integer; for ids "
                        f"that are not integers write an .npz ('item_ids', 'vectors') or a table")
    return _Rows(np.array([str(int(i)) for i in ids], dtype=object), table[:, 1:].astype(np.float64),
                 [f"row {n}" for n in range(len(ids))], str(path))


def _id_text(value: object) -> str:
    """An id as spelled (an integer id is its digits, as the log's schema compares them)."""
    return str(value.item() if isinstance(value, np.generic) else value)


def _check_values(rows: _Rows, dim: int | None) -> None:
    if not len(rows.ids):
        raise DataError(f"{rows.source}: no item vectors (the file has no rows)")
    width = rows.vectors.shape[1]
    if width < 1:
        raise DataError(f"{rows.source}: no vector components, only item ids")
    if dim is not None and width != dim:
        raise DataError(f"{rows.source}: vectors have {width} components, expected {dim}")
    bad = np.flatnonzero(~np.isfinite(rows.vectors).all(axis=1))
    if bad.size:
        row = int(bad[0])
        component = int(np.flatnonzero(~np.isfinite(rows.vectors[row]))[0])
        raise DataError(f"{rows.source}: {rows.places[row]}: item {rows.ids[row]!r} has a non-finite component "
                        f"({rows.vectors[row, component]} at position {component}); {bad.size} row(s) have one")
    repeated = np.flatnonzero(pd.Index(rows.ids).duplicated())
    if repeated.size:
        row = int(repeated[0])
        earlier = int(np.flatnonzero(rows.ids == rows.ids[row])[0])
        raise DataError(f"{rows.source}: {rows.places[row]}: item {rows.ids[row]!r} already has a vector at "
                        f"{rows.places[earlier]}; give each item one row")


def _align(rows: _Rows, log: InteractionLog) -> np.ndarray:
    wanted = np.array([_id_text(i) for i in log.item_ids], dtype=object)
    position = pd.Index(rows.ids).get_indexer(wanted)
    missing = np.flatnonzero(position < 0)
    if missing.size:
        shown = ", ".join(repr(wanted[i]) for i in missing[:5])
        raise DataError(f"{rows.source}: no vector for item(s) {shown}{' ...' if missing.size > 5 else ''} of "
                        f"{log.name!r} ({missing.size} of its {log.n_items} items have none)")
    extra = len(rows.ids) - log.n_items
    if extra:
        logger.info("%s: %d vectors for items %r does not have are ignored", rows.source, extra, log.name)
    return rows.vectors[position].astype(np.float32)
