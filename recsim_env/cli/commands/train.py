"""``recsim train``: train an RL agent (SB3 DQN, SlateQ, REINFORCE) against a registered simulator.

The agents live in the ``agents`` package, which depends on ``recsim_env``; this CLI entry is the one
place that reaches the other way, so it imports them inside the handler only.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from recsim_env.errors import ConfigError

logger = logging.getLogger(__name__)

AGENTS = ("sb3-dqn", "slateq", "reinforce")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train an RL agent against a simulator",
        description="Train an RL agent on the batched env; TensorBoard logs and an atomic checkpoint go to --out, "
                    "and --resume continues the run saved there (same counters, replay buffer and RNG streams).")
    parser.add_argument("--agent", required=True, choices=AGENTS, help="which agent")
    parser.add_argument("--env", default="RecSim/MovieLens100K-v0", help="registered env id (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200_000, help="user-steps to train (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the env, the agent and the run")
    parser.add_argument("--num-envs", type=int, default=64, help="users stepped together (default: %(default)s)")
    parser.add_argument("--slate-size", type=int, default=None, help="slate size (default: the env's)")
    parser.add_argument("--warm-start", metavar="PATH", help="baselines' embeddings .npz to start from")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/train/<agent>-seed<S>)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import torch

    from agents.factory import read_warm_start, train_agent
    from agents.training import TrainConfig

    torch.set_num_threads(1)
    for name in ("steps", "num_envs"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    out = Path(args.out or f"runs/train/{args.agent}-seed{args.seed}")
    options = {} if args.slate_size is None else {"slate_size": args.slate_size}
    env_id = args.env if ":" in args.env else f"recsim_env:{args.env}"
    try:
        env = gym.make_vec(env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point", **options)
    except gym.error.Error as exc:
        raise ConfigError(f"--env {args.env!r}: {exc}") from exc
    warm = read_warm_start(args.warm_start, env) if args.warm_start else None
    config = TrainConfig(total_steps=args.steps, log_interval=max(args.steps // 50, args.num_envs),
                         checkpoint_interval=max(args.steps // 5, 50_000), progress=args.progress)
    _, result = train_agent(args.agent, env, config, args.seed, out, args.resume, warm)
    last = next((row for row in reversed(result.curve) if "episode/return" in row), {})
    print(f"trained {args.agent} for {result.steps} user-steps; last mean episode return "
          f"{last.get('episode/return', float('nan')):.3f}; checkpoint {result.checkpoint}; "
          f"TensorBoard: tensorboard --logdir {out / 'tb'}")
    return 0
