"""Fitting at scale: generate a synthetic log of N interactions, fit it with ``recsim fit``, measure.

1. **Generate** (cached): :class:`~recsim_env.users.synthetic.ReturningSyntheticUserModel` (100k users,
   20k items by default; sessions ended by its hazard, users coming back after its return gaps, so the
   fit's leave and return stages have sessions to fit) simulates ``--horizon-days`` under the random
   logging policy; the log is cut to its first ``--interactions`` in time (the log stopped there) and
   written once as RecBole atomic files (``NAME.inter``, ``NAME.item`` with the topics as genres) under
   ``--out-dir``, which ``recsim fit --dataset FOLDER`` reads.
2. **Fit**: ``recsim fit`` in a fresh process under ``/usr/bin/time -v`` (wall, user + sys CPU, peak
   RSS), with a fresh model cache (it fits the earlier 80 % of the log, as it does for ML-100K).
3. **Env**: ``RecVectorEnv`` (N users, random valid slates) over the fitted model beside the ML-100K
   fitted model, the repeats taken round-robin; user-steps/s medians, and the bytes of each env's
   state (the arrays of its ``get_state()``).
4. **Baselines** (``--baselines``): each named model's ``fit`` on the same log in a fresh process
   under ``/usr/bin/time -v``, with its budget (``--baseline-epochs``, ``--baseline-seconds``).

Prints one markdown row per measure and writes ``--out-dir/NAME.json``.

    OMP_NUM_THREADS=1 python scripts/bench_fit_scale.py --interactions 1000000 --horizon-days 8 [--baselines]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository root first: `scripts` and this checkout's packages

from scripts.bench_env import action_bank, interleaved_medians, time_vector  # noqa: E402

TIME_FIELDS = {"wall": "Elapsed (wall clock) time (h:mm:ss or m:ss)", "user": "User time (seconds)",
               "sys": "System time (seconds)", "rss_kb": "Maximum resident set size (kbytes)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interactions", type=int, default=1_000_000, help="interactions in the generated log")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--horizon-days", type=float, default=8.0,
                   help="simulated days; must give at least --interactions (the log is cut to them in time)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=Path("/tmp/scale"))
    p.add_argument("--ml100k-cache", default=None,
                   help="data cache holding ML-100K for the side-by-side env (default: $RECSIM_DATA)")
    p.add_argument("--num-envs", type=int, default=1024)
    p.add_argument("--env-steps", type=int, default=100, help="timed vector-env steps per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sample-every", type=float, default=10.0,
                   help="seconds between samples of the fit's RSS and stage (py-spy, where installed); 0: none")
    p.add_argument("--skip-fit", action="store_true", help="reuse the fitted artifact of an earlier run")
    p.add_argument("--baselines", default="", help="comma-separated baselines to fit (itemknn,bpr-mf,neumf)")
    p.add_argument("--baseline-epochs", type=int, default=3, help="epoch budget of the torch baselines")
    p.add_argument("--baseline-seconds", type=float, default=900.0, help="wall budget of the torch baselines")
    p.add_argument("--one-baseline", default=None, help=argparse.SUPPRESS)  # internal: fit one, print JSON
    return p.parse_args(argv)


# ---------------------------------------------------------------------------- 1. generate
def dataset_name(args: argparse.Namespace) -> str:
    return f"synthetic-{args.interactions}-{args.users}u-{args.items}i-{args.horizon_days:g}d-s{args.seed}"


def generate(args: argparse.Namespace) -> tuple[Path, dict]:
    """The log's folder (RecBole atomic files) and how it was made; generated once, then read from disk."""
    from recsim_env.users.synthetic import LongTermConfig, ReturningSyntheticUserModel, SyntheticConfig

    name = dataset_name(args)
    folder = args.out_dir / name
    record = folder / "generation.json"
    if record.exists():
        return folder, json.loads(record.read_text())
    model = ReturningSyntheticUserModel(SyntheticConfig(n_items=args.items, n_users=args.users, seed=args.seed),
                                        LongTermConfig(no_click_leave=0.0))  # a log of consumed items cannot show it
    wall, cpu = time.perf_counter(), time.process_time()
    log = model.generate_log(args.users, np.random.default_rng(args.seed), horizon_days=args.horizon_days)
    generated = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                 "simulated": log.n_interactions}
    inter = log.interactions
    if len(inter) < args.interactions:
        raise SystemExit(f"{args.horizon_days:g} days gave {len(inter):,} interactions, fewer than "
                         f"--interactions {args.interactions:,}: raise --horizon-days")
    first = np.sort(np.argsort(inter["timestamp"].to_numpy(), kind="stable")[: args.interactions])
    inter = inter.iloc[first]
    folder.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter()
    pd.DataFrame({"user_id:token": log.user_ids[inter["user"].to_numpy()],
                  "item_id:token": log.item_ids[inter["item"].to_numpy()],
                  "rating:float": inter["rating"].to_numpy().astype(np.int64),
                  "timestamp:float": inter["timestamp"].to_numpy()}).to_csv(folder / f"{name}.inter", sep="\t",
                                                                           index=False)
    pd.DataFrame({"item_id:token": log.item_ids, "class:token_seq": [" ".join(g) for g in log.items["genres"]],
                  "release_year:float": log.items["year"].to_numpy().astype(np.int64)}).to_csv(
        folder / f"{name}.item", sep="\t", index=False)
    generated |= {"write_s": time.perf_counter() - wall, "interactions": int(len(inter)),
                  "users": int(inter["user"].nunique()), "items": int(inter["item"].nunique()),
                  "horizon_days": args.horizon_days, "seed": args.seed}
    record.write_text(json.dumps(generated, indent=1))
    return folder, generated


