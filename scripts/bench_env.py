"""Env throughput: single ``RecEnv.step``, the batched ``RecVectorEnv`` and a ``SyncVectorEnv`` of single envs.

Prints a markdown table (medians over ``--repeats``, taken round-robin across the measures) and the
command that produced it, with rates by wall-clock and by process CPU time: on a shared machine the
CPU-time rate is the steadier one. Actions are
random valid slates (distinct candidate positions), drawn before timing; resets happen inside the
timed loop and count toward the time but not the steps, as in Google RecSim's peer benchmark
(``../shared/peers/bench_recsim.sh``, run with ``--recsim`` and reported beside ours). With
``--lifetime`` the lifetime vector env (sessions, gaps, new sessions) is timed in the same round-robin,
beside a session vector env over the same returning user model (its hazard-ended sessions).

    python scripts/bench_env.py [--model synthetic|movielens] [--num-envs 1024] [--recsim] [--lifetime]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import NamedTuple

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from recsim_env.env.config import EnvConfig
from recsim_env.env.lifetime import LifetimeVectorEnv
from recsim_env.env.rec_env import RecEnv
from recsim_env.env.registration import synthetic_user_model
from recsim_env.env.vector import RecVectorEnv
from recsim_env.protocols import Responses, ReturningUserModel
from recsim_env.users.synthetic import LongTermConfig

PEER_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "peers" / "bench_recsim.sh"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("synthetic", "movielens"), default="synthetic", help="user model")
    p.add_argument("--num-envs", type=int, default=1024, help="users stepped together by the vector env")
    p.add_argument("--slate-size", type=int, default=10)
    p.add_argument("--n-candidates", type=int, default=100)
    p.add_argument("--single-steps", type=int, default=5000, help="timed steps of the single env per repeat")
    p.add_argument("--vector-steps", type=int, default=200, help="timed steps of the vector env per repeat")
    p.add_argument("--sync-steps", type=int, default=5, help="timed steps of the SyncVectorEnv per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--recsim", action="store_true", help="also run Google RecSim's peer benchmark")
    p.add_argument("--lifetime", action="store_true", help="also time the lifetime vector env")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


class NullUserModel:
    """Users who never click and never leave: times the env's own share of a step."""

    n_user_features = 1
    n_logged_users = 0
    max_rating = 1.0  # no ratings: the protocol's convention

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def sample(self, n, rng):
        return np.zeros(n, dtype=np.int64)

    def replace(self, state, mask, rng):
        state[mask] = 0

    def features(self, state):
        return np.zeros((len(state), 1), dtype=np.float32)

    def user_index(self, state):
        return np.full(len(state), -1, dtype=np.int64)

    def respond(self, state, slates, valid, rng):
        nothing = np.zeros((4, *slates.shape), dtype=np.float32)
        return Responses(np.full(len(state), -1, dtype=np.int64), *nothing)

    def update(self, state, slates, responses, rng):
        state += 1

    def left(self, state):
        return np.zeros(len(state), dtype=bool)


def load_model(name: str):
    if name == "movielens":
        from recsim_env.fit.datasets import movielens_user_model

        return movielens_user_model(split="train", cache_dir=None)
    return synthetic_user_model()


def returning_model(name: str, model):
    """The model whose users come back: the synthetic one with its long-term truth, or the fitted one
    if it implements :class:`ReturningUserModel` (else ``None``)."""
    if name == "synthetic":
        return synthetic_user_model(longterm=LongTermConfig())[0]
    return model if isinstance(model, ReturningUserModel) else None


def action_bank(rng: np.random.Generator, shape: tuple[int, ...], n_candidates: int, size: int = 64) -> list:
    """``size`` random actions of ``shape`` (..., slate_size) with distinct positions per slate."""
    k = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    bank = []
    for _ in range(size):
        perm = np.argsort(rng.random((rows, n_candidates)), axis=1)[:, :k]
        bank.append(perm.reshape(shape).astype(np.int64))
    return bank


class Rate(NamedTuple):
    wall: float
    cpu: float


def _rates(count: int, wall: float, cpu: float) -> Rate:
    return Rate(count / wall, count / cpu)


