"""How long lifetimes run in the ML-100K lifetime simulators, with the return model's covariates clamped to
their fitted range (the default since return artifact format 3) and with the bounds removed.

    python scripts/diagnose_lifetime_runaway.py [--users 600] [--seed 0]

Each run plays ``--users`` lifetimes (the default env: 60 days, slates of distinct random candidates) to
their end and prints the sessions and steps per lifetime. Figures: BENCHMARKS.md, "Lifetime simulators in
the benchmark".
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from recsim_env.env.config import EnvConfig
from recsim_env.env.lifetime import LifetimeVectorEnv
from recsim_env.fit.datasets import movielens_user_model
from recsim_env.fit.returns import UNBOUNDED, ReturnModel


def unbounded(returns: ReturnModel) -> ReturnModel:
    """The same model without the clamp (what format 2 did)."""
    return dataclasses.replace(returns, covariate_low=np.full_like(returns.covariate_low, -UNBOUNDED),
                               covariate_high=np.full_like(returns.covariate_high, UNBOUNDED))


def lifetimes(env: LifetimeVectorEnv, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sessions and steps of each row's first lifetime (rows that ended are not counted again)."""
    n, config = env.num_envs, env.config
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    done = np.zeros(n, bool)
    steps = np.zeros(n, np.int64)
    sessions = np.ones(n, np.int64)
    while not done.all():
        action = np.argsort(rng.random((n, config.n_candidates)), axis=1)[:, :config.slate_size]
        obs, _, terminated, truncated, _ = env.step(action)
        live = ~done
        steps[live] += 1
        ended = terminated | truncated
        # a row that ended shows its next user's first observation: its last session index is the one before
        grew = live & ~ended
        sessions[grew] = np.maximum(sessions[grew], obs["session_index"][grew, 0] + 1)
        done |= ended
    return sessions, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=600, help="lifetimes per run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.users < 1:
        parser.error(f"--users must be >= 1, got {args.users}")
    print("| split | return model | sessions, max / p99 | steps per lifetime, median / p99 / max |")
    print("|---|---|---|---|")
    for split in ("train", "later"):
        model, catalog = movielens_user_model(split=split)
        for label, returns in (("unbounded", unbounded(model.returns)), ("clamped", model.returns)):
            env = LifetimeVectorEnv(model.with_long_term(returns=returns), catalog, EnvConfig(), num_envs=args.users)
            sessions, steps = lifetimes(env, args.seed)
            print(f"| {split} | {label} | {sessions.max()} / {np.percentile(sessions, 99):.1f} | "
                  f"{np.median(steps):g} / {np.percentile(steps, 99):,.0f} / {steps.max():,} |", flush=True)


if __name__ == "__main__":
    main()
