"""Raw frames and a :class:`ColumnMapping` -> the validated, indexed frames of an :class:`InteractionLog`.

Every check names the source, the column and an offending row. Documented repairs, each logged:
exact duplicate interaction rows are dropped (``on_duplicates="drop"``, the default; ``"error"``
refuses them instead); with ``on_unknown_items="drop"`` interactions naming items absent from the
item table are dropped (the default ``"error"`` refuses them); numeric timestamps too large for
epoch seconds are read as milliseconds, microseconds or nanoseconds by the column's largest value
(below 1e11, 1e14, 1e17, 1e20) and converted to seconds.

Ids are labels, compared as spelled: ``7``, ``7.0`` and ``007`` are three ids (an integer id
column and a string one still meet: ``7`` is spelled ``"7"``). Float id columns at or beyond
2**53 are refused, since neighbouring integers there are one float. Interactions naming users
absent from a given user table are refused (their features would be NaN), and a table that
matches no interaction at all is reported with an id from each side.

Where an offending row is named: for a DataFrame, ``row N`` is its index label (what
``frame.loc[N]`` finds; the 0-based position under the default index). Frames that the file loaders
produce carry the file line of each row as an index named ``"line"`` (the header is line 1) and the
file in ``frame.attrs["source"]``; messages then name that file and ``line N`` instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from recsim_env.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColumnMapping:
    """Names of the source columns that hold each canonical field (``None``: the data lacks it)."""

    user: str = "user_id"
    """Column with the user id."""
    item: str = "item_id"
    """Column with the item id (in the interactions and in the item table)."""
    timestamp: str | None = "timestamp"
    """Column with the time of the interaction (epoch seconds, or a date string); ``None``: row order."""
    rating: str | None = None
    """Column with explicit ratings."""
    click: str | None = None
    """Column with 0/1 clicks."""
    dwell: str | None = None
    """Column with dwell time in seconds."""
    purchase: str | None = None
    """Column with 0/1 purchases / conversions."""
    title: str | None = None
    """Item-table column with the title or item text."""
    genres: str | None = None
    """Item-table column with genres: a list, or a string split on ``genre_sep``."""
    genre_sep: str = "|"
    """Separator of genres inside one string (``|`` for MovieLens, a space for RecBole)."""
    year: str | None = None
    """Item-table column with the release year (or a date from which the year is taken)."""

    def responses(self) -> dict[str, str]:
        """Canonical response name -> source column, for the responses this data has."""
        named = {"rating": self.rating, "click": self.click, "dwell": self.dwell, "purchase": self.purchase}
        return {k: v for k, v in named.items() if v is not None}


class IndexedFrames(NamedTuple):
    """The three frames of an :class:`~recsim_env.data.log.InteractionLog`, validated and indexed."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame


_FLOAT_EXACT = 2.0**53  # from here on, float64 cannot tell neighbouring integers apart
_BINARY_RESPONSES = ("click", "purchase")
# Epoch units by the largest |value| they are read from: 1e11 s is the year 5138, 1e11 ms is 1973.
_EPOCH_UNITS = ((1e11, 1, "seconds"), (1e14, 10**3, "milliseconds"), (1e17, 10**6, "microseconds"),
                (1e20, 10**9, "nanoseconds"))


def _require_columns(frame: pd.DataFrame, needed: dict[str, str], source: str, table: str) -> None:
    missing = [f"{src!r} (for {canon})" for canon, src in needed.items() if src not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: {table} table lacks column(s) {', '.join(missing)}; "
            f"it has {list(map(str, frame.columns))}. Pass a ColumnMapping naming the right columns."
        )


def _where(frame: pd.DataFrame, row: int) -> str:
    """``line N`` for frames read from a file (index named "line"), else ``row`` and the index label
    of position ``row`` (the position itself under the default RangeIndex)."""
    return f"line {frame.index[row]}" if frame.index.name == "line" else f"row {_plain(frame.index[row])!r}"


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages read ``5``, not ``np.int64(5)``."""
    return value.item() if isinstance(value, np.generic) else value


def _source(frame: pd.DataFrame | None, default: str) -> str:
    """The file a loader read ``frame`` from, else the caller's ``source``."""
    return str(frame.attrs.get("source", default)) if frame is not None else default


def _first_bad(mask: np.ndarray, frame: pd.DataFrame, column: str) -> str:
    row = int(np.flatnonzero(mask)[0])
    return f"{_where(frame, row)} (value {_plain(frame[column].iloc[row])!r})"