def time_single(env: RecEnv, bank: list, steps: int, seed: int) -> Rate:
    env.reset(seed=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(bank[i % len(bank)])
        if terminated or truncated:
            env.reset()
    return _rates(steps, time.perf_counter() - wall, time.process_time() - cpu)


def time_vector(env, bank: list, steps: int, seed: int) -> Rate:
    env.reset(seed=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        env.step(bank[i % len(bank)])
    return _rates(steps * env.num_envs, time.perf_counter() - wall, time.process_time() - cpu)


def median_rate(fn, repeats: int) -> Rate:
    return interleaved_medians({"only": fn}, repeats)["only"]


def interleaved_medians(measures: dict, repeats: int) -> dict[str, Rate]:
    """Median rate of each measure, the repeats taken round-robin: on a shared host a burst of
    contention then slows one repeat of every measure instead of all repeats of one."""
    runs: dict[str, list[Rate]] = {name: [] for name in measures}
    for rep in range(repeats):
        for name, fn in measures.items():
            runs[name].append(fn(rep))
    return {name: Rate(statistics.median(r.wall for r in rs), statistics.median(r.cpu for r in rs))
            for name, rs in runs.items()}


def peak_memory_mb(model, catalog, config: EnvConfig, num_envs: int, bank: list) -> float:
    """Peak traced Python/numpy allocation of building and stepping the vector env, in MiB."""
    tracemalloc.start()
    env = RecVectorEnv(model, catalog, config, num_envs=num_envs)
    env.reset(seed=0)
    for i in range(20):
        env.step(bank[i % len(bank)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def default_env_peak_rss_mb(model: str) -> float:
    """Peak RSS of a fresh process that builds the default single env and steps it 2,000 times."""
    out = subprocess.run([sys.executable, __file__, "--model", model, "--memory-probe"], capture_output=True,
                         text=True, check=True, timeout=900)
    return float(out.stdout.strip().splitlines()[-1])


def memory_probe(args: argparse.Namespace) -> None:
    model, catalog = load_model(args.model)
    env = RecEnv(model, catalog, EnvConfig())
    bank = action_bank(np.random.default_rng(args.seed), (EnvConfig().slate_size,), EnvConfig().n_candidates)
    time_single(env, bank, 2000, args.seed)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_recsim(n_candidates: int, slate_size: int) -> Rate | str:
    """Google RecSim's interest-evolution env, timed by the peer script on this machine, now."""
    out = subprocess.run(["bash", str(PEER_SCRIPT), str(n_candidates), str(slate_size)], capture_output=True,
                         text=True, check=False, timeout=1800)
    text = out.stdout + out.stderr
    wall = re.search(r"median_wall_steps_per_s=([\d,.]+)", text)
    cpu = re.search(r"median_cpu_steps_per_s=([\d,.]+)", text)
    if not (wall and cpu):
        return f"failed: {text.strip().splitlines()[-1] if text.strip() else out.returncode}"
    return Rate(float(wall.group(1).replace(",", "")), float(cpu.group(1).replace(",", "")))


def lifetime_measures(args: argparse.Namespace, model, catalog, config: EnvConfig, bank: list) -> dict:
    """The ``--lifetime`` measures: the lifetime vector env and a session vector env over the same model."""
    returning = returning_model(args.model, model) if args.lifetime else None
    if returning is None:
        return {}
    return {
        "lifetime": lambda r: time_vector(LifetimeVectorEnv(returning, catalog, config, num_envs=args.num_envs),
                                          bank, args.vector_steps, args.seed + r),
        "returning_sessions": lambda r: time_vector(RecVectorEnv(returning, catalog, config, num_envs=args.num_envs),
                                                    bank, args.vector_steps, args.seed + r),
    }


def lifetime_rows(args: argparse.Namespace, rates: dict[str, Rate], vector: Rate) -> list[tuple[str, str, str]]:
    if "lifetime" not in rates:
        return [("`LifetimeVectorEnv`", f"not measured: the {args.model} model is not a ReturningUserModel", "")]
    lifetime, sessions = rates["lifetime"], rates["returning_sessions"]
    return [
        (f"`LifetimeVectorEnv`, N={args.num_envs}, returning {args.model} users", *_fmt(lifetime, "user-steps/s")),
        (f"`RecVectorEnv` N={args.num_envs} over the same returning model (sessions only)",
         *_fmt(sessions, "user-steps/s")),
        ("lifetime / session `RecVectorEnv` (the id's default model)", f"{lifetime.wall / vector.wall:.0%}",
         f"{lifetime.cpu / vector.cpu:.0%}"),
        ("lifetime / session env over the same returning model", f"{lifetime.wall / sessions.wall:.0%}",
         f"{lifetime.cpu / sessions.cpu:.0%}"),
    ]


def _fmt(rate: Rate, unit: str) -> tuple[str, str]:
    return f"{rate.wall:,.0f} {unit}", f"{rate.cpu:,.0f} {unit}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_probe:
        memory_probe(args)
        return 0
    load_before = f"{os.getloadavg()[0]:.2f}"
    model, catalog = load_model(args.model)
    config = EnvConfig(slate_size=args.slate_size, n_candidates=args.n_candidates)
    rng = np.random.default_rng(args.seed)
    single_bank = action_bank(rng, (args.slate_size,), args.n_candidates, size=256)
    vector_bank = action_bank(rng, (args.num_envs, args.slate_size), args.n_candidates, size=8)

    rates = interleaved_medians({
        "single": lambda r: time_single(RecEnv(model, catalog, config), single_bank, args.single_steps, args.seed + r),
        "vector": lambda r: time_vector(RecVectorEnv(model, catalog, config, num_envs=args.num_envs),
                                        vector_bank, args.vector_steps, args.seed + r),
        "null": lambda r: time_vector(RecVectorEnv(NullUserModel(model.n_items), None, config,
                                                   num_envs=args.num_envs),
                                      vector_bank, args.vector_steps, args.seed + r),
    } | lifetime_measures(args, model, catalog, config, vector_bank), args.repeats)
    single, vector, null = rates["single"], rates["vector"], rates["null"]
    sync_env = SyncVectorEnv([lambda: RecEnv(model, catalog, config) for _ in range(args.num_envs)],
                             autoreset_mode=AutoresetMode.SAME_STEP)
    sync = median_rate(lambda r: time_vector(sync_env, vector_bank, args.sync_steps, args.seed + r),
                       max(1, args.repeats // 2))
    peak = peak_memory_mb(model, catalog, config, args.num_envs, vector_bank)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = [
        ("single `RecEnv.step`", *_fmt(single, "steps/s")),
        (f"`RecVectorEnv`, N={args.num_envs}", *_fmt(vector, "user-steps/s")),
        (f"`SyncVectorEnv` of {args.num_envs} `RecEnv`", *_fmt(sync, "user-steps/s")),
        ("batched / SyncVectorEnv", f"{vector.wall / sync.wall:,.1f}x", f"{vector.cpu / sync.cpu:,.1f}x"),
        (f"env's own share: `RecVectorEnv` N={args.num_envs}, a user model that does nothing",
         *_fmt(null, "user-steps/s")),
    ]
    if args.lifetime:
        rows += lifetime_rows(args, rates, vector)
    if args.recsim:
        peer = run_recsim(args.n_candidates, args.slate_size)
        if isinstance(peer, Rate):
            rows.append(("Google RecSim interest_evolution, single env", *_fmt(peer, "steps/s")))
            rows.append(("single `RecEnv` / RecSim", f"{single.wall / peer.wall:,.1f}x",
                         f"{single.cpu / peer.cpu:,.1f}x"))
            rows.append((f"`RecVectorEnv` N={args.num_envs} / RecSim", f"{vector.wall / peer.wall:,.0f}x",
                         f"{vector.cpu / peer.cpu:,.0f}x"))
        else:
            rows.append(("Google RecSim interest_evolution, single env", peer, ""))
    rows.append((f"peak traced memory, vector env N={args.num_envs}", f"{peak:,.1f} MiB", ""))
    rows.append(("peak RSS, a process with one default env (2,000 steps)",
                 f"{default_env_peak_rss_mb(args.model):,.0f} MiB", ""))
    rows.append(("peak RSS of this benchmark process (incl. the SyncVectorEnv)", f"{rss:,.0f} MiB", ""))
    print(f"model={args.model}, slate {args.slate_size}, {args.n_candidates} candidates, medians of "
          f"{args.repeats} repeats; load average before: {load_before}, after: {os.getloadavg()[0]:.2f}\n")
    print("| measure | wall-clock | CPU time |\n|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall} | {cpu} |")
    print(f"\ncommand: `python {' '.join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
