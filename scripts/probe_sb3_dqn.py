"""Short-budget probe of SB3 DQN settings: train cold on one seed, report the greedy return beside random's.

Trains SB3 DQN (``agents.factory.build_agent``, so the benchmark's view and defaults) for ``--steps``
user-steps in ``synthetic`` (or ``ml100k-train``), then evaluates it, a uniformly random slate and (in
synthetic) the myopic oracle over the same ``--episodes`` users (common random numbers, seed 0).
``--set key=value`` overrides an agent argument (``fill``, ``credit`` or any ``DQN`` constructor argument;
values are read as Python literals). ``--profile`` prints where the training time went (cProfile).

    python scripts/probe_sb3_dqn.py --steps 48000 --set gamma=0.9 --set n_steps=3
"""

from __future__ import annotations

import argparse
import ast
import cProfile
import json
import pstats
import time

import numpy as np


class RandomSlates:
    """Uniformly random candidates, without replacement (a seeded stream)."""

    def __init__(self, slate_size: int, seed: int = 0) -> None:
        self.slate_size, self.rng = slate_size, np.random.default_rng(seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        n, n_candidates = np.shape(observation["candidates"])
        return np.argsort(self.rng.random((n, n_candidates)), axis=1)[:, : self.slate_size], state


def make_factory(sim: str, start_activity: str | None = None, no_click_leave: float | None = None):
    """``(num_envs -> RecVectorEnv, catalog)`` of ``sim``; the ML-100K simulator optionally with another start
    state or no-click leave probability (train and evaluation alike)."""
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv

    if sim == "synthetic":
        from recsim_env.users.synthetic import SyntheticUserModel

        model = SyntheticUserModel()
        catalog = model.catalog()
    else:
        from recsim_env.fit.datasets import movielens_user_model

        model, catalog = movielens_user_model(split="train")
        if start_activity is not None:
            model = model.with_start_activity(start_activity)
        if no_click_leave is not None:
            model = model.with_no_click_leave(no_click_leave)
    return (lambda n: RecVectorEnv(model, catalog, EnvConfig(), num_envs=n)), catalog


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", choices=("synthetic", "ml100k-train"), default="synthetic")
    p.add_argument("--steps", type=int, default=48_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--baselines", action="store_true", help="also evaluate random (and the oracle)")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)

    import torch

    from agents.factory import train_agent
    from agents.training import TrainConfig
    from recsim_env.benchmark.policies import OraclePolicy
    from recsim_env.evaluation.rollout import evaluate

    torch.set_num_threads(1)
    overrides = {key: ast.literal_eval(value) for key, value in (item.split("=", 1) for item in args.set)}
    make, _ = make_factory(args.sim)
    config = TrainConfig(total_steps=args.steps, log_interval=max(args.steps // 6, 1), checkpoint_interval=0,
                         progress=False)
    profiler = cProfile.Profile() if args.profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    policy, result = train_agent("sb3-dqn", make(64), config, seed=args.seed, agent_config=overrides)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - start
    row = {"set": overrides, "steps": args.steps, "seed": args.seed, "train_s": round(seconds, 1),
           "steps_per_s": round(args.steps / seconds), "curve": [round(c.get("episode/return", np.nan), 2)
                                                              for c in result.curve]}
    policies = {"sb3-dqn": policy}
    if args.baselines:
        policies["random"] = RandomSlates(10)
        if args.sim == "synthetic":
            policies["oracle"] = OraclePolicy(10)
    for name, pol in policies.items():
        env = make(args.episodes)
        if hasattr(pol, "bind_env"):
            pol.bind_env(env)
        summary = evaluate(pol, env, n_episodes=args.episodes, seed=0).summary().set_index("metric")
        row[name] = {m: round(float(summary.loc[m, "mean"]), 3) for m in ("return", "ctr", "session_length")}
        row[name]["ci"] = round(float(summary.loc["return", "ci_high"] - summary.loc["return", "mean"]), 2)
    print(json.dumps(row))
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
