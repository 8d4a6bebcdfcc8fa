"""SlateQ before and after a change meant to keep the math: both agents trained side by side in one process.

The other checkout's ``agents/slateq.py`` is loaded beside this one's (everything it imports is this
checkout's), both train on their own synthetic env from one seed, and the loop alternates chunks of
env steps between them, so both see the same load on a shared machine (separately launched runs of
the same command differ by 10-15 % here, more than the change measured). Prints one JSON line: CPU and
wall seconds of each agent's steps (acting, env, learning; no evaluation) and whether their weights
are still bit for bit the same at the end.

    git archive <commit> | tar -x -C /tmp/base
    python scripts/bench_slateq_same_math.py --base /tmp/base --steps 200000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch


def load_slateq(checkout: Path) -> ModuleType:
    """``agents/slateq.py`` of another checkout, as a module of its own name."""
    spec = importlib.util.spec_from_file_location("base_slateq", checkout / "agents" / "slateq.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


class Run:
    """One agent on its own env, advanced a chunk of batched env steps at a time as ``train`` does."""

    def __init__(self, module: ModuleType, seed: int, total: int) -> None:
        from bench_slateq_speed import make_env  # the sibling script (scripts/ is on sys.path when run)

        from agents.networks import ObservationSpec

        self.env, self.total = make_env(64), total
        spec = ObservationSpec.from_space(self.env.single_observation_space)
        self.agent = module.SlateQAgent(spec, len(self.env.single_action_space.nvec), module.SlateQConfig(),
                                        seed=seed)
        self.obs, _ = self.env.reset(seed=int(np.random.SeedSequence([seed, 0]).generate_state(1)[0]))
        self.step, self.cpu, self.wall = 0, 0.0, 0.0

    def advance(self, env_steps: int) -> None:
        from agents.replay import Transition
        from agents.training import clicked_slots, final_observations
        from recsim_env.env.vector import merge_final_info

        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(env_steps):
            if self.step >= self.total:
                break
            slate = self.agent.act(self.obs, explore=True)
            nxt, reward, terminated, truncated, info = self.env.step(slate)
            done = np.logical_or(terminated, truncated)
            info = merge_final_info(info, done)
            n = len(reward)
            self.agent.observe(Transition(self.obs, slate, clicked_slots(info, n), np.asarray(reward, np.float32),
                                          final_observations(nxt, info, done), np.asarray(terminated),
                                          np.asarray(truncated)))
            self.obs, self.step = nxt, self.step + n
            self.agent.update(self.step / self.total)
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - wall

    def figures(self) -> dict[str, Any]:
        return {"cpu_s": round(self.cpu, 2), "wall_s": round(self.wall, 2),
                "steps_per_cpu_s": round(self.step / self.cpu), "steps_per_s": round(self.step / self.wall),
                "gradient_steps": self.agent.n_updates}


def same_weights(a: Any, b: Any) -> bool:
    return all(torch.equal(x, y) for net in ("q", "q_target", "click")
               for x, y in zip(getattr(a, net).state_dict().values(), getattr(b, net).state_dict().values()))


def main(argv: list[str] | None = None) -> None:
    from agents import slateq

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="root of the checkout to compare against")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=8, help="batched env steps per turn")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    runs = {"base": Run(load_slateq(args.base), args.seed, args.steps), "this": Run(slateq, args.seed, args.steps)}
    turn = 0
    while any(run.step < args.steps for run in runs.values()):
        for name in ("base", "this") if turn % 2 == 0 else ("this", "base"):
            runs[name].advance(args.chunk)
        turn += 1
    print(json.dumps({"steps": args.steps, "seed": args.seed, "load": os.getloadavg()[0],
                      **{name: run.figures() for name, run in runs.items()},
                      "cpu_ratio_this_over_base": round(runs["this"].cpu / runs["base"].cpu, 3),
                      "weights_identical": same_weights(runs["base"].agent, runs["this"].agent)}), flush=True)


if __name__ == "__main__":
    main()
