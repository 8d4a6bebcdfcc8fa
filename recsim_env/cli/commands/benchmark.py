"""``recsim benchmark``: every policy on every simulator and seed, one report (see :mod:`recsim_env.benchmark.run`)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from recsim_env.benchmark.config import BenchmarkConfig
from recsim_env.benchmark.defaults import POLICIES, SIMULATORS
from recsim_env.benchmark.executors import BACKENDS, ExecutorConfig
from recsim_env.benchmark.run import run_benchmark
from recsim_env.evaluation.rollout import ALL_METRICS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark", help="train every policy, evaluate it on every simulator and seed, write a report",
        description="Fetch ML-100K, fit the simulators, train the baselines and agents, evaluate each on each "
                    "simulator and seed with common random numbers, and write a report (CSV, markdown, plots, "
                    "TensorBoard). Rerunning with the same --out and config resumes an interrupted run; "
                    "--overwrite starts over.")
    parser.add_argument("--config", metavar="FILE", help="TOML config file (see recsim_env.benchmark.config)")
    parser.add_argument("--quick", action="store_true", default=None,
                        help="a smoke run in minutes: short training budgets, 3 seeds, 200 episodes, "
                             "each policy trained once")
    parser.add_argument("--out", dest="out_dir", metavar="DIR", help="run directory (default: runs/benchmark)")
    parser.add_argument("--seeds", type=int, metavar="N", help="seeds per policy and simulator (default: 5)")
    parser.add_argument("--episodes", type=int, metavar="N", help="evaluation episodes per policy, simulator and seed")
    parser.add_argument("--max-envs", type=positive_int, metavar="N",
                        help="most users stepped at once in an evaluation (default: 512); with fewer, each runs "
                             "several episodes in turn (other users, as the evaluation seed draws them)")
    parser.add_argument("--policies", metavar="A,B", help=f"comma-separated; known: {','.join(POLICIES)}")
    parser.add_argument("--simulators", metavar="A,B", help=f"comma-separated; known: {','.join(SIMULATORS)}")
    parser.add_argument("--metrics", metavar="A,B", help=f"metrics to show; known: {','.join(ALL_METRICS)}")
    parser.add_argument("--no-offline", dest="offline", action="store_false", default=None,
                        help="skip the offline NCF-protocol metrics of the supervised policies")
    parser.add_argument("--retrain-per-seed", action=argparse.BooleanOptionalAction, default=None,
                        help="train each policy anew per seed (default; --quick turns it off)")
    parser.add_argument("--warm-start", metavar="BASELINE",
                        help="baseline whose embeddings start the RL agents: mf-bpr (default), neumf, lightgcn, "
                             "content, or none (agents from scratch)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over: remove a previous run in --out (its cells, report and aggregates) first; "
                             "without it a rerun must use the run's config, or only add seeds, policies, "
                             "simulators or metrics")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="where the work runs: sequential (this process; the default), local (--jobs processes) "
                             "or ray (a local Ray instance, or the cluster at --ray-address); the results are the same")
    parser.add_argument("--jobs", type=positive_int, metavar="N",
                        help="parallel workers: processes of --backend local (implied by N > 1), CPUs of the local "
                             "Ray instance, or the most tasks in flight on a Ray cluster")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="a running Ray cluster's head (host:port from `ray start --head`, ray://host:10001 or "
                             "auto); implies --backend ray; without it --backend ray starts a local instance")
    parser.add_argument("--list", action="store_true", help="list the known policies and simulators, then exit")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.list:
        _print_registry()
        return 0
    config = BenchmarkConfig.build(args.config, quick=bool(args.quick), out_dir=args.out_dir, seeds=args.seeds,
                                   episodes=args.episodes, max_envs=args.max_envs, policies=args.policies,
                                   simulators=args.simulators,
                                   metrics=args.metrics, offline=args.offline,
                                   retrain_per_seed=args.retrain_per_seed,
                                   warm_start=None if args.warm_start is None else
                                   ("" if args.warm_start == "none" else args.warm_start))
    executor = ExecutorConfig.from_options(args.backend, args.jobs, args.ray_address)
    run_benchmark(config, overwrite=args.overwrite, executor=executor)
    return 0


def positive_int(text: str) -> int:
    """argparse type of a count of at least 1: ``--jobs 0`` is refused before anything runs."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _print_registry() -> None:
    console = Console()
    for title, registry in (("policies", POLICIES), ("simulators", SIMULATORS)):
        table = Table(title=title)
        table.add_column("name", style="bold")
        table.add_column("description")
        for name, spec in registry.items():
            table.add_row(name, spec.description)
        console.print(table)
    console.print(f"metrics: {', '.join(ALL_METRICS)}")
