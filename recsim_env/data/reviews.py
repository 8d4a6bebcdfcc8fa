"""Amazon Reviews (2023 and 2018) and the Yelp Open Dataset, from the JSON-lines files as published.

Amazon Reviews 2023
    reviews: ``user_id``, ``parent_asin`` (the item), ``rating``, ``timestamp`` (epoch milliseconds);
    ``meta_*``: ``title``, and ``categories`` (a list) or, where the list is empty, ``main_category``.
Amazon Reviews 2018
    reviews: ``reviewerID``, ``asin``, ``overall``, ``unixReviewTime`` (epoch seconds);
    ``meta_*``: ``title``, ``category`` (a list).
Yelp Open Dataset
    ``review.json``: ``user_id``, ``business_id`` (the item), ``stars``, ``date`` (``YYYY-MM-DD
    HH:MM:SS``, read as UTC); ``business.json``: ``name``, ``categories`` (a comma-separated string or
    null); ``user.json``: the numeric user features in :data:`YELP_USER_FEATURES`.

Files may be plain or gzip/bzip2/xz compressed, whatever their names say; Yelp's may also carry
their archive names (``yelp_academic_dataset_review.json``). Review files are streamed (see
:mod:`recsim_env.data.review_lines`): each review is kept as five numbers (about 28 bytes) and the
distinct ids once each; the k-core bounds are applied to those numbers, and only the reviews kept
are spelled out as a table. Metadata is read for the reviewed items and users only. A reviewed item
without a metadata line gets an empty title and no genres; the first metadata line of a repeated id
wins (2018 dumps repeat some).

Malformed lines: in review files and in all of Yelp's files, a line that is not a JSON object, or a
review missing its user, item, rating or time, is a :class:`~recsim_env.errors.DataError` naming the
file and the line -- these dumps are strict JSON, so such a line means a damaged or truncated
download. Amazon metadata lines are read leniently: Python dict literals (the older dumps' form)
are accepted and other malformed lines are skipped and counted, since a skipped line only costs an
item its title.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from recsim_env.data.files import DataFiles, open_files
from recsim_env.data.filters import check_bounds, kcore
from recsim_env.data.jsonlines import first_record, records
from recsim_env.data.log import InteractionLog
from recsim_env.data.review_lines import ReviewFormat, numbers, read_reviews, reviewed_items
from recsim_env.data.schema import ColumnMapping
from recsim_env.errors import DataError

log = logging.getLogger(__name__)

YELP_USER_FEATURES = ("review_count", "average_stars", "fans", "useful", "funny", "cool")
_JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
_MAPPING = ColumnMapping(user="user_id", item="item_id", timestamp="timestamp", rating="rating", title="title",
                         genres="genres")

AMAZON_2023 = ReviewFormat("Amazon Reviews 2023", "user_id", "parent_asin", "rating", "timestamp", "ms")
AMAZON_2018 = ReviewFormat("Amazon Reviews 2018", "reviewerID", "asin", "overall", "unixReviewTime", "s")
YELP = ReviewFormat("Yelp Open Dataset", "user_id", "business_id", "stars", "date", "date")


def review_format(record: dict) -> ReviewFormat | None:
    """The format a review line is in, from its keys; ``None`` if it is none of them."""
    for fmt in (AMAZON_2023, AMAZON_2018, YELP):
        if all(key in record for key in (fmt.user, fmt.item, fmt.rating, fmt.time)):
            return fmt
    return None


_AMAZON_META = {AMAZON_2023.name: {"id": "parent_asin", "title": "title", "genres": "categories",
                                   "fallback": "main_category"},
                AMAZON_2018.name: {"id": "asin", "title": "title", "genres": "category"}}
_YELP_BUSINESS = {"id": "business_id", "title": "name", "genres": "categories"}
_YELP_FILES = {"review": ("review.json", "yelp_academic_dataset_review.json"),
               "business": ("business.json", "yelp_academic_dataset_business.json"),
               "user": ("user.json", "yelp_academic_dataset_user.json")}


def load_amazon(reviews: str | os.PathLike, meta: str | os.PathLike | None = None, *, name: str | None = None,
                min_user_interactions: int = 1, min_item_interactions: int = 1) -> InteractionLog:
    """Amazon Reviews 2023 or 2018 (told apart by the first line's keys), streamed.

    Args:
        reviews: the reviews file (``All_Beauty.jsonl.gz``, ``All_Beauty_5.json.gz``, ...).
        meta: the matching ``meta_*`` file, for titles and categories; ``None``: items without content.
        name: the log's name (default: the reviews file's name without its suffixes).
        min_user_interactions: k-core bound on reviews per user (see :mod:`recsim_env.data.filters`).
        min_item_interactions: k-core bound on reviews per item.

    Returns:
        The log: ids as spelled in the file, ratings, times in epoch seconds.

    Examples:
        >>> import json, pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> lines = [{"user_id": "AE1", "parent_asin": "B07", "rating": 5.0, "timestamp": 1588687728923},
        ...          {"user_id": "AE2", "parent_asin": "B07", "rating": 4.0, "timestamp": 1588687790000}]
        >>> _ = (folder / "All_Beauty.jsonl").write_text("".join(json.dumps(line) + "\\n" for line in lines))
        >>> data = load_amazon(folder / "All_Beauty.jsonl")
        >>> data.name, data.n_users, data.n_items, data.interactions["timestamp"].tolist()
        ('All_Beauty', 2, 1, [1588687728, 1588687790])
    """
    files, reviews_name = _file(reviews)
    meta_pair = _file(meta) if meta is not None else None
    return _load_amazon(files, reviews_name, meta_pair, name, (min_user_interactions, min_item_interactions))


def load_yelp(path: str | os.PathLike, *, name: str = "yelp", user_features: bool = True,
              min_user_interactions: int = 1, min_item_interactions: int = 1) -> InteractionLog:
    """The Yelp Open Dataset, streamed, from its extracted folder (or a zip of it, or its review file).

    Args:
        path: a folder holding ``review.json`` and, optionally, ``business.json`` (titles and
            categories) and ``user.json`` (user features), or the review file itself.
        name: the log's name.
        user_features: read :data:`YELP_USER_FEATURES` from ``user.json`` (a large file) where there is one.
        min_user_interactions: k-core bound on reviews per user (see :mod:`recsim_env.data.filters`).
        min_item_interactions: k-core bound on reviews per business.

    Returns:
        The log: businesses as items, star ratings, times in epoch seconds.
    """
    location = Path(path).expanduser()
    files, reviews_name = _file(location) if location.is_file() and location.suffix != ".zip" else \
        (open_files(location), None)
    reviews_name = reviews_name or _yelp_name(files, "review")
    if reviews_name is None:
        raise DataError(f"{files.root}: no Yelp review file ({' or '.join(_YELP_FILES['review'])}, plain or .gz)")
    return _load_yelp(files, reviews_name, name, user_features, (min_user_interactions, min_item_interactions))


def load_review_dataset(files: DataFiles, file_name: str | None = None, *, name: str, min_user_interactions: int = 1,
                        min_item_interactions: int = 1) -> InteractionLog | None:
    """The Yelp or Amazon log in ``files`` (or in its file ``file_name``), ``None`` where there is none.

    A folder is Yelp's where it holds its review file, Amazon's where exactly one JSON-lines file
    (not ``meta_*``) holds Amazon reviews; the ``meta_*`` file beside it is read where there is one.
    """
    bounds = (min_user_interactions, min_item_interactions)
    if file_name is None:
        yelp = _yelp_name(files, "review")
        return _load_yelp(files, yelp, name, True, bounds) if yelp else _amazon_in_folder(files, bounds)
    record = first_record(files, file_name)
    if record is None:  # not JSON lines (a CSV, say): not ours to read
        return None
    fmt = review_format(record)
    if fmt is None:
        raise _not_reviews(files, file_name)
    if fmt is YELP:
        return _load_yelp(files, file_name, name, True, bounds)
    meta = _meta_beside(files, file_name)
    return _load_amazon(files, file_name, (files, meta) if meta else None, None, bounds)


def _amazon_in_folder(files: DataFiles, bounds: tuple[int, int]) -> InteractionLog | None:
    """The one Amazon review file of a folder, with its ``meta_*`` file where there is one."""
    candidates = [n for n in files.names() if _is_json_name(n) and not n.startswith("meta_")]
    amazon = [n for n in candidates if (record := first_record(files, n)) is not None and
              review_format(record) in (AMAZON_2023, AMAZON_2018)]
    if len(amazon) > 1:
        raise DataError(f"{files.root}: several Amazon review files ({', '.join(amazon)}); load one of them: "
                        f"load_dataset(<folder>/{amazon[0]}) or load_amazon(reviews, meta)")
    if not amazon:
        return None
    meta = _meta_beside(files, amazon[0])
    return _load_amazon(files, amazon[0], (files, meta) if meta else None, None, bounds)


def _load_amazon(files: DataFiles, reviews_name: str, meta: tuple[DataFiles, str] | None, name: str | None,
                 bounds: tuple[int, int]) -> InteractionLog:
    check_bounds(*bounds)
    record = first_record(files, reviews_name)
    fmt = review_format(record) if record is not None else None
    if fmt not in (AMAZON_2023, AMAZON_2018):
        raise _not_reviews(files, reviews_name, amazon_only=True)
    label = files.label(reviews_name)
    kept = read_reviews(files, reviews_name, fmt).kept(*bounds)
    meta_files, meta_name = meta if meta is not None else (None, None)
    items = reviewed_items(meta_files, meta_name, kept["item_id"], _AMAZON_META[fmt.name], lenient=True, source=label)
    data = InteractionLog.from_frames(kept, items, None, _MAPPING, name=name or _stem(reviews_name), source=label)
    return kcore(data, *bounds)  # exact duplicates dropped by the schema can lower counts: one more pass


def _load_yelp(files: DataFiles, reviews_name: str, name: str, user_features: bool,
               bounds: tuple[int, int]) -> InteractionLog:
    check_bounds(*bounds)
    label = files.label(reviews_name)
    kept = read_reviews(files, reviews_name, YELP).kept(*bounds)
    business = _yelp_name(files, "business")
    items = reviewed_items(files if business else None, business, kept["item_id"], _YELP_BUSINESS,
                           lenient=False, source=label)
    user_file = _yelp_name(files, "user") if user_features else None
    users = _yelp_users(files, user_file, kept["user_id"]) if user_file else None
    data = InteractionLog.from_frames(kept, items, users, _MAPPING, name=name, source=label)
    return kcore(data, *bounds)


def _yelp_users(files: DataFiles, name: str, wanted: pd.Series) -> pd.DataFrame:
    """The reviewers' rows of ``user.json``: their numeric features, indexed by file line."""
    ids = set(pd.unique(wanted))
    label = files.label(name)
    columns: dict[str, list] = {key: [] for key in ("line", "user_id", *YELP_USER_FEATURES)}
    for number, record in records(files, name):
        user = str(record.get("user_id", "")).strip()
        if user in ids:
            columns["line"].append(number)
            columns["user_id"].append(user)
            for key in YELP_USER_FEATURES:
                columns[key].append(record.get(key))
    lines = np.asarray(columns.pop("line"), dtype=np.int64)
    frame = pd.DataFrame({"user_id": columns.pop("user_id"),
                          **{key: numbers(values, key, lines, label) for key, values in columns.items()}},
                         index=pd.Index(lines, name="line"))
    frame.attrs["source"] = label
    return frame


