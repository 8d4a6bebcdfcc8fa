"""New users from demographics (issue #14 part 3): users held out of training entirely, each one's
first item ranked among 99 never-interacted items (NCF protocol), HR@10 / NDCG@10.

One fit per model and seed serves each model's rows, so they differ only in how a new user is
started: popularity (the old fallback), the mean known user (the map's intercept alone), or the ridge
map of the user's features (age, gender, occupation on ML-100K). Popularity itself stands beside them.

    python scripts/bench_new_users.py [--dataset ml-100k] [--fraction 0.1] [--seeds 0,1,2] [--models bpr-mf,neumf]
    python scripts/bench_new_users.py --env-episodes 1000 [--seeds 0,1,2,3,4] [--models bpr-mf,neumf]
    python scripts/bench_new_users.py --agent-steps 120000 --env-episodes 300 [--seeds 0,1,2]

``--env-episodes`` instead rolls the models, fitted on ML-100K's earlier 80 % (one fit per seed, with
that seed), out in the ``ml100k-later`` simulator, whose users without earlier interactions are new to
the policies: mean return with the demographic start against the popularity fallback, paired on
common seeds (the same fit, the same users and draws). ``--agent-steps`` does the same for SlateQ,
warm-started from MF-BPR and trained in ``ml100k-train`` with ``user_feature_start`` on and off (one
training each per seed, same seed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `scripts`

from baselines.demographics import UserFeatureMap, hold_out_users  # noqa: E402
from baselines.popularity import Popularity  # noqa: E402
from baselines.recipes import build_model  # noqa: E402
from recsim_env.data.loaders import load_dataset  # noqa: E402
from recsim_env.data.splits import leave_one_out  # noqa: E402

LABELS = {"bpr-mf": "MF-BPR", "neumf": "NeuMF"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of users held out of training")
    parser.add_argument("--seeds", default="0,1,2", help="held-out-user draws (and training seeds)")
    parser.add_argument("--models", default="bpr-mf,neumf", help="baselines with user vectors")
    parser.add_argument("--env-episodes", type=int, default=0, help="> 0: measure in ml100k-later instead")
    parser.add_argument("--agent-steps", type=int, default=0, help="> 0: SlateQ (warm) in ml100k-later instead")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_new_users"), help="warm-start file folder")
    return parser.parse_args(argv)


def start_variants(model, ranking, label: str) -> dict[str, dict[str, float]]:
    """The model's new users ranked from the demographic start, the mean user and popularity."""
    rows = {f"{label}, demographic start": ranking.evaluate(model)}
    feature_map, features = model.feature_map, model.user_features
    known = model.known_users(np.arange(model.n_users))
    # The mean known user: a map from no features at all is its intercept.
    model.feature_map = UserFeatureMap().fit(np.zeros((int(known.sum()), 0)), model._user_vectors()[known])
    model.user_features = np.zeros((model.n_users, 0))
    rows[f"{label}, mean-user start"] = ranking.evaluate(model)
    model.feature_map = None
    rows[f"{label}, popularity fallback (before)"] = ranking.evaluate(model)
    model.feature_map, model.user_features = feature_map, features
    return rows


def with_start(name: str, seed: int):
    """The tuned baseline with the demographic start on (NeuMF's is off by default)."""
    model = build_model(name, seed=seed)
    model.config = replace(model.config, cold_user_features=True)
    return model


def one_seed(log, fraction: float, seed: int, models: list[str]) -> dict[str, dict[str, float]]:
    train, ranking = hold_out_users(log, fraction, seed=seed)
    rows = {"Popularity": ranking.evaluate(Popularity().fit(train))}
    for name in models:
        rows |= start_variants(with_start(name, seed).fit(leave_one_out(train)), ranking, LABELS[name])
    return rows


def paired(table: dict[str, list[float]], label: str) -> None:
    """Print the per-seed difference demographic start - fallback (before) with its 95 % t-interval."""
    diff = np.array(table["demographic start"]) - np.array(table["fallback"])
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
    print(f"paired difference, {label} (demographic - fallback): {diff.mean():+.3f} ± {half:.3f} "
          f"(95 % t, {len(diff)} seeds; per seed {np.round(diff, 3).tolist()})")


def returns_by_seed(policy, venv, n_episodes: int, seed: int, is_new: np.ndarray) -> tuple[float, float, int]:
    """(mean return of all episodes, of the new users' episodes, how many those are) for one seed."""
    from recsim_env import evaluate

    episodes = evaluate(policy, venv, n_episodes=n_episodes, seed=seed).episodes
    new = is_new[episodes["user_index"].to_numpy()]
    return float(episodes["return"].mean()), float(episodes["return"][new].mean()), int(new.sum())


