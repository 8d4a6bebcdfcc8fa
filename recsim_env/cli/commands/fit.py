"""``recsim fit [--dataset ml-100k] [--split train|later] [--item-vectors PATH] [--sgd-step-budget STEPS]
[--out PATH]``: fit a user model from logs."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from recsim_env.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fit", help="fit a simulated-user model on the earlier (train) or later part of a log"
    )
    parser.add_argument("--dataset", default="ml-100k", help="dataset name or path (default: %(default)s)")
    parser.add_argument("--split", default="train", choices=("train", "later"),
                        help="fit on the earlier 80%% (train) or the later 20%% (later) of the interactions")
    parser.add_argument("--out", default=None, help="also write the artifact here (.npz)")
    parser.add_argument(
        "--cache-dir", default=None, help="data and model cache (default: $RECSIM_DATA or ~/.cache/recsim-env)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fit (default: %(default)s)")
    parser.add_argument("--item-vectors", default="", metavar="PATH",
                        help="precomputed item vectors (CSV/TSV/Parquet with item_id, .npz or .npy) used as "
                             "item content beside the genres; every item of the log needs one")
    parser.add_argument("--sgd-step-budget", type=_step_budget, default=None, metavar="STEPS",
                        help="most SGD steps of the relevance and the rating model each; a longer log is fitted "
                             "with larger batches (default: 8192, which ML-100K and 1M logs stay within and "
                             "which fits 10M interactions in about 8 minutes on 2 cores; 0: none)")
    parser.set_defaults(func=_fit)


def _step_budget(text: str) -> int:
    """argparse type of ``--sgd-step-budget``: refused at parse time unless a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0 (0: no budget), got {text!r}")
    return value


def _fit(args: argparse.Namespace) -> int:
    from recsim_env.fit.config import FitConfig
    from recsim_env.fit.datasets import fitted_user_model

    if args.out is not None and not str(args.out).endswith(".npz"):
        raise ConfigError(f"--out must name a .npz file, got {args.out!r}")
    budget = {} if args.sgd_step_budget is None else {"sgd_step_budget": args.sgd_step_budget}
    config = FitConfig(seed=args.seed, item_vectors=args.item_vectors, **budget)
    model, _ = fitted_user_model(args.dataset, args.split, args.cache_dir, config)
    if args.out is not None:
        model.save(Path(args.out))
    Console().print(summary_table(model, args.out))
    return 0


def summary_table(model, out: str | None) -> Table:
    """The fitted dynamics and where the artifact is, as a rich table."""
    table = Table(
        title=f"user model fitted on {model.meta.get('dataset')} (fingerprint {model.meta.get('fingerprint')})"
    )
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for name, value in vars(model.dynamics).items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_row("fatigue source", str(model.meta.get("fatigue_source")))
    table.add_row("rating residual std", f"{model.scales.rating_std:.3f}")
    table.add_row("users / items", f"{model.n_logged_users} / {model.n_items}")
    if "item_vector_dim" in model.meta:
        table.add_row("item vectors", f"{model.meta['config']['item_vectors']} ({model.meta['item_vector_dim']} wide)")
    if out:
        table.add_row("artifact", str(out))
    return table
