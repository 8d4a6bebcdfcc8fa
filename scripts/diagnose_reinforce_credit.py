"""Is a clicked item's return-to-go about the item or about the user? (REINFORCE's choice credit in ML-100K.)

Two measurements under uniformly random slates (gamma 0.9, the agent's default):

1. Observational: over click steps, the correlation of the return-to-go ``R_t`` (what choice credit
   gives the clicked item) with the clicked item's log popularity, overall, within a user and within a
   user and session depth (clicks so far, in bins of 3).
2. Interventional: from the same user states (``env.get_state`` / ``set_state``, common random numbers)
   show once the 10 least popular candidates, the 10 most popular or 10 random ones, then random slates;
   the discounted return of each branch is the slate's causal value, beside the future after a click.

    python scripts/diagnose_reinforce_credit.py --sim ml100k-train
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def random_slates(rng: np.random.Generator, n: int, n_candidates: int = 100, k: int = 10) -> np.ndarray:
    return np.argsort(rng.random((n, n_candidates)), 1)[:, :k]


def observational(make, log_pop: np.ndarray, n: int, steps: int, gamma: float) -> dict[str, float]:
    from agents.replay import EpisodeReturns
    from agents.training import clicked_slots
    from recsim_env.env.vector import merge_final_info

    env = make(n)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    returns = EpisodeReturns(n, gamma)
    clicks_so_far = np.zeros(n, int)
    for _ in range(steps):
        slate = random_slates(rng, n)
        next_obs, reward, terminated, truncated, info = env.step(slate)
        done = terminated | truncated
        choice = clicked_slots(merge_final_info(info, done), n)
        returns.add({**obs, "_depth": clicks_so_far.copy()}, slate, choice, reward.astype(np.float32), done)
        clicks_so_far += choice >= 0
        clicks_so_far[done] = 0
        obs = next_obs
    data = returns.pop()
    click = data.choice >= 0
    items = np.take_along_axis(data.obs["candidates"], data.slate, 1)
    pop = log_pop[items[click, data.choice[click]]]
    ret = data.ret[click].astype(np.float64)
    user = np.asarray(data.obs["user_index"]).reshape(len(data.ret), -1)[:, 0][click]
    depth = np.minimum(data.obs["_depth"][click], 30) // 3

    def within(key: np.ndarray) -> float:
        r, p = ret.copy(), pop.copy()
        for k in np.unique(key):
            m = key == k
            r[m] -= ret[m].mean()
            p[m] -= pop[m].mean()
        return round(float(np.corrcoef(r, p)[0, 1]), 3)

    return {"click_steps": int(click.sum()), "corr": round(float(np.corrcoef(ret, pop)[0, 1]), 3),
            "corr_within_user": within(user), "corr_within_user_depth": within(user * 100 + depth)}


def interventional(make, pop: np.ndarray, n: int, warmup: int, horizon: int, gamma: float) -> dict[str, dict]:
    from agents.training import clicked_slots
    from recsim_env.env.vector import merge_final_info

    env = make(n)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(warmup):
        obs, *_ = env.step(random_slates(rng, n))
    state, start = env.get_state(), {k: v.copy() for k, v in obs.items()}
    out = {}
    for branch in ("obscure", "popular", "random"):
        env.set_state(state)
        p = pop[start["candidates"]]
        first = {"obscure": np.argsort(p, 1), "popular": np.argsort(-p, 1),
                 "random": np.argsort(np.random.default_rng(7).random(p.shape), 1)}[branch][:, :10]
        follow = np.random.default_rng(3)
        alive, ret, disc, slate, clicked = np.ones(n, bool), np.zeros(n), 1.0, first, None
        for t in range(horizon):
            _, reward, terminated, truncated, info = env.step(slate)
            done = terminated | truncated
            if t == 0:
                clicked = clicked_slots(merge_final_info(info, done), n) >= 0
            ret += alive * disc * reward
            disc *= gamma
            alive &= ~done
            slate = random_slates(follow, n)
        future = ret - clicked
        out[branch] = {"ctr": round(float(clicked.mean()), 3), "return": round(float(ret.mean()), 3),
                       "future_after_click": round(float(future[clicked].mean()), 2),
                       "future_after_no_click": round(float(future[~clicked].mean()), 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from probe_reinforce import make_factory

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", choices=("synthetic", "ml100k-train"), default="ml100k-train")
    p.add_argument("--gamma", type=float, default=0.9)
    args = p.parse_args(argv)
    make, catalog = make_factory(args.sim, None, None)
    pop = np.asarray(catalog.popularity, np.float64)
    row = {"sim": args.sim, "gamma": args.gamma,
           "observational": observational(make, np.log(pop + 1e-6), 64, 800, args.gamma),
           "interventional": interventional(make, pop, 1024, 3, 80, args.gamma)}
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
