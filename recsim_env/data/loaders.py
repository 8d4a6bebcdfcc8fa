"""Loaders: every supported format -> :meth:`InteractionLog.from_frames`.

:func:`load_dataset` takes a known name (``"ml-100k"``: fetched into the cache, see
:mod:`recsim_env.data.fetch`) or a path, and recognises the format by the files it finds in a
folder or zip:

================  =================================================  ======================================
format            files                                              notes
================  =================================================  ======================================
RecBole atomic    ``NAME.inter`` [+ ``NAME.item``, ``NAME.user``]    tab-separated, ``name:type`` headers;
                                                                     ``token_seq`` genres split on spaces
ML-100K           ``u.data``, ``u.item``, ``u.user`` [``u.genre``]   GroupLens; latin-1; 19 genre flags
ML-1M / ML-10M    ``ratings.dat``, ``movies.dat`` [``users.dat``]    ``::``-separated, latin-1
MovieLens latest  ``ratings.csv``, ``movies.csv``                    also ML-20M / ML-25M; UTF-8 CSV
Yelp              ``review.json`` [+ ``business.json``,              JSON lines, streamed; also named
                  ``user.json``]                                     ``yelp_academic_dataset_*.json``
Amazon Reviews    one ``*.jsonl`` / ``*.json`` [+ its ``meta_*``]    2023 or 2018 form, told by the keys;
                                                                     see :mod:`recsim_env.data.reviews`
CSV / Parquet     one file: ``user_id``, ``item_id``, ``timestamp``  any columns: use :func:`load_frames`
================  =================================================  ======================================

Any of them can be cut to its k-core (``min_user_interactions``, ``min_item_interactions``; see
:mod:`recsim_env.data.filters`); Amazon and Yelp files are cut while streaming, before their ids
are spelled out.

MovieLens titles lose their ``(1995)`` suffix, which becomes the year; users are indexed in the
order of their numeric ids; user features are ``age`` (a number; ML-1M's age-group code is the
group's lower bound), ``gender`` and ``occupation`` (strings; ML-1M's codes are mapped to names).
Zip codes are left out: nearly one per user, they identify a user rather than describe one.
A line with the wrong number of fields or bytes invalid in the file's encoding is a
:class:`~recsim_env.errors.DataError` naming the file and the line.
"""

from __future__ import annotations

import logging
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from recsim_env.data.fetch import DATASETS, default_cache_dir, fetch_dataset
from recsim_env.data.files import DataFiles, open_files, read_delimited, read_table_file
from recsim_env.data.filters import check_bounds, kcore
from recsim_env.data.log import InteractionLog
from recsim_env.data.reviews import load_amazon, load_review_dataset, load_yelp
from recsim_env.data.schema import ColumnMapping
from recsim_env.errors import DataError

