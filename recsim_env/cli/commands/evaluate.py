"""``recsim evaluate --policy NAME --env SIMULATOR``: train one policy and score it with 95%% intervals;
``--checkpoint PATH`` instead scores an agent trained by ``recsim train`` as it is."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from recsim_env.benchmark.cells import check_writable
from recsim_env.benchmark.config import BenchmarkConfig
from recsim_env.benchmark.defaults import POLICIES, SIMULATORS, simulator_spec
from recsim_env.benchmark.registry import BuiltPolicy
from recsim_env.benchmark.run import evaluate_on, load_context, train_policy
from recsim_env.evaluation.rollout import EpisodeStats


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="train one policy and evaluate it in one simulator over seeds, with 95%% intervals",
        description="Trains POLICY on the simulator's training context (as recsim benchmark does), or loads the "
                    "agent saved at --checkpoint, then rolls it out for --episodes complete sessions per seed "
                    "with common random numbers.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", help=f"one of: {', '.join(POLICIES)}")
    which.add_argument("--checkpoint", metavar="PATH",
                       help="an agent's checkpoint.pt from recsim train --out, evaluated without training")
    parser.add_argument("--env", required=True, metavar="SIMULATOR", help=f"one of: {', '.join(SIMULATORS)}")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds (default: %(default)s)")
    parser.add_argument(
        "--episodes", type=int, default=200, metavar="N", help="episodes per seed (default: %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="short training budgets")
    parser.add_argument("--config", metavar="FILE", help="TOML benchmark config for budgets and env shape")
    parser.add_argument("--out", dest="out_dir", default="runs/evaluate", metavar="DIR",
                        help="folder for training logs and episodes.csv (default: %(default)s)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = BenchmarkConfig.build(args.config, quick=args.quick, policies=[args.policy] if args.policy else None,
                                   simulators=[args.env], seeds=args.seeds, episodes=args.episodes,
                                   out_dir=args.out_dir)
    check_writable(config.out_path)  # before training, not after
    built, label = None, args.policy
    if args.checkpoint:  # loaded before the context is built: a bad path fails at once
        from agents.factory import check_fits, load_agent

        built, label = (
            BuiltPolicy(load_agent(args.checkpoint)),
            f"checkpoint-{Path(args.checkpoint).resolve().parent.name}",
        )
    loaded = load_context(config, simulator_spec(args.env).context, [args.env])
    simulator = loaded.simulators[args.env]
    if args.checkpoint:
        check_fits(built.policy, simulator.make_env(1), args.checkpoint, args.env)
    parts = []
    for seed in range(config.seeds):
        if args.policy and (built is None or config.retrain_per_seed):
            built, _ = train_policy(config, loaded, args.policy, seed if config.retrain_per_seed else 0)
        parts.append(evaluate_on(built, simulator, config, seed))
    stats = EpisodeStats.concat(parts)
    path = config.out_path / f"episodes_{label}_{args.env}.csv"
    stats.episodes.to_csv(path, index=False)
    _print_summary(stats, f"{label} on {args.env}: mean [95% CI] over {config.seeds} seeds")
    Console().print(f"episodes: {path.resolve()}")
    return 0


def _print_summary(stats: EpisodeStats, title: str) -> None:
    table = Table(title=title)
    for col in ("metric", "mean", "95% CI", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in stats.summary().itertuples(index=False):
        if row.metric == "dwell" and row.mean == 0 and row.ci_low == 0 and row.ci_high == 0:
            continue  # the simulator has no dwell times (as in the benchmark report)
        table.add_row(row.metric, f"{row.mean:.4g}", f"[{row.ci_low:.4g}, {row.ci_high:.4g}]", str(row.n))
    Console().print(table)