def later_simulator(n_episodes: int):
    """(the ml100k-later vector env, which of its users have no earlier interactions)."""
    from recsim_env import EnvConfig, RecVectorEnv
    from recsim_env.fit.datasets import movielens_splits, movielens_user_model

    early, _ = movielens_splits()
    user_model, catalog = movielens_user_model(split="later")
    is_new = np.bincount(early.interactions["user"].to_numpy(), minlength=early.n_users) == 0
    active = user_model.arrays.active_users
    print(f"ml100k-later: {is_new[active].sum()} of {len(active)} simulated users have no earlier interactions")
    return RecVectorEnv(user_model, catalog, EnvConfig(), num_envs=min(n_episodes, 256)), is_new, early


def baselines_in_later_simulator(models: list[str], seeds: list[int], n_episodes: int) -> None:
    venv, is_new, early = later_simulator(n_episodes)
    for name in models:
        everyone: dict[str, list[float]] = {"demographic start": [], "fallback": []}
        new_only: dict[str, list[float]] = {"demographic start": [], "fallback": []}
        for seed in seeds:
            model = with_start(name, seed).fit(leave_one_out(early))
            feature_map = model.feature_map
            for variant, start in (("demographic start", feature_map), ("fallback", None)):
                model.feature_map = start
                mean, mean_new, count = returns_by_seed(model, venv, n_episodes, seed, is_new)
                everyone[variant].append(mean)
                new_only[variant].append(mean_new)
                shown = variant.replace("fallback", "popularity fallback")
                print(f"{LABELS[name]} seed {seed}, {shown}: mean return {mean:.3f}, new users' {mean_new:.3f} "
                      f"({count} episodes)", flush=True)
        paired(everyone, f"{LABELS[name]}, all users")
        paired(new_only, f"{LABELS[name]}, new users")


def slateq_in_later_simulator(seeds: list[int], steps: int, n_episodes: int, out: Path) -> None:
    """SlateQ warm (MF-BPR, seed 0, as in bench_agents) with and without the demographic start."""
    import torch

    from agents.slateq import SlateQConfig
    from baselines.mf import BPRMF
    from baselines.training import LoopConfig
    from scripts.bench_agents import _train, export_warm_start, simulators

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    venv, is_new, early = later_simulator(n_episodes)
    warm = export_warm_start(BPRMF(train=LoopConfig(seed=0), slate_size=10).fit(leave_one_out(early)), out)
    train_env = simulators()["ml100k-train"]
    everyone: dict[str, list[float]] = {"demographic start": [], "fallback": []}
    new_only: dict[str, list[float]] = {"demographic start": [], "fallback": []}
    began, load = time.perf_counter(), os.getloadavg()[0]
    for seed in seeds:
        for variant, on in (("demographic start", True), ("fallback", False)):
            config = replace(SlateQConfig(), user_feature_start=on)
            policy, info = _train("slateq", train_env, steps, seed, 64, warm, config)
            mean, mean_new, count = returns_by_seed(policy, venv, n_episodes, seed, is_new)
            everyone[variant].append(mean)
            new_only[variant].append(mean_new)
            shown = variant.replace("fallback", "no-user row")
            print(f"SlateQ warm seed {seed}, {shown}: mean return {mean:.3f}, new users' {mean_new:.3f} "
                  f"({count} episodes); trained {info['wall_s']:.0f} s", flush=True)
    print(f"{time.perf_counter() - began:.0f} s in all; 1-min load {load:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    paired(everyone, "SlateQ warm, all users")
    paired(new_only, "SlateQ warm, new users")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    models = [m for m in args.models.split(",") if m]
    if args.agent_steps > 0:
        slateq_in_later_simulator(seeds, args.agent_steps, args.env_episodes or 300, args.out)
        return 0
    if args.env_episodes > 0:
        baselines_in_later_simulator(models, seeds, args.env_episodes)
        return 0
    log = load_dataset(args.dataset)
    runs = [one_seed(log, args.fraction, seed, models) for seed in seeds]
    print(f"| {args.dataset}, {args.fraction:.0%} of users new, seeds {args.seeds} | HR@10 | NDCG@10 |")
    print("|---|---|---|")
    for name in runs[0]:
        hr = [run[name]["HR@10"] for run in runs]
        ndcg = [run[name]["NDCG@10"] for run in runs]
        print(f"| {name} | {np.mean(hr):.3f} ({' '.join(f'{v:.3f}' for v in hr)}) | "
              f"{np.mean(ndcg):.3f} ({' '.join(f'{v:.3f}' for v in ndcg)}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
