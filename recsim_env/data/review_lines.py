"""Review lines -> arrays: the streamed reading that the Amazon and Yelp loaders share.

A review file is read a chunk of lines at a time (see :mod:`recsim_env.data.jsonlines`); each
chunk's users and items become integer codes into vocabularies that grow as ids arrive, its ratings
and times become numbers, and the chunk's Python objects are dropped. Memory then grows with the
reviews (a few bytes each) and the distinct ids, not with the file's text. Ids are spelled out
again only for the reviews a k-core keeps (:meth:`ReviewArrays.kept`). Every value that cannot be
read is a :class:`~recsim_env.errors.DataError` naming the file, the line and the key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsim_env.data.files import DataFiles
from recsim_env.data.filters import kcore_mask
from recsim_env.data.jsonlines import records
from recsim_env.errors import DataError

log = logging.getLogger(__name__)

_CHUNK_LINES = 100_000  # lines gathered into Python lists before they become arrays


@dataclass(frozen=True)
class ReviewFormat:
    """Which keys of a review line hold each field, and how its time is written."""

    name: str
    """The format's name, for messages."""
    user: str
    """Key of the user id."""
    item: str
    """Key of the item id (the key the metadata file names its items by)."""
    rating: str
    """Key of the star rating."""
    time: str
    """Key of the time of the review."""
    time_unit: str
    """``"ms"`` or ``"s"`` since the epoch, or ``"date"`` (an ISO date and time, UTC)."""


@dataclass(frozen=True, eq=False)
class ReviewArrays:
    """A review file as arrays: ids as codes into the vocabularies, times in epoch seconds."""

    label: str
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    seconds: np.ndarray
    lines: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray

    def kept(self, min_user: int, min_item: int) -> pd.DataFrame:
        """The k-core's reviews with ids spelled out, indexed by file line (for the schema's messages)."""
        keep, rounds = kcore_mask(self.users, self.items, min_user, min_item)
        if rounds:
            log.info("%s: k-core (users >= %d, items >= %d) keeps %d of %d reviews after %d round(s)", self.label,
                     min_user, min_item, int(keep.sum()), len(keep), rounds)
        frame = pd.DataFrame({"user_id": self.user_ids[self.users[keep]], "item_id": self.item_ids[self.items[keep]],
                              "rating": self.ratings[keep], "timestamp": self.seconds[keep]},
                             index=pd.Index(self.lines[keep], name="line"))
        frame.attrs["source"] = self.label
        return frame


