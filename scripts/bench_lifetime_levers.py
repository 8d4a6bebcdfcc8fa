"""What the fitted lifetime simulators let a slate win beyond clicks: greedy on the true model's click
utility plus ``w`` times the user's expected rating, over the benchmark's lifetime users.

The fitted return model shortens the gap after a session of higher mean rating (and more genre diversity),
so a policy that knows each user's true utilities and expected ratings can trade a click now for a sooner
return. Each weight ``w`` is one fixed policy (``w = 0`` is the benchmark's myopic ``oracle``, reproduced
to the digit as a check); the weight is chosen on ``ml100k-train-lifetime`` only and then evaluated in
``ml100k-later-lifetime``. Users are the benchmark's (evaluation seed = the seed's, 200 lifetimes), so
with ``--paired-with RUN`` (a ``recsim benchmark`` run dir over the same simulators and seeds) each weight
is paired by seed with that run's policies. One JSON line per (simulator, weight):

    python scripts/bench_lifetime_levers.py --weights 0,0.5,1,2,4 --seeds 5 --paired-with /tmp/lt14/d

Figures: BENCHMARKS.md, "SlateQ trained in the lifetime simulators".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsim_env.benchmark.config import BenchmarkConfig
from recsim_env.benchmark.planner import greedy_slates
from recsim_env.benchmark.policies import OraclePolicy
from recsim_env.benchmark.registry import BuiltPolicy
from recsim_env.benchmark.tasks import evaluate_on, load_context
from recsim_env.evaluation.metrics import mean_confidence_interval

SIMULATORS = ("ml100k-train-lifetime", "ml100k-later-lifetime")


class RatingLever(OraclePolicy):
    """Greedy on ``true utility + weight · expected rating``: the oracle's view (the users' hidden state) with the
    return model's rating lever added; ``weight = 0`` is :class:`OraclePolicy` itself."""

    def __init__(self, slate_size: int, weight: float) -> None:
        super().__init__(slate_size)
        self.weight = weight

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        if self.weight == 0 or self.env is None:
            return super().predict(observation, state, episode_start, deterministic)
        candidates = np.asarray(observation["candidates"], dtype=np.int64)
        model, users = self.env.user_model, self.env.user_state
        scores = model.true_utilities(users, candidates) + np.float32(self.weight) * model.expected_rating(users,
                                                                                                           candidates)
        return greedy_slates(scores, self.slate_size), state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="0,0.5,1,2,4", help="comma-separated weights on the expected rating")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--paired-with", type=Path, default=None,
                        help="a benchmark run dir whose episodes.csv has the same simulators, seeds and episodes")
    args = parser.parse_args()
    try:
        weights = [float(w) for w in args.weights.split(",")]
    except ValueError:
        parser.error(f"--weights must be comma-separated numbers, got {args.weights!r}")
    if args.seeds < 2:
        parser.error(f"--seeds must be >= 2 (an interval over seeds), got {args.seeds}")
    if args.paired_with is not None and not (args.paired_with / "episodes.csv").is_file():
        parser.error(f"--paired-with {args.paired_with}: no episodes.csv there (give a recsim benchmark run dir)")
    config = BenchmarkConfig.build(quick=True, seeds=args.seeds, episodes=args.episodes,
                                   simulators=SIMULATORS, policies=("oracle",))
    loaded = load_context(config, "ml-100k-lifetime", list(SIMULATORS))
    others = None
    if args.paired_with is not None:
        episodes = pd.read_csv(args.paired_with / "episodes.csv")
        others = episodes.groupby(["simulator", "policy", "seed"])["return"].mean()
    for name in SIMULATORS:
        for weight in weights:
            start = time.perf_counter()
            per_seed = np.array([evaluate_on(BuiltPolicy(RatingLever(config.slate_size, weight)),
                                             loaded.simulators[name], config, seed).episodes["return"].mean()
                                 for seed in range(args.seeds)])
            line: dict[str, Any] = {"simulator": name, "weight": weight, "per_seed": per_seed.round(3).tolist(),
                                    "lifetime_clicks": mean_confidence_interval(per_seed),
                                    "wall_s": round(time.perf_counter() - start, 1)}
            if others is not None:
                for policy in others.loc[name].index.get_level_values(0).unique():
                    theirs = others.loc[(name, policy)].reindex(range(args.seeds)).to_numpy()
                    if np.isnan(theirs).any():
                        raise SystemExit(f"--paired-with {args.paired_with}: {policy} in {name} lacks seeds "
                                         f"{np.flatnonzero(np.isnan(theirs)).tolist()} of the {args.seeds} asked for")
                    line[f"minus_{policy}"] = mean_confidence_interval(per_seed - theirs)
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
