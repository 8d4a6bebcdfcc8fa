"""How well SB3 DQN's Q ranks candidates in the ML-100K simulator, against the users' true utilities.

Trains SB3 DQN (the ``Discrete`` view: its pick in slot 0, popularity fills the rest) with the given
credit, then steps 256 simulated users for 20 steps under the trained policy and reports, per step and
user: the Spearman correlation of Q with the true utilities of the 100 candidates (and with their
popularity), how often its pick is popularity's, and the mean true utility of its pick beside
popularity's and the myopic oracle's. Finally evaluates it and popularity with common random numbers.
The true utilities are the simulated users' hidden state: a diagnostic, not something a policy reads.

    python scripts/diagnose_sb3_dqn.py [--credit pick|slate] [--steps 120000] [--seed 0] [--gamma 0.2]

``--ceiling SEED [SEED ...]`` trains nothing: it evaluates popularity, the slot-0 oracle (the
true-utility argmax in slot 0, popularity's fill after: the best a myopic pick through this view can
do) and the myopic oracle over all ten slots, per seed, with the same common random numbers.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.stats import spearmanr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--credit", choices=("pick", "slate"), default="pick")
    p.add_argument("--steps", type=int, default=120_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gamma", type=float, default=None, help="SB3 DQN's discount (default: make_sb3_dqn's)")
    p.add_argument("--episodes", type=int, default=300)
    p.add_argument("--ceiling", type=int, nargs="+", metavar="SEED", help="only the oracles' returns, per seed")
    args = p.parse_args(argv)
    if args.ceiling:
        return ceiling(args.ceiling, args.episodes)

    from agents.sb3_dqn import (
        SB3SlatePolicy,
        batched_discrete_env,
        make_sb3_dqn,
        train_sb3_dqn,
    )
    from agents.training import TrainConfig
    from baselines.popularity import Popularity
    from recsim_env.data.splits import leave_one_out
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv
    from recsim_env.evaluation.rollout import evaluate
    from recsim_env.fit.datasets import movielens_splits, movielens_user_model

    model, catalog = movielens_user_model(split="train")
    popularity = np.asarray(catalog.popularity, dtype=np.float64)

    def make(n: int) -> RecVectorEnv:
        return RecVectorEnv(model, catalog, EnvConfig(), num_envs=n)

    view = batched_discrete_env(make(64), credit=args.credit)
    kwargs = {} if args.gamma is None else {"gamma": args.gamma}
    dqn = make_sb3_dqn(view, seed=args.seed, **kwargs)
    start = time.perf_counter()
    train_sb3_dqn(dqn, TrainConfig(total_steps=args.steps, progress=False))
    train_s = time.perf_counter() - start
    policy = SB3SlatePolicy(dqn, 10, view.scorer)

    env = make(256)
    obs, _ = env.reset(seed=10_000 + args.seed)
    rho_util, rho_pop, same, util_dqn, util_pop, util_oracle = [], [], [], [], [], []
    rows = np.arange(256)
    for _ in range(20):
        q = policy.q_values(obs)
        cands = obs["candidates"].astype(np.int64)
        util = model.utilities(env.user_state, cands)
        pop = popularity[cands]
        rho_util += [spearmanr(q[i], util[i])[0] for i in rows]
        rho_pop += [spearmanr(q[i], pop[i])[0] for i in rows]
        pick, pop_pick = q.argmax(1), pop.argmax(1)
        same.append(np.mean(pick == pop_pick))
        util_dqn.append(util[rows, pick].mean())
        util_pop.append(util[rows, pop_pick].mean())
        util_oracle.append(util.max(1).mean())
        obs, *_ = env.step(policy.predict(obs)[0])

    early, _ = movielens_splits()  # popularity fitted as in scripts/bench_agents.py
    returns = {}
    for name, pol in (("sb3-dqn", policy), ("popularity", Popularity(slate_size=10).fit(leave_one_out(early)))):
        returns[name] = float(
            evaluate(pol, make, n_episodes=args.episodes, seed=args.seed).per_seed().iloc[0]["return"]
        )
    print(
        json.dumps(
            {
                "credit": args.credit,
                "steps": args.steps,
                "seed": args.seed,
                "gamma": dqn.gamma,
                "train_s": round(train_s),
                "spearman_q_utility": round(float(np.mean(rho_util)), 3),
                "spearman_q_popularity": round(float(np.mean(rho_pop)), 3),
                "pick_is_popularitys": round(float(np.mean(same)), 3),
                "utility_of_pick": {
                    "sb3-dqn": round(float(np.mean(util_dqn)), 3),
                    "popularity": round(float(np.mean(util_pop)), 3),
                    "oracle": round(float(np.mean(util_oracle)), 3),
                },
                "return": {k: round(v, 2) for k, v in returns.items()},
            }
        )
    )
    return 0


class _Oracle:
    """Myopic oracle on the simulated users' true utilities: all ten slots, or slot 0 with popularity's fill."""

    def __init__(self, env, popularity: np.ndarray, slot0_only: bool) -> None:
        from agents.sb3_dqn import fill_slates  # the Discrete view's own fill rule

        self.env, self.popularity, self.slot0_only, self.fill_slates = env, popularity, slot0_only, fill_slates

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        cands = np.asarray(obs["candidates"], dtype=np.int64)
        util = self.env.user_model.utilities(self.env.user_state, cands)
        if self.slot0_only:
            return self.fill_slates(util.argmax(1), 10, cands.shape[1], self.popularity[cands]), state
        return np.argsort(-util, axis=1, kind="stable")[:, :10], state


def ceiling(seeds: list[int], episodes: int) -> int:
    from baselines.popularity import Popularity
    from recsim_env.data.splits import leave_one_out
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv
    from recsim_env.evaluation.rollout import evaluate
    from recsim_env.fit.datasets import movielens_splits, movielens_user_model

    model, catalog = movielens_user_model(split="train")
    popularity = np.asarray(catalog.popularity, dtype=np.float64)
    pop = Popularity(slate_size=10).fit(leave_one_out(movielens_splits()[0]))
    out: dict[str, list[float]] = {"popularity": [], "slot-0 oracle + popularity fill": [], "myopic oracle": []}
    for seed in seeds:
        env = RecVectorEnv(model, catalog, EnvConfig(), num_envs=min(episodes, 512))
        for name, policy in (("popularity", pop), ("slot-0 oracle + popularity fill", _Oracle(env, popularity, True)),
                             ("myopic oracle", _Oracle(env, popularity, False))):
            out[name].append(
                round(float(evaluate(policy, env, n_episodes=episodes, seed=seed).per_seed().iloc[0]["return"]), 2)
            )
    print(json.dumps({"seeds": seeds, "episodes": episodes, "return": out,
                      "mean": {k: round(float(np.mean(v)), 2) for k, v in out.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