# ---------------------------------------------------------------------------- 2. fit, measured
def timed(command: list[str], env: dict[str, str] | None = None, sample_every: float = 0.0) -> tuple[dict, str]:
    """Run ``command`` under ``/usr/bin/time -v``: (wall, user, sys seconds and peak RSS MB), its output.

    ``sample_every`` > 0: also a timeline of the process's RSS, the PSS of it and its worker processes
    (``/usr/bin/time``'s peak RSS is the largest single process's: the fit forks a worker from 500k
    interactions) and, where ``py-spy`` is installed, the innermost ``recsim_env`` function it is in
    (where the time and memory go), every that many seconds.
    """
    with subprocess.Popen(["/usr/bin/time", "-v", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env or child_env(), cwd=ROOT) as process:
        timeline: list[dict] = []
        sampler = threading.Thread(target=sample, args=(process, sample_every, timeline), daemon=True)
        if sample_every > 0:
            sampler.start()
        stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}")
    found = {key: re.search(rf"{re.escape(label)}: (.+)", stderr).group(1).strip()
             for key, label in TIME_FIELDS.items()}
    figures = {"wall_s": clock_seconds(found["wall"]), "user_s": float(found["user"]), "sys_s": float(found["sys"]),
               "peak_rss_mb": int(found["rss_kb"]) / 1024}
    if timeline:
        figures |= {"sampled_peak_tree_pss_mb": max(point["tree_pss_mb"] for point in timeline), "timeline": timeline}
    return figures, stdout


def sample(process: subprocess.Popen, every: float, timeline: list[dict]) -> None:
    """Append (seconds, RSS MB, innermost recsim_env frame) of ``process``'s child until it ends."""
    began = time.perf_counter()
    spy = shutil.which("py-spy")
    while process.poll() is None:
        time.sleep(every)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        try:
            pid = int(children.read_text().split()[0])
            rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024
            workers = [int(w) for w in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            pss = sum(_pss_kb(w) for w in [pid, *workers]) / 1024
        except (OSError, IndexError, AttributeError, ValueError):
            continue
        where = ""
        if spy:
            dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True).stdout
            frames = re.findall(r"^\s+(\S+) \((?:\S*/)?(recsim_env/\S+)\)", dump, re.MULTILINE)
            where = f"{frames[0][0]} ({frames[0][1]})" if frames else ""
        timeline.append({"s": round(time.perf_counter() - began, 1), "rss_mb": round(rss), "tree_pss_mb": round(pss),
                         "in": where})


def _pss_kb(pid: int) -> int:
    """Proportional set size of a process (kB): its shared pages split among their sharers, so the fit's
    forked worker (copy-on-write) and the fitting process add up to their memory, not twice the shared part."""
    return int(re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.MULTILINE).group(1))


