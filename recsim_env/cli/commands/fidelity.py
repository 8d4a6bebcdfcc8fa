"""``recsim fidelity``: the fidelity report of the simulator fitted on the earlier part of a log."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rich.console import Console

from recsim_env.users.fitted import DEFAULT_START_ACTIVITY, START_ACTIVITY

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("fidelity", help="score the fitted simulator against held-out later interactions "
                                                    "(markdown + PNG plots)")
    parser.add_argument("--dataset", default="ml-100k", help="dataset name or path (default: %(default)s)")
    parser.add_argument("--model", default=None,
                        help="fitted artifact (.npz) of the dataset's train part (default: fit or load the cached one)")
    parser.add_argument("--out", default="fidelity-report", help="output folder (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None, help="data and model cache")
    parser.add_argument(
        "--max-events", type=int, default=5000, help="held-out interactions scored (default: %(default)s)"
    )
    parser.add_argument(
        "--negatives", type=int, default=99, help="sampled negatives per held-out item (default: %(default)s)"
    )
    parser.add_argument("--headroom-episodes", type=int, default=1000,
                        help="episodes per policy in the greedy vs non-myopic check, 0 to skip (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw (default: %(default)s)")
    parser.add_argument("--start-activity", choices=START_ACTIVITY, default=DEFAULT_START_ACTIVITY,
                        help="a simulated session's start state: a uniform training session's (its user, "
                             "activity, sessions so far, days), a uniform user at one of its session starts' "
                             "activity, or at its whole history (default: %(default)s)")
    parser.set_defaults(func=_fidelity)


def _fidelity(args: argparse.Namespace) -> int:
    from recsim_env.evaluation.fidelity import FidelityConfig, fidelity_report
    from recsim_env.fit.datasets import dataset_splits, fitted_user_model
    from recsim_env.users.fitted import FittedUserModel

    early, later = dataset_splits(args.dataset, args.cache_dir)
    if args.model:
        model = FittedUserModel.load(args.model, expected_fingerprint=early.fingerprint())
    else:
        model, _ = fitted_user_model(args.dataset, "train", args.cache_dir)
    model = model.with_start_activity(args.start_activity)
    config = FidelityConfig(max_events=args.max_events, n_negatives=args.negatives,
                            headroom_episodes=args.headroom_episodes, seed=args.seed)
    report = fidelity_report(model, early, later, config)
    path = report.write(Path(args.out))
    Console().print(report.to_markdown().split("![")[0])
    Console().print(f"report written to {path}")
    return 0
