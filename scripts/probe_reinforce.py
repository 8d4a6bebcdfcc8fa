"""Short-budget probe of REINFORCE: train as ``recsim benchmark --quick`` does, report the greedy return.

Trains REINFORCE (``agents.factory.train_agent``, the benchmark's path) for ``--steps`` user-steps on
``--envs`` envs (the quick benchmark's 24,000 on 32) in ``ml100k-train`` or ``synthetic``, optionally
warm-started from a baselines' embeddings file (``--warm``, e.g. the benchmark's
``train/<context>/shared/seed-0/warm_start_mf-bpr.npz``), then evaluates it greedily, and with
``--baselines`` a uniformly random slate, over the same ``--episodes`` users (common random numbers,
seed 0). ``--set key=value`` overrides a :class:`~agents.reinforce.ReinforceConfig` field (values read as
Python literals); ``--start-activity`` and ``--no-click-leave`` change the ML-100K simulator (train and
evaluation alike).

    python scripts/probe_reinforce.py --sim ml100k-train --warm WARM.npz --baselines --set credit='"shared"'
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from dataclasses import replace

import numpy as np

from scripts.probe_sb3_dqn import RandomSlates, make_factory  # one home for the probes' env and random slates


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", choices=("synthetic", "ml100k-train"), default="ml100k-train")
    p.add_argument("--steps", type=int, default=24_000)
    p.add_argument("--envs", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--warm", default=None, help="embeddings file to warm-start from (none: cold)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--start-activity", default=None, choices=("sessions", "total", "drawn"))
    p.add_argument("--no-click-leave", type=float, default=None)
    p.add_argument("--baselines", action="store_true", help="also evaluate random")
    args = p.parse_args(argv)

    import torch

    from agents.factory import read_warm_start, train_agent
    from agents.reinforce import ReinforceConfig
    from agents.training import TrainConfig
    from recsim_env.evaluation.rollout import evaluate

    torch.set_num_threads(1)
    overrides = {key: ast.literal_eval(value) for key, value in (item.split("=", 1) for item in args.set)}
    make, catalog = make_factory(args.sim, args.start_activity, args.no_click_leave)
    env = make(args.envs)
    warm = read_warm_start(args.warm, env, items_only_if_users_differ=True) if args.warm else None
    config = TrainConfig(total_steps=args.steps, log_interval=max(args.steps // 6, 1), checkpoint_interval=0,
                         progress=False)
    start = time.perf_counter()
    policy, result = train_agent("reinforce", env, config, seed=args.seed, warm_start=warm,
                                 agent_config=replace(ReinforceConfig(), **overrides))
    row = {"sim": args.sim, "set": overrides, "warm": bool(warm), "start_activity": args.start_activity,
           "no_click_leave": args.no_click_leave, "steps": args.steps, "seed": args.seed,
           "train_s": round(time.perf_counter() - start, 1),
           "curve": [round(c.get("episode/return", np.nan), 2) for c in result.curve],
           "entropy": [round(c.get("train/entropy", np.nan), 2) for c in result.curve]}
    policies = {"reinforce": policy}
    if args.baselines:
        policies["random"] = RandomSlates(10)
    for name, pol in policies.items():
        summary = evaluate(pol, make(args.episodes), n_episodes=args.episodes, seed=0,
                           catalog=catalog).summary().set_index("metric")
        row[name] = {m: round(float(summary.loc[m, "mean"]), 3) for m in ("return", "ctr", "session_length", "novelty")
                     if m in summary.index}
        row[name]["ci"] = round(float(summary.loc["return", "ci_high"] - summary.loc["return", "mean"]), 2)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
