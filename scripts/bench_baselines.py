"""Offline baselines on ML-100K: the NCF protocol (1 positive + 99 sampled negatives, HR@10 / NDCG@10),
full ranking, fit time and peak memory, beside a peer library's published figures.

Each model runs in a fresh process, so its time includes torch's start-up and its peak memory is its own.
Prints a markdown table (paste into BENCHMARKS.md) and writes a CSV.

    python scripts/bench_baselines.py [--models popularity,itemknn,bpr-mf,neumf] [--dataset ml-100k]
                                      [--negative-seeds 5] [--cold-start] [--plain] [--out bench_baselines.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

PEER = {"NeuMF": (0.661, 0.385), "MF-BPR": (0.656, 0.377), "Popularity": (0.430, 0.229)}
"""A widely used peer library's figures on ML-100K under the same protocol (HR@10, NDCG@10)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="random,popularity,itemknn,bpr-mf,gmf,mlp,neumf,content")
    p.add_argument("--dataset", default="ml-100k", help="a known name or a path (RecBole atomic folder, u.data...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--negative-seeds", type=int, default=5)
    p.add_argument("--cold-start", action="store_true", help="also compare content vs popularity on unseen items")
    p.add_argument("--out", type=Path, default=Path("bench_baselines.csv"))
    p.add_argument("--plain", action="store_true", help="textbook recipes: no recency weighting, no refit")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one model, print a JSON row
    return p.parse_args(argv)


def run_one(args: argparse.Namespace) -> None:
    from baselines.offline_eval import OfflineConfig, evaluate_models
    from recsim_env.data.loaders import load_dataset

    log = load_dataset(args.dataset)
    config = OfflineConfig(models=(args.one,), seed=args.seed, negative_seeds=args.negative_seeds, plain=args.plain)
    print(json.dumps(evaluate_models(log, config).iloc[0].to_dict()))


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| model | HR@10 | NDCG@10 | HR@10 mean ± 95% CI (neg. seeds) | NDCG@10 mean ± CI | peer HR / NDCG "
             "| full R@10 | full NDCG@10 | full MRR@10 | coverage | to best s (wall / CPU) | fit s (wall / CPU) "
             "| process s | peak RSS MB |",
             "|---" * 14 + "|"]
    for _, r in frame.iterrows():
        peer = PEER.get(r["model"])
        lines.append(
            f"| {r['model']} | {r['ncf_HR@10']:.3f} | {r['ncf_NDCG@10']:.3f} | {r['ncf_HR@10_mean']:.3f} ± "
            f"{r['ncf_HR@10_ci']:.3f} | {r['ncf_NDCG@10_mean']:.3f} ± {r['ncf_NDCG@10_ci']:.3f} | "
            f"{f'{peer[0]:.3f} / {peer[1]:.3f}' if peer else '-'} | {r['full_Recall@10']:.3f} | "
            f"{r['full_NDCG@10']:.3f} | "
            f"{r['full_MRR@10']:.3f} | {r['full_coverage']:.3f} | {r['to_best_s']:.1f} / {r['to_best_cpu_s']:.1f} | "
            f"{r['fit_s']:.1f} / {r['fit_cpu_s']:.1f} | {r['process_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        run_one(args)
        return 0
    rows, start, load = [], time.perf_counter(), os.getloadavg()[0]
    for name in args.models.split(","):
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--one", name, "--dataset", args.dataset, "--seed", str(args.seed),
               "--negative-seeds", str(args.negative_seeds), *(["--plain"] if args.plain else [])]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        rows.append({**json.loads(out), "process_s": time.perf_counter() - t})
        print(f"{name}: done in {rows[-1]['process_s']:.1f} s", file=sys.stderr)
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out, index=False)
    print(f"`python {shlex.join(['scripts/bench_baselines.py', *(argv or sys.argv[1:])])}` "
          f"(whole run {time.perf_counter() - start:.0f} s; 1-min load average {load:.1f} at the start and "
          f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores)\n")
    print(markdown(frame))
    if args.cold_start:
        from baselines.offline_eval import cold_start_table
        from recsim_env.data.loaders import load_dataset

        cold = cold_start_table(load_dataset(args.dataset), seed=args.seed)
        print("\nItem cold start (10% of items never seen in training; 1 held-out positive + 99 other new items):\n")
        print("| model | HR@10 | NDCG@10 | users |\n|---|---|---|---|")
        for _, r in cold.iterrows():
            print(f"| {r['model']} | {r['HR@10']:.3f} | {r['NDCG@10']:.3f} | {r['users']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