log = logging.getLogger(__name__)

ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")
ML1M_OCCUPATIONS = ("other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
                    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
                    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer")
USER_FEATURES = ("age", "gender", "occupation")
_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")
_MOVIELENS = ColumnMapping(user="user_id", item="item_id", timestamp="timestamp", rating="rating",
                           title="title", genres="genres", year="year")


def load_dataset(name_or_path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                 min_user_interactions: int = 1, min_item_interactions: int = 1) -> InteractionLog:
    """Load a known dataset by name (fetched into the cache on first use) or any supported path.

    ``min_user_interactions`` / ``min_item_interactions``: keep the log's k-core, where every user and
    every item has at least that many interactions (1 and 1: the whole log).
    """
    bounds = {"min_user_interactions": min_user_interactions, "min_item_interactions": min_item_interactions}
    check_bounds(min_user_interactions, min_item_interactions)
    return kcore(_load(name_or_path, cache_dir, bounds), **bounds)


def _load(name_or_path: str | os.PathLike, cache_dir: str | os.PathLike | None,
          bounds: dict[str, int]) -> InteractionLog:
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        folder = fetch_dataset(name_or_path, cache_dir=cache_dir)
        return _load_files(open_files(folder), name_or_path, bounds)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DataError(f"unknown dataset {str(name_or_path)!r}: not a known name (known: {', '.join(DATASETS)}) "
                        f"and no such file or folder. Cache: {Path(cache_dir or default_cache_dir())}")
    if path.is_file() and path.suffix == ".inter":
        return load_atomic(path.parent, stem=path.stem)
    if path.is_file() and not _is_zip(path):  # by content: a CSV named .txt is still a CSV
        reviews = load_review_dataset(open_files(path.parent), path.name, name=path.parent.name, **bounds)
        return reviews if reviews is not None else load_frames(path)
    return _load_files(open_files(path), _dataset_name(path), bounds)


def _is_zip(path: Path) -> bool:
    """A ``.zip`` name (a truncated download is still reported as a zip) or a zip's first bytes."""
    with open(path, "rb") as fh:
        return path.suffix.lower() == ".zip" or fh.read(4) == b"PK\x03\x04"


def _dataset_name(path: Path) -> str:
    return path.name[: -len(".zip")] if path.name.endswith(".zip") else path.name


def _load_files(files: DataFiles, name: str, bounds: dict[str, int]) -> InteractionLog:
    if files.with_suffix(".inter"):
        movielens = name == "ml-100k"
        return load_atomic(files, name=name, user_features=USER_FEATURES if movielens else None)
    if files.has("u.data"):
        return load_movielens_100k(files, name=name)
    if files.has("ratings.dat"):
        return load_movielens_1m(files, name=name)
    if files.has("ratings.csv"):
        return load_movielens_latest(files, name=name)
    reviews = load_review_dataset(files, name=name, **bounds)
    if reviews is not None:
        return reviews
    raise DataError(f"{files.root}: no supported dataset found (it has {', '.join(files.names()[:15]) or 'no files'}). "
                    f"Expected RecBole atomic files (*.inter), ML-100K (u.data), ML-1M (ratings.dat), MovieLens "
                    f"latest (ratings.csv), Yelp (review.json) or Amazon reviews (*.jsonl, *.json); for other "
                    f"CSV/Parquet files use load_frames(path, ColumnMapping(...)).")


def _files(path_or_files: DataFiles | str | os.PathLike) -> DataFiles:
    return path_or_files if isinstance(path_or_files, DataFiles) else open_files(path_or_files)


def _require(files: DataFiles, names: tuple[str, ...], fmt: str) -> None:
    missing = [n for n in names if not files.has(n)]
    if missing:
        raise DataError(f"{files.root}: a {fmt} folder needs {', '.join(names)}; missing {', '.join(missing)}")


def _numbers(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """A string column as float64, or a DataError naming the file, line and value."""
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna().to_numpy() & (frame[column].str.strip() != "").to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{frame.attrs['source']}: line {frame.index[row]}: {what} column {column!r} is not a number: "
                        f"{frame[column].iloc[row]!r}")
    return values.to_numpy(dtype=np.float64)


def _by_numeric_id(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows ordered by numeric id (MovieLens ids are integers), so indices follow the ids; the ids
    keep their spelling."""
    _numbers(frame, column, "id")  # names the line of an id that is not a number
    order = _numeric_order(frame[column].str.strip().to_numpy())
    return _with_attrs(frame.iloc[order], frame)


def _numeric_order(ids: np.ndarray) -> np.ndarray:
    """Stable order of numeric id strings by exact value: as floats, ids past 2**53 would tie."""
    return np.asarray(sorted(range(len(ids)), key=lambda k: Decimal(ids[k])), dtype=np.int64)


def _split_title_year(titles: pd.Series) -> tuple[list[str], np.ndarray]:
    names, years = [], np.full(len(titles), np.nan)
    for k, title in enumerate(titles):
        match = _TITLE_YEAR.match(title)
        names.append(match.group(1) if match else title.strip())
        if match:
            years[k] = float(match.group(2))
    return names, years


def _with_attrs(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    frame.attrs["source"] = like.attrs["source"]
    return frame


def load_movielens_100k(path: DataFiles | str | os.PathLike, *, name: str = "ml-100k") -> InteractionLog:
    """GroupLens ML-100K (``u.data``, ``u.item``, ``u.user``; ``u.genre`` names the 19 genre flags)."""
    files = _files(path)
    _require(files, ("u.data", "u.item", "u.user"), "GroupLens ML-100K")
    inter = read_delimited(files, "u.data", sep="\t", columns=["user_id", "item_id", "rating", "timestamp"],
                           encoding="latin-1")
    genres = _ml100k_genre_names(files)
    raw = read_delimited(files, "u.item", sep="|", encoding="latin-1",
                         columns=["item_id", "title", "release_date", "video_release_date", "url", *genres])
    users = read_delimited(files, "u.user", sep="|", encoding="latin-1",
                           columns=["user_id", "age", "gender", "occupation", "zip_code"])
    items = _with_attrs(pd.DataFrame({"item_id": raw["item_id"], "title": _split_title_year(raw["title"])[0],
                                      "genres": _genre_flags(raw, genres),
                                      "year": _release_years(raw)}, index=raw.index), raw)
    return InteractionLog.from_frames(inter, _by_numeric_id(items, "item_id"), _ml_users(users), _MOVIELENS,
                                      name=name, source=str(files.root))


def _ml100k_genre_names(files: DataFiles) -> tuple[str, ...]:
    if not files.has("u.genre"):
        return ML100K_GENRES
    table = read_delimited(files, "u.genre", sep="|", columns=["genre", "flag"], encoding="latin-1")
    return tuple(table.sort_values("flag", key=lambda c: pd.to_numeric(c, errors="coerce"))["genre"])


def _genre_flags(raw: pd.DataFrame, genres: tuple[str, ...]) -> list[tuple[str, ...]]:
    flags = raw[list(genres)]
    bad = ~flags.isin(["0", "1"]).to_numpy()
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise DataError(f"{raw.attrs['source']}: line {raw.index[row]}: genre flag {genres[col]!r} must be 0 or 1, "
                        f"got {flags.iat[row, col]!r}")
    on = flags.to_numpy() == "1"
    names = np.array(genres, dtype=object)
    return [tuple(names[row]) for row in on]


def _release_years(raw: pd.DataFrame) -> np.ndarray:
    dates = raw["release_date"].str.strip()
    years = pd.to_numeric(dates.str.extract(r"(\d{4})$")[0], errors="coerce")
    bad = (years.isna() & (dates != "")).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{raw.attrs['source']}: line {raw.index[row]}: release date {dates.iloc[row]!r} "
                        f"does not end in a 4-digit year (expected like 01-Jan-1995)")
    return years.to_numpy(dtype=np.float64)


def _ml_users(users: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"user_id": users["user_id"], "age": _numbers(users, "age", "user"),
                        "gender": users["gender"].str.strip(), "occupation": users["occupation"].str.strip()},
                       index=users.index)
    return _by_numeric_id(_with_attrs(out, users), "user_id")


def load_movielens_1m(path: DataFiles | str | os.PathLike, *, name: str = "ml-1m") -> InteractionLog:
    """ML-1M / ML-10M (``ratings.dat``, ``movies.dat``, optional ``users.dat``; ``::``-separated)."""
    files = _files(path)
    _require(files, ("ratings.dat", "movies.dat"), "MovieLens 1M/10M")
    inter = read_delimited(files, "ratings.dat", sep="::", columns=["user_id", "item_id", "rating", "timestamp"],
                           encoding="latin-1")
    movies = read_delimited(files, "movies.dat", sep="::", columns=["item_id", "title", "genres"], encoding="latin-1")
    users = None
    if files.has("users.dat"):
        raw = read_delimited(files, "users.dat", sep="::", encoding="latin-1",
                             columns=["user_id", "gender", "age", "occupation", "zip_code"])
        codes = raw["occupation"].str.strip()
        names = dict(enumerate(ML1M_OCCUPATIONS))
        raw["occupation"] = [names.get(int(c), c) if c.isdigit() else c for c in codes]
        users = _ml_users(raw)
    return InteractionLog.from_frames(inter, _movies(movies), users, _MOVIELENS, name=name, source=str(files.root))


def _movies(movies: pd.DataFrame) -> pd.DataFrame:
    titles, years = _split_title_year(movies["title"])
    out = pd.DataFrame({"item_id": movies["item_id"], "title": titles, "genres": movies["genres"], "year": years},
                       index=movies.index)
    return _by_numeric_id(_with_attrs(out, movies), "item_id")


def load_movielens_latest(path: DataFiles | str | os.PathLike, *, name: str = "ml-latest") -> InteractionLog:
    """MovieLens latest / 20M / 25M (``ratings.csv``, ``movies.csv``; quoted CSV, UTF-8)."""
    files = _files(path)
    _require(files, ("ratings.csv", "movies.csv"), "MovieLens latest")
    inter = read_delimited(files, "ratings.csv", sep=",", quoted=True)
    movies = read_delimited(files, "movies.csv", sep=",", quoted=True)
    for frame, needed in (
        (inter, ("userId", "movieId", "rating", "timestamp")),
        (movies, ("movieId", "title", "genres")),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"{frame.attrs['source']}: header lacks column(s) {missing}; it has {list(frame.columns)}")
    inter = _with_attrs(inter.rename(columns={"userId": "user_id", "movieId": "item_id"}), inter)
    movies = _with_attrs(movies.rename(columns={"movieId": "item_id"}), movies)
    _numbers(inter, "user_id", "user")  # names the line of an id that is not a number
    ids = pd.unique(inter["user_id"].str.strip())  # no user table: numeric id order, ids as spelled
    users = pd.DataFrame({"user_id": ids[_numeric_order(ids)]})
    return InteractionLog.from_frames(inter, _movies(movies), users, _MOVIELENS, name=name, source=str(files.root))


def load_frames(path_or_paths: str | os.PathLike | Mapping[str, str | os.PathLike],
                mapping: ColumnMapping | None = None, *, name: str | None = None,
                on_duplicates: str = "drop", on_unknown_items: str = "error") -> InteractionLog:
    """Bring your own logs: CSV/TSV/Parquet files and a :class:`ColumnMapping`.

    ``path_or_paths`` is the interactions file, or ``{"interactions": p, "items": p, "users": p}``
    (items and users optional). Without ``mapping``, columns named ``user_id``, ``item_id``,
    ``timestamp`` are used, plus ``rating``/``click``/``dwell``/``purchase`` and the item columns
    ``title``/``genres``/``year`` where the files have them.
    """
    paths = dict(path_or_paths) if isinstance(path_or_paths, Mapping) else {"interactions": path_or_paths}
    unknown = sorted(set(paths) - {"interactions", "items", "users"})
    if unknown or "interactions" not in paths:
        raise DataError(f"load_frames: expected keys 'interactions' (required), 'items', 'users'; got {sorted(paths)}")
    named = mapping or ColumnMapping()  # a guessed mapping keeps the default id columns
    id_columns = {named.user, named.item}  # labels: read as spelled, not as numbers
    frames = {role: read_table_file(Path(p).expanduser(), id_columns) for role, p in paths.items()}
    inter, items, users = frames["interactions"], frames.get("items"), frames.get("users")
    mapping = mapping or _guess_mapping(inter, items)
    stem = Path(paths["interactions"]).name.split(".")[0]
    return InteractionLog.from_frames(
        inter,
        items,
        users,
        mapping,
        name=name or stem,
        source=str(paths["interactions"]),
        on_duplicates=on_duplicates,
        on_unknown_items=on_unknown_items,
    )


def _guess_mapping(inter: pd.DataFrame, items: pd.DataFrame | None) -> ColumnMapping:
    has = set(inter.columns)
    item_cols = set(items.columns) if items is not None else set()
    named = {r: r for r in ("rating", "click", "dwell", "purchase") if r in has}
    named |= {c: c for c in ("title", "genres", "year") if c in item_cols}
    return ColumnMapping(timestamp="timestamp" if "timestamp" in has else None, **named)


_ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
_ATOMIC_ROLES = {"title": ("movie_title", "title", "item_name", "name"),
                 "genres": ("class", "genres", "genre", "categories", "category"),
                 "year": ("release_year", "year")}


def load_atomic(path: DataFiles | str | os.PathLike, *, stem: str | None = None, name: str | None = None,
                user_features: tuple[str, ...] | None = None) -> InteractionLog:
    """RecBole atomic files ``STEM.inter`` [+ ``STEM.item``, ``STEM.user``] from a folder or zip.

    Fields: ``user_id``, ``item_id``, optional ``timestamp``, ``rating``, ``label`` (as clicks). Item
    title / genres / year come from the usual RecBole names (``movie_title``, ``class``,
    ``release_year``, ...), ``float`` fields become numeric attributes. User ``float`` fields and
    ``age`` are numbers, other user fields strings; ``user_features`` keeps only those named.
    """
    files = _files(path)
    stem = stem or _atomic_stem(files)
    inter, inter_types = _read_atomic(files, f"{stem}.inter")
    items, item_types = _read_atomic(files, f"{stem}.item") if files.has(f"{stem}.item") else (None, {})
    users = _atomic_users(files, f"{stem}.user", user_features) if files.has(f"{stem}.user") else None
    roles = {role: next((c for c in names if c in item_types), None) for role, names in _ATOMIC_ROLES.items()}
    if items is not None:
        items = _with_attrs(items.assign(**{c: _numbers(items, c, "item") for c, t in item_types.items()
                                            if t == "float" and c not in roles.values()}), items)
    mapping = ColumnMapping(
        user="user_id", item="item_id", timestamp="timestamp" if "timestamp" in inter_types else None,
        rating="rating" if "rating" in inter_types else None,
        click=next((c for c in ("label", "click") if c in inter_types), None),
        genre_sep=" " if item_types.get(roles["genres"] or "") == "token_seq" else "\x1f", **roles)
    return InteractionLog.from_frames(inter, items, users, mapping, name=name or stem, source=str(files.root))


def _atomic_stem(files: DataFiles) -> str:
    stems = [n[: -len(".inter")] for n in files.with_suffix(".inter")]
    if len(stems) == 1:
        return stems[0]
    own = _dataset_name(files.root)
    if own in stems:
        return own
    raise DataError(f"{files.root}: {'no' if not stems else 'several'} RecBole .inter file(s) "
                    f"({', '.join(stems) or 'none'}); name one with load_atomic(path, stem=...)")


def _read_atomic(files: DataFiles, fname: str) -> tuple[pd.DataFrame, dict[str, str]]:
    frame = read_delimited(files, fname, sep="\t")
    types: dict[str, str] = {}
    for header in frame.columns:
        field, _, kind = header.partition(":")
        if kind not in _ATOMIC_TYPES or not field:
            raise DataError(f"{frame.attrs['source']}: line 1: header field {header!r} is not 'name:type' with type "
                            f"one of {', '.join(_ATOMIC_TYPES)}")
        types[field] = kind
    return _with_attrs(frame.set_axis(list(types), axis=1), frame), types


def _atomic_users(files: DataFiles, fname: str, keep: tuple[str, ...] | None) -> pd.DataFrame:
    users, types = _read_atomic(files, fname)
    columns = ["user_id"] + [c for c in types if c != "user_id" and (keep is None or c in keep)]
    out = users[columns].copy()
    for col in columns[1:]:
        # RecBole declares age a token; as a number it orders users, as a string it would not
        out[col] = _numbers(users, col, "user") if types[col] == "float" or col == "age" else users[col].str.strip()
    return _with_attrs(out, users)

__all__ = ["load_dataset", "load_frames", "load_atomic", "load_movielens_100k", "load_movielens_1m",
           "load_movielens_latest", "load_amazon", "load_yelp", "ML100K_GENRES", "ML1M_OCCUPATIONS"]