def read_reviews(files: DataFiles, name: str, fmt: ReviewFormat) -> ReviewArrays:
    """Stream ``name``'s reviews into arrays, a chunk of lines at a time (see :class:`ReviewArrays`)."""
    label = files.label(name)
    user_codes: dict[str, int] = {}
    item_codes: dict[str, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    rows: list[tuple] = []  # (line, user, item, rating, time) of the lines since the last chunk
    with tqdm(desc=f"read {name}", unit="lines", unit_scale=True, disable=None, leave=False) as bar:
        for number, record in records(files, name):
            rows.append((number, record.get(fmt.user), record.get(fmt.item), record.get(fmt.rating),
                         record.get(fmt.time)))
            if len(rows) == _CHUNK_LINES:
                parts.append(_chunk_arrays(rows, fmt, label, user_codes, item_codes))
                bar.update(len(rows))
                rows = []
        if rows:
            parts.append(_chunk_arrays(rows, fmt, label, user_codes, item_codes))
            bar.update(len(rows))
    if not parts:
        raise DataError(f"{label}: the review file is empty (no lines)")
    lines, users, items, ratings, seconds = (np.concatenate(column) for column in zip(*parts))
    return ReviewArrays(label, users, items, ratings, seconds, lines, _vocabulary(user_codes), _vocabulary(item_codes))


def _vocabulary(codes: dict[str, int]) -> np.ndarray:
    return np.array(list(codes), dtype=object)  # dicts keep insertion order: position == code


def _chunk_arrays(rows: list[tuple], fmt: ReviewFormat, label: str, user_codes: dict[str, int],
                  item_codes: dict[str, int]) -> tuple[np.ndarray, ...]:
    numbered, users, items, ratings, times = (list(column) for column in zip(*rows))
    lines = np.asarray(numbered, dtype=np.int64)
    return (lines, _codes(users, user_codes, fmt.user, lines, label), _codes(items, item_codes, fmt.item, lines, label),
            numbers(ratings, fmt.rating, lines, label).astype(np.float32), _seconds(times, fmt, lines, label))


def _codes(values: list, codes: dict[str, int], key: str, lines: np.ndarray, label: str) -> np.ndarray:
    """Ids as integer codes, new ids getting the next code. Ids are labels: a JSON number is spelled
    as JSON wrote it, whitespace around an id is dropped (as the schema drops it)."""
    spelled = [value.strip() if isinstance(value, str) else (None if value is None else str(value))
               for value in values]
    if None in spelled or "" in spelled:
        row = next(k for k, value in enumerate(spelled) if not value)
        raise DataError(f"{label}: line {lines[row]}: {key!r} is {'missing' if values[row] is None else 'empty'}")
    return np.fromiter((codes.setdefault(value, len(codes)) for value in spelled), dtype=np.int32, count=len(spelled))


def numbers(values: list, key: str, lines: np.ndarray, label: str) -> np.ndarray:
    """``values`` (the ``key`` of the lines ``lines``) as float64; a missing or non-numeric one is an error."""
    try:
        floats = np.array(values, dtype=np.float64)  # None -> NaN; numeric strings are read as numbers
    except (TypeError, ValueError):  # one value at a time, to name the first that is no number
        floats = np.array([_float_or_nan(value) for value in values], dtype=np.float64)
        unreadable = np.isnan(floats) & np.array([value is not None for value in values])
        if unreadable.any():
            row = int(np.flatnonzero(unreadable)[0])
            raise DataError(f"{label}: line {lines[row]}: {key!r} is not a number: {values[row]!r}") from None
    missing = np.isnan(floats)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(f"{label}: line {lines[row]}: {key!r} is missing (got {values[row]!r})")
    return floats


def _float_or_nan(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _seconds(values: list, fmt: ReviewFormat, lines: np.ndarray, label: str) -> np.ndarray:
    """Review times as epoch seconds, in the unit the format documents (no guessing by magnitude)."""
    if fmt.time_unit != "date":
        times = numbers(values, fmt.time, lines, label)
        return np.floor(times / (1000 if fmt.time_unit == "ms" else 1)).astype(np.int64)
    dates = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", errors="coerce", utc=True)
    bad = dates.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{label}: line {lines[row]}: {fmt.time!r} is not a date like '2018-07-07 22:09:11': "
                        f"{values[row]!r}")
    return ((dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


def reviewed_items(files: DataFiles | None, name: str | None, wanted: pd.Series, fields: dict[str, str],
                   lenient: bool, source: str) -> pd.DataFrame:
    """One row per reviewed item: its title and genres from the metadata lines naming it."""
    ids = pd.unique(wanted)
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    if files is not None and name is not None:
        found = _content(files, name, set(ids), fields, lenient)
        if len(found) < len(ids):
            log.info("%s: %d of %d reviewed items have no metadata line (empty title, no genres)",
                     files.label(name), len(ids) - len(found), len(ids))
    empty = ("", ())
    frame = pd.DataFrame({"item_id": ids, "title": [found.get(i, empty)[0] for i in ids],
                          "genres": [found.get(i, empty)[1] for i in ids]})
    frame.attrs["source"] = files.label(name) if files is not None and name is not None else source
    return frame


def _content(files: DataFiles, name: str, wanted: set[str], fields: dict[str, str],
             lenient: bool) -> dict[str, tuple[str, tuple[str, ...]]]:
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    repeated = 0
    for _, record in records(files, name, lenient=lenient):
        item = str(record.get(fields["id"], "")).strip()
        if item not in wanted:
            continue
        if item in found:
            repeated += 1
            continue
        found[item] = (str(record.get(fields["title"]) or ""), _genres(record, fields))
    if repeated:
        log.info("%s: %d repeated metadata line(s) for reviewed items; the first of each was kept",
                 files.label(name), repeated)
    return found


def _genres(record: dict, fields: dict[str, str]) -> tuple[str, ...]:
    value = record.get(fields["genres"])
    if isinstance(value, str):  # Yelp: "Restaurants, Pizza"
        value = value.split(",")
    if not isinstance(value, (list, tuple)):  # null, or a lenient line's odd value
        value = ()
    genres = tuple(dict.fromkeys(str(g).strip() for g in value if str(g).strip()))
    fallback = record.get(fields.get("fallback", ""))
    if not genres and isinstance(fallback, str) and fallback.strip():
        return (fallback.strip(),)
    return genres

