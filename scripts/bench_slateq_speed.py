"""SlateQ time-to-quality in the synthetic simulator: env-steps/s and evaluated return per schedule.

Each seed trains every named schedule one after the other (so a pair shares the machine's load), then
evaluates it with common random numbers against random slates and the myopic oracle. One JSON line
per run, with the 1-min load average at its start and the training curve against wall-clock seconds.

    python scripts/bench_slateq_speed.py --steps 24000 --seeds 0,1,2 --schedules default,old [--episodes 200]
    python scripts/bench_slateq_speed.py --steps 200000 --seeds 5,6,7,8,9 --schedules default,wide
    python scripts/bench_slateq_speed.py --steps 200000 --seeds 10,11,12,13,14,15,16,17,18,19 --schedules u512,u512plain
    python scripts/bench_slateq_speed.py --learn-ms 256,512,1024   # CPU and wall ms of one gradient step
    python scripts/bench_slateq_speed.py --learn-ms 512 --threads 2 [--compile]   # wall ms, other set-ups
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

ENV_ID = "recsim_env:RecSim/Synthetic-v0"

SCHEDULES: dict[str, tuple[int, dict[str, Any]]] = {
    "default": (64, {}),
    "old": (64, {"batch_size": 256, "train_interval": 0, "target_update_interval": 250}),
    "fast": (256, {"train_interval": 1024, "batch_size": 512, "target_update_interval": 16}),
    "wide": (512, {"train_interval": 512, "updates_per_step": 4, "double_q": False, "click_interval": 4}),
    "u512": (512, {"train_interval": 512, "updates_per_step": 4}),
    "u512plain": (512, {"train_interval": 512, "updates_per_step": 4, "double_q": False}),
}
"""name -> (users stepped together, SlateQConfig fields). ``default``: today's defaults (a batch-512
step per 128 user-steps, 4 samples per user-step, the target copied every 125 steps). ``old``: the
defaults before issue #12 (a batch-256 step after every 64-user step, target every 250 steps).
``fast``: one batch-512 step per 1,024 user-steps (0.5 samples per user-step), target every 16 steps.
``wide``: 512 users per step and four batch-512 steps per round (the default's 4 samples per user-step and
gradient steps), the target network picking A* too (one target pass fewer), the click model stepped on
every fourth gradient step (BENCHMARKS.md: 1.5-1.7x the default's env-steps/s at 11 % less return over 15 seeds).
``u512`` / ``u512plain``: wide's 512 users and rounds alone, then with the plain-DQN target (where its return goes)."""


class RandomSlates:
    """Uniformly random distinct candidates (a seeded reference policy)."""

    def __init__(self, slate_size: int, seed: int) -> None:
        self.slate_size = slate_size
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        from agents.exploration import random_slates

        n_users, n_candidates = observation["candidates"].shape
        return random_slates(n_users, n_candidates, self.slate_size, self.rng), state


def make_env(num_envs: int) -> Any:
    import gymnasium as gym

    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")


def evaluated_return(policy: Any, seed: int, episodes: int) -> float:
    from recsim_env.evaluation.rollout import evaluate

    env = make_env(min(episodes, 256))
    if hasattr(policy, "bind_env"):
        policy.bind_env(env)
    return float(evaluate(policy, env, n_episodes=episodes, seed=seed).per_seed().iloc[0]["return"])


def train_schedule(name: str, seed: int, steps: int, episodes: int) -> dict[str, Any]:
    from bench_agents import with_wall_clock  # the sibling script (scripts/ is on sys.path when run)

    from agents.networks import ObservationSpec
    from agents.slateq import SlateQAgent, SlateQConfig
    from agents.training import TrainConfig, train

    num_envs, fields = SCHEDULES[name]
    env = make_env(num_envs)
    spec = ObservationSpec.from_space(env.single_observation_space)
    agent = SlateQAgent(spec, len(env.single_action_space.nvec), SlateQConfig(**fields), seed=seed)
    load = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    result = train(agent, env, TrainConfig(total_steps=steps, log_interval=max(steps // 10, num_envs),
                                           checkpoint_interval=0, progress=False), seed)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    curve = [(row["time/wall_s"], row.get("episode/return")) for row in with_wall_clock(result.curve)]
    return {"schedule": name, "seed": seed, "steps": result.steps, "wall_s": round(wall, 2),
            "steps_per_s": round(result.steps / wall),
            "cpu_s": round(cpu, 2), "steps_per_cpu_s": round(result.steps / cpu), "load": load,
            "gradient_steps": agent.n_updates,
            "return": round(evaluated_return(agent, 1000 + seed, episodes), 3),
            "curve_wall_s_return": [(round(sec, 2), None if ret is None else round(ret, 2)) for sec, ret in curve]}


def learn_ms(batch_sizes: list[int], repeats: int = 30, compile_nets: bool = False) -> None:
    """Median CPU and wall milliseconds of one ``learn()`` (click model + TD target + Q step) per batch
    size, on a replay filled by 60 steps of 64 synthetic users (the same data for every batch size).
    ``compile_nets``: ``torch.compile`` each network's state encoder and candidate scorer first (the
    seconds the first two steps take, compilation included, are printed as ``compile_s``)."""
    import torch

    from agents.networks import ObservationSpec
    from agents.replay import Transition
    from agents.slateq import SlateQAgent, SlateQConfig
    from agents.training import clicked_slots, final_observations
    from recsim_env.env.vector import merge_final_info

    env = make_env(64)
    spec = ObservationSpec.from_space(env.single_observation_space)
    for batch_size in batch_sizes:
        agent = SlateQAgent(spec, 10, SlateQConfig(batch_size=batch_size), seed=0)
        obs, _ = env.reset(seed=0)
        for _ in range(60):
            slate = agent.act(obs, explore=True)
            nxt, reward, terminated, truncated, info = env.step(slate)
            done = terminated | truncated
            info = merge_final_info(info, done)
            agent.observe(Transition(obs, slate, clicked_slots(info, 64), reward.astype(np.float32),
                                     final_observations(nxt, info, done), terminated, truncated))
            obs = nxt
        batch = agent.replay.sample(batch_size)
        compile_s = None
        if compile_nets:
            start = time.perf_counter()
            for net in (agent.q, agent.click, agent.q_target):
                net.encoder.compile(dynamic=False)
                net.item.compile(dynamic=False)
            for _ in range(2):
                agent.learn(batch)
            compile_s = round(time.perf_counter() - start, 1)
        cpu, wall = [], []
        for _ in range(repeats + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            agent.learn(batch)
            cpu.append(time.process_time() - cpu_start)
            wall.append(time.perf_counter() - start)
        print(json.dumps({"batch_size": batch_size, "learn_cpu_ms": round(1e3 * float(np.median(cpu[1:])), 2),
                          "learn_wall_ms": round(1e3 * float(np.median(wall[1:])), 2),
                          "threads": torch.get_num_threads(), "compile_s": compile_s,
                          "load": os.getloadavg()[0]}), flush=True)


def main(argv: list[str] | None = None) -> None:
    import torch

    from recsim_env.benchmark.policies import OraclePolicy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24_000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--schedules", default="default,old")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--learn-ms", default="", help="only time learn() at these batch sizes (e.g. 256,1024)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for --learn-ms (training runs: 1, set by agents.training)")
    parser.add_argument("--compile", action="store_true", help="with --learn-ms: torch.compile the networks first")
    parser.add_argument("--extra", default="{}", help='more schedules as JSON: {"name": [num_envs, {field: value}]}')
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.compile and not args.learn_ms:
        parser.error("--compile times one gradient step: give --learn-ms too")
    SCHEDULES.update({name: (envs, fields) for name, (envs, fields) in json.loads(args.extra).items()})
    torch.set_num_threads(args.threads)
    if args.learn_ms:
        return learn_ms([int(b) for b in args.learn_ms.split(",")], compile_nets=args.compile)
    for seed in (int(s) for s in args.seeds.split(",")):
        refs = {"random": evaluated_return(RandomSlates(10, seed), 1000 + seed, args.episodes),
                "oracle": evaluated_return(OraclePolicy(10), 1000 + seed, args.episodes)}
        print(json.dumps({"seed": seed, **{k: round(v, 3) for k, v in refs.items()}}), flush=True)
        for name in args.schedules.split(","):
            print(json.dumps(train_schedule(name, seed, args.steps, args.episodes)), flush=True)


if __name__ == "__main__":
    main()