def _file(path: str | os.PathLike) -> tuple[DataFiles, str]:
    location = Path(path).expanduser()
    if not location.is_file():
        raise DataError(f"{location}: no such file")
    return open_files(location.parent), location.name


def _yelp_name(files: DataFiles, role: str) -> str | None:
    names = [base + suffix for base in _YELP_FILES[role] for suffix in ("", ".gz")]
    return next((n for n in names if files.has(n)), None)


def _is_json_name(name: str) -> bool:
    return name.lower().endswith(_JSON_SUFFIXES)


def _stem(file_name: str) -> str:
    """``All_Beauty.jsonl.gz`` -> ``All_Beauty``."""
    for suffix in sorted(_JSON_SUFFIXES, key=len, reverse=True):
        if file_name.lower().endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name.split(".")[0]


def _meta_beside(files: DataFiles, reviews_name: str) -> str | None:
    """``meta_<stem>`` in any JSON-lines suffix; a 5-core file (``All_Beauty_5``) shares its category's."""
    stem = _stem(reviews_name)
    stems = (stem, stem[: -len("_5")]) if stem.endswith("_5") else (stem,)
    return next((f"meta_{s}{suffix}" for s in stems for suffix in _JSON_SUFFIXES if files.has(f"meta_{s}{suffix}")),
                None)


def _not_reviews(files: DataFiles, file_name: str, amazon_only: bool = False) -> DataError:
    record = first_record(files, file_name)
    keys = sorted(record)[:12] if record is not None else []
    formats = [AMAZON_2023, AMAZON_2018] + ([] if amazon_only else [YELP])
    expected = "; ".join(f"{fmt.name}: {fmt.user}, {fmt.item}, {fmt.rating}, {fmt.time}" for fmt in formats)
    hint = " It looks like a metadata file: pass the reviews file beside it." if file_name.startswith("meta_") or \
        (record is not None and any(k in record for k in ("main_category", "categories", "category", "name"))) else ""
    found = f"its first line has keys {keys}" if record is not None else "its first line is not a JSON object"
    return DataError(f"{files.label(file_name)}: not a review file ({found}); expected the keys of {expected}.{hint}")