def _ids(frame: pd.DataFrame, column: str, source: str, table: str) -> pd.Series:
    col = frame[column]
    bad = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
    if bad.any():
        raise DataError(f"{source}: {table} column {column!r} has {int(bad.sum())} empty or NaN id(s), first at "
                        f"{_first_bad(bad, frame, column)}")
    if pd.api.types.is_float_dtype(col):
        merged = np.abs(col.to_numpy(dtype=np.float64)) >= _FLOAT_EXACT
        if merged.any():
            row = int(np.flatnonzero(merged)[0])
            raise DataError(f"{source}: {table} column {column!r} holds ids as floating-point numbers; "
                            f"{_plain(col.iloc[row])!r} at {_where(frame, row)} is 2**53 or more, where neighbouring "
                            f"integer ids are one float (9007199254740993 reads as 9007199254740992). Pass ids as "
                            f"integers or strings (pd.read_csv(..., dtype={{{column!r}: str}}))")
    # Ids are compared as strings so that 1 and "1" from two files name the same thing.
    return col.astype(str).str.strip()


def _numeric(frame: pd.DataFrame, column: str, canon: str, source: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna().to_numpy() & frame[column].notna().to_numpy()
    if bad.any():
        raise DataError(f"{source}: column {column!r} ({canon}) has non-numeric value(s), first at "
                        f"{_first_bad(bad, frame, column)}")
    if values.isna().any():
        raise DataError(f"{source}: column {column!r} ({canon}) has missing value(s), first at "
                        f"{_first_bad(values.isna().to_numpy(), frame, column)}")
    numbers = values.to_numpy(dtype=np.float64)
    if canon in _BINARY_RESPONSES:
        bad = (numbers != 0) & (numbers != 1)
        if bad.any():
            raise DataError(f"{source}: column {column!r} ({canon}) must be 0 or 1, first at "
                            f"{_first_bad(bad, frame, column)}")
    return numbers


def _timestamps(frame: pd.DataFrame, column: str | None, source: str) -> np.ndarray:
    if column is None:
        return np.arange(len(frame), dtype=np.int64)
    col = frame[column]
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().all():
        return _epoch_seconds(numeric, frame, column, source)
    parsed = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
    # Read the column the way most of its rows read (ties: epoch seconds), and name the rows that don't.
    if numeric.notna().sum() >= parsed.notna().sum():
        raise DataError(f"{source}: column {column!r} (timestamp) has unparseable value(s), first at "
                        f"{_first_bad(numeric.isna().to_numpy(), frame, column)}; expected epoch seconds "
                        f"like the other rows")
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise DataError(f"{source}: column {column!r} (timestamp) has unparseable value(s), first at "
                        f"{_first_bad(bad, frame, column)}")
    # Seconds via a Timedelta: the integer view depends on the resolution pandas chose (ns, or us in pandas 3).
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


def _epoch_unit(magnitude: float) -> tuple[float, int, str]:
    """The unit a value below 1e20 is read in (callers refuse larger ones first)."""
    return next(unit for unit in _EPOCH_UNITS if magnitude < unit[0])


def _epoch_seconds(numeric: pd.Series, frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """Numeric epoch times as whole seconds, the unit read from the column's largest value."""
    # Integers beyond int64 come back from to_numeric as Python ints in an object column.
    magnitude = np.abs(numeric.to_numpy(dtype=np.float64))
    too_large = ~(magnitude < _EPOCH_UNITS[-1][0])  # NaN cannot occur here; inf is too large
    if too_large.any():
        raise DataError(f"{source}: column {column!r} (timestamp) has value(s) too large for epoch seconds, "
                        f"milliseconds, microseconds or nanoseconds (1e20 or more), first at "
                        f"{_first_bad(too_large, frame, column)}")
    largest = int(np.argmax(magnitude))
    unit = _epoch_unit(magnitude[largest])
    # Below 1e9 a value may be a relative time in any unit; from there on it looks like an absolute epoch.
    smallest = int(np.argmin(np.where(magnitude >= 1e9, magnitude, np.inf)))
    if magnitude[smallest] >= 1e9 and _epoch_unit(magnitude[smallest]) != unit:
        raise DataError(f"{source}: column {column!r} (timestamp) mixes epoch units: {_where(frame, smallest)} "
                        f"(value {_plain(frame[column].iloc[smallest])!r}) reads as "
                        f"{_epoch_unit(magnitude[smallest])[2]}, {_where(frame, largest)} (value "
                        f"{_plain(frame[column].iloc[largest])!r}) as {unit[2]}")
    per_second = unit[1]
    if per_second > 1:
        log.warning("%s: column %r read as epoch %s (largest value %r at %s; seconds stop at 1e11, the year "
                    "5138) and converted to seconds", source, column, unit[2],
                    _plain(frame[column].iloc[largest]), _where(frame, largest))
    if pd.api.types.is_integer_dtype(numeric):
        return (numeric.to_numpy() // per_second).astype(np.int64)
    if per_second == 1:
        return numeric.to_numpy(dtype=np.float64).astype(np.int64)
    return np.floor(numeric.to_numpy(dtype=np.float64) / per_second).astype(np.int64)


def _genres(value: object, sep: str) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    if isinstance(value, str):
        return tuple(g.strip() for g in value.split(sep) if g.strip() and g.strip() != "(no genres listed)")
    return tuple(str(g) for g in value)  # type: ignore[union-attr]


def _years(col: pd.Series) -> np.ndarray:
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().sum() < col.notna().sum():  # dates such as "01-Jan-1995": take the year
        dates = pd.to_datetime(col, errors="coerce", format="mixed")
        numeric = numeric.fillna(dates.dt.year)
    return numeric.to_numpy(dtype=np.float64)


def _item_table(items: pd.DataFrame | None, item_ids: pd.Series, m: ColumnMapping, source: str) -> pd.DataFrame:
    if items is None:
        ids = pd.unique(item_ids)
        return pd.DataFrame({"item_id": ids, "title": [""] * len(ids), "genres": [()] * len(ids),
                             "year": np.full(len(ids), np.nan)})
    _require_columns(items, {"item": m.item}, source, "item")
    ids = _ids(items, m.item, source, "item")
    dup = ids.duplicated().to_numpy()
    if dup.any():
        raise DataError(f"{source}: item table repeats id(s) in column {m.item!r}, first at "
                        f"{_first_bad(dup, items, m.item)}")
    out = pd.DataFrame({"item_id": ids.to_numpy()})
    out["title"] = items[m.title].fillna("").astype(str).to_numpy() if m.title in items.columns else ""
    out["genres"] = [_genres(v, m.genre_sep) for v in items[m.genres]] if m.genres in items.columns else [()] * len(out)
    out["year"] = _years(items[m.year]) if m.year in items.columns else np.nan
    used = {m.item, m.title, m.genres, m.year}
    for col in items.columns:
        if col not in used and pd.api.types.is_numeric_dtype(items[col]):
            out[str(col)] = items[col].to_numpy(dtype=np.float64)
    return out


def _user_table(users: pd.DataFrame | None, user_ids: np.ndarray, m: ColumnMapping, source: str) -> pd.DataFrame:
    if users is None:
        return pd.DataFrame({"user_id": user_ids})
    _require_columns(users, {"user": m.user}, source, "user")
    ids = _ids(users, m.user, source, "user")
    dup = ids.duplicated().to_numpy()
    if dup.any():
        raise DataError(f"{source}: user table repeats id(s) in column {m.user!r}, first at "
                        f"{_first_bad(dup, users, m.user)}")
    feats = users.drop(columns=[m.user]).assign(_id=ids.to_numpy()).set_index("_id")
    out = pd.DataFrame({"user_id": user_ids}).join(feats, on="user_id")
    return out.reset_index(drop=True)


def index_frames(interactions: pd.DataFrame, items: pd.DataFrame | None, users: pd.DataFrame | None,
                 m: ColumnMapping, *, source: str, on_duplicates: str = "drop",
                 on_unknown_items: str = "error") -> IndexedFrames:
    """Validate raw frames against ``m`` and index them (see the module docstring); the log itself is
    :meth:`InteractionLog.from_frames <recsim_env.data.log.InteractionLog.from_frames>`."""
    if on_duplicates not in ("drop", "error"):
        raise DataError(f"on_duplicates must be 'drop' or 'error', got {on_duplicates!r}")
    if on_unknown_items not in ("drop", "error"):
        raise DataError(f"on_unknown_items must be 'drop' or 'error', got {on_unknown_items!r}")
    if not isinstance(interactions, pd.DataFrame):
        raise DataError(f"{source}: interactions must be a pandas DataFrame, got {type(interactions).__name__}")
    inter_src, item_src, user_src = (_source(f, source) for f in (interactions, items, users))
    if len(interactions) == 0:
        raise DataError(f"{inter_src}: the interaction log is empty (no rows)")
    needed = {"user": m.user, "item": m.item} | ({"timestamp": m.timestamp} if m.timestamp else {})
    needed |= m.responses()
    _require_columns(interactions, needed, inter_src, "interaction")

    frame = pd.DataFrame({"user_id": _ids(interactions, m.user, inter_src, "interaction").to_numpy(),
                          "item_id": _ids(interactions, m.item, inter_src, "interaction").to_numpy(),
                          "timestamp": _timestamps(interactions, m.timestamp, inter_src)})
    for canon, col in m.responses().items():
        frame[canon] = _numeric(interactions, col, canon, inter_src).astype(np.float32)
    frame["_row"] = np.arange(len(frame))  # input position, so messages after the repairs still name it
    frame = _drop_duplicates(frame, inter_src, on_duplicates, interactions)

    item_table = _item_table(items, frame["item_id"], m, item_src)
    item_index = pd.Index(item_table["item_id"])
    item_idx = item_index.get_indexer(frame["item_id"])
    unknown = item_idx < 0
    if items is not None and unknown.all():
        raise _nothing_matches("item", frame, item_table["item_id"], interactions, m.item, inter_src, item_src)
    if unknown.any():
        if on_unknown_items == "error":
            first = int(frame["_row"].to_numpy()[unknown][0])
            raise DataError(f"{inter_src}: {int(unknown.sum())} interaction(s) name items absent from the item table "
                            f"({item_src}), first at {_where(interactions, first)} (item id "
                            f"{interactions[m.item].iloc[first]!r} in column {m.item!r}); "
                            f"pass on_unknown_items='drop' to drop them")
        log.warning("%s: dropped %d interaction(s) naming items absent from the item table", inter_src,
                    int(unknown.sum()))
        frame, item_idx = frame[~unknown].reset_index(drop=True), item_idx[~unknown]
    if len(frame) == 0:
        raise DataError(f"{inter_src}: no interactions left after dropping unknown items")

    user_ids = pd.unique(frame["user_id"])
    if users is not None:  # keep the user table's order where it has one, so indices match its rows
        user_ids = _user_ids_in_table(frame, users, interactions, m, inter_src, user_src)
    user_table = _user_table(users, np.asarray(user_ids, dtype=object), m, user_src)
    user_idx = pd.Index(user_table["user_id"]).get_indexer(frame["user_id"])

    inter = pd.DataFrame({"user": user_idx.astype(np.int32), "item": item_idx.astype(np.int32),
                          "timestamp": frame["timestamp"].to_numpy(np.int64)})
    for canon in m.responses():
        inter[canon] = frame[canon].to_numpy(np.float32)
    inter = inter.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
    return IndexedFrames(inter, item_table, user_table)


def _user_ids_in_table(frame: pd.DataFrame, users: pd.DataFrame, interactions: pd.DataFrame, m: ColumnMapping,
                       inter_src: str, user_src: str) -> np.ndarray:
    """The user table's ids that the interactions name, in the table's order; a user the table lacks
    would get NaN for every feature, so that is refused."""
    _require_columns(users, {"user": m.user}, user_src, "user")
    table_ids = _ids(users, m.user, user_src, "user")
    absent = ~frame["user_id"].isin(table_ids).to_numpy()
    if absent.all():
        raise _nothing_matches("user", frame, table_ids, interactions, m.user, inter_src, user_src)
    if absent.any():
        first = int(frame["_row"].to_numpy()[absent][0])
        raise DataError(f"{inter_src}: {int(absent.sum())} interaction(s) name users absent from the user table "
                        f"({user_src}), first at {_where(interactions, first)} (user id "
                        f"{_plain(interactions[m.user].iloc[first])!r} in column {m.user!r}); their features would "
                        f"be NaN. Add those users to the table or drop their interactions")
    return table_ids[table_ids.isin(frame["user_id"])].to_numpy()


def _nothing_matches(kind: str, frame: pd.DataFrame, table_ids: pd.Series, interactions: pd.DataFrame,
                     column: str, inter_src: str, table_src: str) -> DataError:
    """A join that matched no row: most often one file spells ids differently (``1.0`` against ``1``)."""
    first = int(frame["_row"].iloc[0])
    theirs = f"the table's {str(table_ids.iloc[0])!r}" if len(table_ids) else "an empty table"
    return DataError(f"{inter_src}: none of the {frame[f'{kind}_id'].nunique()} {kind} id(s) of the interactions "
                     f"match the {kind} table ({table_src}): e.g. {frame[f'{kind}_id'].iloc[0]!r} at "
                     f"{_where(interactions, first)} (column {column!r}) against {theirs}; ids are compared as "
                     f"spelled (1, 1.0 and 01 are three ids)")


def _drop_duplicates(frame: pd.DataFrame, source: str, on_duplicates: str, raw: pd.DataFrame) -> pd.DataFrame:
    dup = frame.drop(columns="_row").duplicated().to_numpy()
    if not dup.any():
        return frame
    if on_duplicates == "error":
        row = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"{source}: {int(dup.sum())} exact duplicate interaction row(s), first at "
            f"{_where(raw, row)} (user {frame['user_id'].iloc[row]!r}, item {frame['item_id'].iloc[row]!r}); "
            f"pass on_duplicates='drop' to drop them"
        )
    log.warning("%s: dropped %d exact duplicate interaction row(s)", source, int(dup.sum()))
    return frame[~dup].reset_index(drop=True)
