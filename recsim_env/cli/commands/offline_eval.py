"""``recsim offline-eval``: fit supervised baselines and score them by the offline protocols.

The baselines live in the ``baselines`` package, which depends on ``recsim_env``; it is imported inside
the handler so that ``recsim_env`` still loads without it (the dependency points one way at import).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

TABLE_COLUMNS = {
    "model": "model", "ncf_HR@10": "HR@10", "ncf_NDCG@10": "NDCG@10", "ncf_HR@10_mean": "HR@10 (seed mean)",
    "ncf_NDCG@10_mean": "NDCG@10 (seed mean)", "full_Recall@10": "full R@10", "full_NDCG@10": "full NDCG@10",
    "full_MRR@10": "full MRR@10", "full_coverage": "coverage", "to_best_s": "to best (s)", "fit_s": "fit (s)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "offline-eval",
        help="train baselines and score them offline (NCF protocol, full ranking)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--models", default="popularity,itemknn,bpr-mf,neumf",
                   help="comma-separated: random, popularity, itemknn, bpr-mf, gmf, mlp, neumf, lightgcn, content, "
                        "or 'all'")
    p.add_argument("--dataset", default="ml-100k", help="a known dataset name or a path any loader reads")
    p.add_argument("--seed", type=int, default=0, help="seed of training and of the first negative sample")
    p.add_argument("--negative-seeds", type=int, default=5, help="NCF-protocol repetitions with fresh negatives")
    p.add_argument("--no-full", action="store_true", help="skip full ranking over all unseen items")
    p.add_argument("--cold-start", action="store_true", help="also run the item cold-start comparison")
    p.add_argument("--out", type=Path, default=Path("offline_eval.csv"), help="CSV of every metric per model")
    p.add_argument("--tensorboard", type=Path, default=None, help="TensorBoard directory for training curves")
    p.add_argument("--progress", action="store_true", help="show training progress bars")
    p.add_argument(
        "--plain", action="store_true", help="textbook recipes: no recency weighting, no refit on validation"
    )
    p.set_defaults(func=run)


def _table(frame: pd.DataFrame, title: str) -> object:
    from rich.table import Table

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="left" if column == "model" else "right")
    for _, row in frame.iterrows():
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    return table


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from baselines.offline_eval import OfflineConfig, cold_start_table, evaluate_models
    from baselines.recipes import MODELS
    from recsim_env.data.loaders import load_dataset

    names = tuple(MODELS) if args.models == "all" else tuple(m.strip() for m in args.models.split(",") if m.strip())
    config = OfflineConfig(
        models=names,
        seed=args.seed,
        negative_seeds=args.negative_seeds,
        full=not args.no_full,
        progress=args.progress,
        plain=args.plain,
        log_dir=None if args.tensorboard is None else str(args.tensorboard),
    )
    log = load_dataset(args.dataset)
    results = evaluate_models(log, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(args.out, index=False)
    console = Console()
    if not console.is_terminal:  # files and pipes get the whole table instead of an 80-column squeeze
        console = Console(width=180)
    shown = results[[c for c in TABLE_COLUMNS if c in results.columns]].rename(columns=TABLE_COLUMNS)
    console.print(_table(shown, f"{log.name}: NCF protocol (1 positive + 99 negatives) and full ranking"))
    if args.cold_start:
        # Popularity and the trained-text content model always; other content models when asked for.
        extra = tuple(n for n in names if n.startswith("content-"))
        cold = cold_start_table(log, models=("popularity", "content", *extra), seed=args.seed)
        cold.to_csv(args.out.with_name(args.out.stem + "_cold_start.csv"), index=False)
        console.print(_table(cold, f"{log.name}: item cold start (10% of items unseen in training)"))
    console.print(f"whole run {float(results['run_s'].iloc[0]):.1f} s; results in {args.out}")
    return 0
