"""The rollout planner's settings, chosen in the synthetic simulator on a tuning seed the benchmark never uses.

First the fixed greedy policies the planner switches between (``true utility + w · item_quality``, one
per weight), then each named planner setting, all on the same users (common random numbers). One JSON
line per policy: mean return, session length, wall seconds, the 1-min load average at its start, and
for a planner the share of its decisions that took each candidate.

    python scripts/bench_planner.py --users 50 --seed 1000 --weights 0,1,2,3,4,5,7,10 \\
        --planners 'rollouts=4;horizon=100;weights=4:0:2:3:6' 'rollouts=4;horizon=50;weights=4:0:2:3:6'

``--benchmark-seeds N`` evaluates on the users of ``recsim benchmark --simulators synthetic --seeds N``'s
cells instead (their evaluation seeds; use ``--users`` equal to its ``--episodes``): one line per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

from recsim_env.benchmark.planner import PlannerConfig, RolloutPlanner, greedy_slates
from recsim_env.benchmark.tasks import evaluation_seed
from recsim_env.env.config import EnvConfig
from recsim_env.env.vector import RecVectorEnv
from recsim_env.evaluation.rollout import evaluate
from recsim_env.users.synthetic import SyntheticUserModel


class Greedy:
    """Greedy on the true utility plus ``weight`` times the item's quality (reads the true state)."""

    def __init__(self, env: RecVectorEnv, weight: float, slate_size: int) -> None:
        self.env, self.weight, self.slate_size = env, weight, slate_size

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        candidates = observation["candidates"]
        model = self.env.user_model
        scores = model.true_utilities(self.env.user_state, candidates) + self.weight * model.item_quality[candidates]
        return greedy_slates(scores, self.slate_size), state


class CountingPlanner(RolloutPlanner):
    """:class:`RolloutPlanner` that counts which candidate each decision took."""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        out = super().predict(observation, state, episode_start, deterministic)
        self.picks = getattr(self, "picks", np.zeros(self.config.n_candidates))
        self.picks += np.bincount(np.argmax(self.last_scores, axis=1), minlength=self.config.n_candidates)
        return out


def planner_config(text: str, seed: int) -> PlannerConfig:
    """``'rollouts=4;horizon=100;weights=4:0:2'`` -> :class:`PlannerConfig`."""
    fields: dict[str, Any] = {"seed": seed}
    for item in filter(None, text.split(";")):
        name, value = item.split("=")
        fields[name] = tuple(float(w) for w in value.split(":")) if name == "weights" else int(value)
    return PlannerConfig(**fields)


def measure(name: str, policy: Any, env: RecVectorEnv, users: int, seed: int) -> dict[str, Any]:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    episodes = evaluate(policy, env, users, seed=seed).episodes
    row = {"policy": name, "return": round(float(episodes["return"].mean()), 2),
           "session_length": round(float(episodes["session_length"].mean()), 2),
           "wall_s": round(time.perf_counter() - start, 1), "load": load}
    if hasattr(policy, "picks"):
        row["picks"] = np.round(policy.picks / policy.picks.sum(), 3).tolist()
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="users (episodes), all stepped at once")
    parser.add_argument("--seed", type=int, default=1000, help="evaluation seed (not one the benchmark uses)")
    parser.add_argument("--weights", default="0,1,2,3,4,5,7,10", help="greedy policies' quality weights")
    parser.add_argument("--planners", nargs="*", default=[], help="planner settings, 'field=value;...'")
    parser.add_argument("--benchmark-seeds", type=int, default=0, metavar="N",
                        help="evaluate on the benchmark's seeds 0..N-1 of synthetic instead of --seed")
    args = parser.parse_args(argv)
    model = SyntheticUserModel()
    env = RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=10, n_candidates=100), num_envs=args.users)
    seeds = ({seed: evaluation_seed(seed, "synthetic") for seed in range(args.benchmark_seeds)} if args.benchmark_seeds
             else {"tuning": args.seed})
    for label, seed in seeds.items():
        for weight in (float(w) for w in args.weights.split(",") if w):
            row = measure(f"greedy w={weight:g}", Greedy(env, weight, 10), env, args.users, seed)
            print(json.dumps({"seed": label, **row}), flush=True)
        for text in args.planners:
            planner = CountingPlanner(10, planner_config(text, seed=label if args.benchmark_seeds else 0)).bind_env(env)
            print(json.dumps({"seed": label, **measure(f"planner {text}", planner, env, args.users, seed)}), flush=True)


if __name__ == "__main__":
    main()
