"""``recsim data fetch NAME`` and ``recsim data info NAME_OR_PATH``."""

from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console
from rich.table import Table

from recsim_env.data.fetch import DATASETS, fetch_dataset
from recsim_env.data.loaders import load_dataset
from recsim_env.data.log import InteractionLog
from recsim_env.data.sessions import DEFAULT_GAP_SECONDS, summarize_sessions

_MAX_BINS = 12  # more distinct rating values than this are binned


def _day(seconds: int) -> str:
    # numpy's calendar, not datetime's: any int64 of seconds has a day (datetime stops at years 1 and 9999)
    return str(np.datetime64(int(seconds), "s").astype("datetime64[D]"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="fetch and inspect logged data")
    sub = parser.add_subparsers(dest="data_command", required=True)
    fetch = sub.add_parser("fetch", help=f"fetch a dataset into the cache (known: {', '.join(DATASETS)}), "
                                         "or install a local GroupLens ml-100k folder/zip or recbole wheel")
    fetch.add_argument("name", help="dataset name or local path")
    fetch.add_argument("--cache-dir", default=None, help="cache folder (default: $RECSIM_DATA or ~/.cache/recsim-env)")
    fetch.add_argument("--force", action="store_true", help="fetch again even if verified files are cached")
    fetch.set_defaults(func=_fetch)
    info = sub.add_parser("info", help="counts, sparsity, rating histogram and session lengths of a dataset")
    info.add_argument("name_or_path", help="dataset name, or a folder / zip / CSV / Parquet file, a Yelp folder or "
                                           "an Amazon reviews .jsonl/.json(.gz) file")
    info.add_argument("--cache-dir", default=None, help="cache folder for named datasets")
    info.add_argument("--min-user-interactions", type=int, default=1, metavar="N",
                      help="k-core: keep only users with at least N interactions, repeated with the item bound "
                           "until both hold (default: %(default)s, everything)")
    info.add_argument("--min-item-interactions", type=int, default=1, metavar="N",
                      help="k-core: keep only items with at least N interactions (default: %(default)s)")
    info.add_argument("--gap-seconds", type=float, default=DEFAULT_GAP_SECONDS,
                      help="inactivity that ends a session (default: %(default)s)")
    info.set_defaults(func=_info)


def _fetch(args: argparse.Namespace) -> int:
    folder = fetch_dataset(args.name, cache_dir=args.cache_dir, force=args.force)
    table = Table(title=f"{args.name} -> {folder}")
    table.add_column("file")
    table.add_column("bytes", justify="right")
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        table.add_row(path.name, f"{path.stat().st_size:,}")
    Console().print(table)
    return 0


def _info(args: argparse.Namespace) -> int:
    data = load_dataset(args.name_or_path, cache_dir=args.cache_dir, min_user_interactions=args.min_user_interactions,
                        min_item_interactions=args.min_item_interactions)
    console = Console()
    console.print(_overview(data))
    if "rating" in data.responses:
        console.print(_rating_histogram(data.interactions["rating"].to_numpy(np.float64)))
    console.print(_sessions(data, args.gap_seconds))
    return 0


def _overview(data: InteractionLog) -> Table:
    summary = data.summary()
    per_user = np.bincount(data.interactions["user"].to_numpy(), minlength=data.n_users)
    ts = data.interactions["timestamp"].to_numpy()
    rows = [
        ("interactions", f"{summary['interactions']:,}"),
        ("users", f"{summary['users']:,}"),
        ("items", f"{summary['items']:,}"),
        ("sparsity", f"{summary['sparsity']:.4%}"),
        ("responses", ", ".join(summary["responses"]) or "none (implicit)"),
        ("interactions per user", f"min {per_user.min()}, median {np.median(per_user):g}, max {per_user.max()}"),
        ("time span (UTC)", f"{_day(ts.min())} .. {_day(ts.max())}"),
        ("genres", str(summary["genres"])),
        ("items with title / year", f"{(data.items['title'] != '').sum():,} / {data.items['year'].notna().sum():,}"),
        ("user features", ", ".join(c for c in data.users.columns if c != "user_id") or "none"),
        ("k-core", _kcore(data)),
        ("fingerprint", data.fingerprint()),
    ]
    table = Table(title=f"{data.name} ({data.meta.get('source', '')})")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, value)
    return table


def _kcore(data: InteractionLog) -> str:
    bounds = data.meta.get("kcore")
    if not isinstance(bounds, dict):
        return "none (the whole log)"
    return f"users >= {bounds['min_user_interactions']}, items >= {bounds['min_item_interactions']}"


def _rating_histogram(ratings: np.ndarray) -> Table:
    values, counts = np.unique(ratings, return_counts=True)
    labels = [f"{v:g}" for v in values]
    if len(values) > _MAX_BINS:
        counts, edges = np.histogram(ratings, bins=10)
        labels = [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-1], edges[1:])]
    table = Table(title="rating histogram")
    for name, justify in (("rating", "right"), ("count", "right"), ("share", "right"), ("", "left")):
        table.add_column(name, justify=justify)
    total = max(int(counts.sum()), 1)
    for label, count in zip(labels, counts):
        table.add_row(label, f"{int(count):,}", f"{count / total:.1%}", "█" * int(round(30 * count / counts.max())))
    return table


def _sessions(data: InteractionLog, gap_seconds: float) -> Table:
    s = summarize_sessions(data, gap_seconds)
    table = Table(title=f"sessions (split at gaps >= {gap_seconds:g} s)")
    for name in ("sessions", "mean", "median", "p90", "max"):
        table.add_column(name, justify="right")
    table.add_row(f"{s.count:,}", f"{s.mean:.2f}", f"{s.median:g}", f"{s.p90:g}", f"{s.max:,}")
    return table
