"""Soak: a benchmark-length run of the batched env with its resident memory sampled, to catch leaks.

Steps a ``RecVectorEnv`` of ``--num-envs`` users for ``--steps`` user-steps (a batched step of N users
counts N) under random slates drawn afresh every step, with autoreset replacing departed users as in
training, and samples the process's resident set size every ``--every`` user-steps. Prints the series,
and the max / min ratio of the samples from the end of the first window on (the reset's sample comes
before the step buffers and allocator pools fill); exits 1 when that ratio exceeds ``1 + --tolerance``.

    python scripts/soak_env.py [--model synthetic|movielens] [--steps 10000000] [--num-envs 1024]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sys
import time

import numpy as np

from recsim_env.env.config import EnvConfig
from recsim_env.env.registration import synthetic_user_model
from recsim_env.env.vector import RecVectorEnv


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("synthetic", "movielens"), default="synthetic", help="user model")
    p.add_argument("--steps", type=int, default=10_000_000, help="user-steps in all")
    p.add_argument("--num-envs", type=int, default=1024, help="users stepped together")
    p.add_argument("--every", type=int, default=500_000, help="user-steps between RSS samples")
    p.add_argument("--slate-size", type=int, default=10)
    p.add_argument("--n-candidates", type=int, default=100)
    p.add_argument("--tolerance", type=float, default=0.05, help="allowed max/min - 1 of the samples after warm-up")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def rss_mib() -> float:
    """The resident set size now, from /proc/self/statm; where there is no /proc (macOS), the peak so far
    (``ru_maxrss``, KiB on Linux, bytes on macOS), which can only show growth, never a fall."""
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def load_model(name: str):
    """The user model and its catalog."""
    if name == "movielens":
        from recsim_env.fit.datasets import movielens_user_model

        return movielens_user_model(split="train", cache_dir=None)
    return synthetic_user_model()


def soak(venv: RecVectorEnv, steps: int, every: int, seed: int) -> list[tuple[int, float]]:
    """``(user_steps, rss_mib)`` after the reset and then every ``every`` user-steps."""
    rng = np.random.default_rng(seed)
    n = venv.num_envs
    shape = (n, len(venv.single_action_space.nvec))
    n_candidates = int(venv.single_action_space.nvec[0])
    venv.reset(seed=seed)
    samples = [(0, rss_mib())]
    done_steps = 0
    next_sample = every
    while done_steps < steps:
        venv.step(rng.integers(0, n_candidates, shape))  # repeats are blanked by the env, as a policy's would be
        done_steps += n
        if done_steps >= next_sample:
            samples.append((done_steps, rss_mib()))
            next_sample += every
    return samples


def flatness(samples: list[tuple[int, float]]) -> tuple[float, float, float]:
    """``(max / min, min, max)`` RSS over the samples after the reset's (from the first window on)."""
    values = [rss for _, rss in samples[1:]] or [rss for _, rss in samples]
    return max(values) / min(values), min(values), max(values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model, catalog = load_model(args.model)
    config = EnvConfig(slate_size=args.slate_size, n_candidates=args.n_candidates)
    venv = RecVectorEnv(model, catalog, config, num_envs=args.num_envs)
    start = time.perf_counter()
    samples = soak(venv, args.steps, args.every, args.seed)
    wall = time.perf_counter() - start
    print(f"python scripts/soak_env.py {shlex.join(argv if argv is not None else sys.argv[1:])}")
    print("| user-steps | RSS (MiB) |\n|---:|---:|")
    for steps, rss in samples:
        print(f"| {steps:,} | {rss:,.1f} |")
    ratio, low, high = flatness(samples)
    verdict = "flat" if ratio <= 1 + args.tolerance else "GROWING"
    print(f"{args.model}, N={args.num_envs}: {samples[-1][0]:,} user-steps in {wall:,.1f} s "
          f"({samples[-1][0] / wall:,.0f}/s); RSS after the first {args.every:,} user-steps: min {low:,.1f} MiB, "
          f"max {high:,.1f} MiB, max/min {ratio:.4f}: {verdict} within {args.tolerance:.0%} "
          f"(at reset {samples[0][1]:,.1f} MiB)")
    return 0 if verdict == "flat" else 1


if __name__ == "__main__":
    sys.exit(main())