def clock_seconds(text: str) -> float:
    """``h:mm:ss`` or ``m:ss.ss`` as seconds."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = 60 * seconds + float(part)
    return seconds


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def fit(args: argparse.Namespace, folder: Path) -> tuple[Path, dict]:
    """``recsim fit`` on the folder with a fresh model cache: the artifact and the process's figures."""
    artifact = args.out_dir / f"{folder.name}.npz"
    if args.skip_fit and artifact.exists():
        return artifact, {}
    cache = args.out_dir / f"{folder.name}-cache"  # one per log: runs of two sizes may overlap
    shutil.rmtree(cache, ignore_errors=True)
    figures, _ = timed([sys.executable, "-m", "recsim_env.cli.main", "fit", "--dataset", str(folder),
                        "--cache-dir", str(cache), "--out", str(artifact)], sample_every=args.sample_every)
    return artifact, figures


# ---------------------------------------------------------------------------- 3. env over the fitted model
def state_bytes(state: dict) -> int:
    """Bytes of the numpy arrays in a (nested) ``get_state()`` dict."""
    if isinstance(state, np.ndarray):
        return state.nbytes
    if isinstance(state, dict):
        return sum(state_bytes(value) for value in state.values())
    return 0


def env_rates(args: argparse.Namespace, folder: Path) -> dict:
    """User-steps/s (wall, CPU medians) and state bytes of the vector env over both fitted models."""
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv
    from recsim_env.fit.datasets import fitted_user_model, movielens_user_model

    config = EnvConfig()
    # The artifact `recsim fit` cached (loaded, not refitted) and the catalog of the part it was fitted on.
    fitted = {"scale": fitted_user_model(str(folder), "train", args.out_dir / f"{folder.name}-cache"),
              "ml-100k": movielens_user_model("train", args.ml100k_cache)}
    envs = {name: RecVectorEnv(model, catalog, config, num_envs=args.num_envs)
            for name, (model, catalog) in fitted.items()}
    bank = action_bank(np.random.default_rng(args.seed), (args.num_envs, config.slate_size), config.n_candidates)
    rates = interleaved_medians({name: (lambda rep, env=env: time_vector(env, bank, args.env_steps, rep))
                                 for name, env in envs.items()}, args.repeats)
    return {name: {"user_steps_per_s_wall": rate.wall, "user_steps_per_s_cpu": rate.cpu,
                   "state_mb": state_bytes(envs[name].get_state()) / 2**20,
                   "model_arrays_mb": sum(value.nbytes for value in vars(fitted[name][0].arrays).values()) / 2**20}
            for name, rate in rates.items()}


# ---------------------------------------------------------------------------- 4. baselines
def fit_one_baseline(args: argparse.Namespace) -> None:
    """(In its own process.) Fit one baseline on the generated log with the stated budget; print JSON."""
    from dataclasses import replace

    import torch

    from baselines.recipes import build_model
    from recsim_env.data.loaders import load_dataset

    torch.set_num_threads(1)
    folder, _ = generate(args)
    log = load_dataset(folder)
    model = build_model(args.one_baseline, seed=args.seed)
    if hasattr(model, "train_config"):
        model.train_config = replace(model.train_config, epochs=args.baseline_epochs,
                                     max_seconds=args.baseline_seconds)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(log)
    print(json.dumps({"fit_wall_s": time.perf_counter() - wall, "fit_cpu_s": time.process_time() - cpu}))


def baselines(args: argparse.Namespace) -> dict:
    results = {}
    for name in filter(None, args.baselines.split(",")):
        command = [sys.executable, __file__, "--one-baseline", name, *passthrough(args)]
        try:
            figures, stdout = timed(command)
        except SystemExit as exc:  # what breaks is a result too
            results[name] = {"error": str(exc)[-1500:]}
            continue
        results[name] = figures | json.loads(stdout.strip().splitlines()[-1])
    return results


def passthrough(args: argparse.Namespace) -> list[str]:
    return ["--interactions", str(args.interactions), "--users", str(args.users), "--items", str(args.items),
            "--horizon-days", str(args.horizon_days), "--seed", str(args.seed), "--out-dir", str(args.out_dir),
            "--baseline-epochs", str(args.baseline_epochs), "--baseline-seconds", str(args.baseline_seconds)]


# ---------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one_baseline:
        fit_one_baseline(args)
        return
    folder, generated = generate(args)
    artifact, fitted = fit(args, folder)
    result = {"command": " ".join(sys.argv), "load": open("/proc/loadavg").read().split()[:3],
              "generation": generated, "fit": fitted, "env": env_rates(args, folder),
              "baselines": baselines(args)}
    (args.out_dir / f"{folder.name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
