"""New users from demographics (issue #14 part 3): users held out of training entirely, each one's
first item ranked among 99 never-interacted items (NCF protocol), HR@10 / NDCG@10.

One MF-BPR fit serves every row, so the rows differ only in how a new user is started: popularity
(today's fallback), the mean known user (the map's intercept alone), or the ridge map of the user's
features (age, gender, occupation on ML-100K). Popularity itself stands beside them.

    python scripts/bench_new_users.py [--dataset ml-100k] [--fraction 0.1] [--seeds 0,1,2]
    python scripts/bench_new_users.py --env-episodes 200 [--seeds 0,1,2]

``--env-episodes`` instead rolls MF-BPR, fitted on ML-100K's earlier 80 %, out in the ``ml100k-later``
simulator, whose users who have no earlier interactions are new to the policy: mean return with the
demographic start against the popularity fallback, paired on common seeds.
"""

from __future__ import annotations

import argparse

import numpy as np

from baselines.demographics import UserFeatureMap, hold_out_users
from baselines.popularity import Popularity
from baselines.recipes import build_model
from recsim_env.data.loaders import load_dataset
from recsim_env.data.splits import leave_one_out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of users held out of training")
    parser.add_argument("--seeds", default="0,1,2", help="held-out-user draws (and training seeds)")
    parser.add_argument("--env-episodes", type=int, default=0, help="> 0: measure in ml100k-later instead")
    return parser.parse_args(argv)


def one_seed(log, fraction: float, seed: int) -> dict[str, dict[str, float]]:
    train, ranking = hold_out_users(log, fraction, seed=seed)
    model = build_model("bpr-mf", seed=seed).fit(leave_one_out(train))
    rows = {"Popularity": ranking.evaluate(Popularity().fit(train)),
            "MF-BPR, demographic start": ranking.evaluate(model)}
    feature_map = model.feature_map
    known = model.known_users(np.arange(model.n_users))
    # The mean known user: a map from no features at all is its intercept.
    model.feature_map = UserFeatureMap().fit(np.zeros((int(known.sum()), 0)), model._user_vectors()[known])
    features = model.user_features
    model.user_features = np.zeros((model.n_users, 0))
    rows["MF-BPR, mean-user start"] = ranking.evaluate(model)
    model.feature_map = None
    rows["MF-BPR, popularity fallback (today)"] = ranking.evaluate(model)
    model.feature_map = feature_map
    model.user_features = features
    return rows


def in_later_simulator(seeds: list[int], n_episodes: int) -> None:
    from recsim_env import EnvConfig, RecVectorEnv, evaluate
    from recsim_env.fit.datasets import movielens_splits, movielens_user_model

    early, _ = movielens_splits()
    model = build_model("bpr-mf", seed=0).fit(leave_one_out(early))
    user_model, catalog = movielens_user_model(split="later")
    active = user_model.arrays.active_users
    new = ~model.known_users(active)
    print(f"ml100k-later: {new.sum()} of {len(active)} simulated users are new to the policy")
    venv = RecVectorEnv(user_model, catalog, EnvConfig(), num_envs=min(n_episodes, 256))
    feature_map = model.feature_map
    returns = {}
    new_user_returns = {}
    for name, start in (("demographic start", feature_map), ("popularity fallback", None)):
        model.feature_map = start
        episodes = evaluate(model, venv, n_episodes=n_episodes, seed=seeds).episodes
        returns[name] = episodes.groupby("seed", sort=True)["return"].mean().to_numpy()
        # Only the new users' episodes can differ between the two rows: their mean, beside the whole.
        is_new = ~model.known_users(episodes["user_index"].to_numpy())
        new_user_returns[name] = episodes[is_new].groupby("seed", sort=True)["return"].mean().to_numpy()
        print(f"{name}: mean return per seed {np.round(returns[name], 3).tolist()}, "
              f"new users' {np.round(new_user_returns[name], 3).tolist()} ({int(is_new.sum())} episodes)")
    model.feature_map = feature_map
    for label, table in (("all users", returns), ("new users", new_user_returns)):
        diff = table["demographic start"] - table["popularity fallback"]
        half = 4.303 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) == 3 else float("nan")  # t(0.975, 2)
        print(f"paired difference, {label} (demographic - fallback): {diff.mean():+.4f} ± {half:.4f} "
              f"(95 % t, {len(diff)} seeds)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.env_episodes > 0:
        in_later_simulator([int(s) for s in args.seeds.split(",")], args.env_episodes)
        return 0
    log = load_dataset(args.dataset)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [one_seed(log, args.fraction, seed) for seed in seeds]
    print(f"| {args.dataset}, {args.fraction:.0%} of users new, seeds {args.seeds} | HR@10 | NDCG@10 |")
    print("|---|---|---|")
    for name in runs[0]:
        hr = [run[name]["HR@10"] for run in runs]
        ndcg = [run[name]["NDCG@10"] for run in runs]
        print(f"| {name} | {np.mean(hr):.3f} ({', '.join(f'{v:.3f}' for v in hr)}) | "
              f"{np.mean(ndcg):.3f} ({', '.join(f'{v:.3f}' for v in ndcg)}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
