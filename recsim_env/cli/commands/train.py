"""``recsim train``: train an RL agent (SB3 DQN, SlateQ, REINFORCE) against a simulator.

``--env`` names a registered Gymnasium id (``RecSim/Synthetic-v0``, ``mypkg:MyEnv-v0``) or a factory of
one's own, ``module:function``: the function is called with no arguments and returns a vector env
(used as it is) or a :class:`~recsim_env.protocols.UserModel` (batched into ``--num-envs`` users over
its own ``catalog()`` when it has one, with ``--slate-size`` and at most the model's ``n_items``
candidates; for other env settings return a vector env).

The agents live in the ``agents`` package, which depends on ``recsim_env``; this CLI entry is the one
place that reaches the other way, so it imports them inside the handler only.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path
from typing import Any, Callable

from recsim_env.errors import ConfigError

logger = logging.getLogger(__name__)

AGENTS = ("sb3-dqn", "slateq", "reinforce")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train an RL agent against a simulator",
        description="Train an RL agent on the batched env; TensorBoard logs and an atomic checkpoint go to --out, "
                    "and --resume continues the run saved there (same counters, replay buffer and RNG streams).")
    parser.add_argument("--agent", required=True, choices=AGENTS, help="which agent")
    parser.add_argument("--env", default="RecSim/MovieLens100K-v0",
                        help="registered env id, or module:function returning a vector env or a UserModel "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200_000, help="user-steps to train (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the env, the agent and the run")
    parser.add_argument("--num-envs", type=int, default=64, help="users stepped together (default: %(default)s)")
    parser.add_argument("--slate-size", type=int, default=None, help="slate size (default: the env's)")
    parser.add_argument("--warm-start", metavar="PATH", help="baselines' embeddings .npz to start from")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/train/<agent>-seed<S>)")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                        help="user-steps between checkpoints (default: a fifth of --steps, at least 50000)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="fields",
                        help="a field of the agent's config (SlateQConfig, ReinforceConfig), e.g. --set gamma=0.95 "
                             "--set double_q=false; repeat for more (a resumed run needs the same ones)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from agents.factory import CONFIGS, config_fields, read_warm_start, train_agent
    from agents.training import TrainConfig

    torch.set_num_threads(1)
    for name in ("steps", "num_envs", "checkpoint_every"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    fields = config_fields(args.agent, args.fields) if args.fields else None  # refuses sb3-dqn, naming it
    agent_config = CONFIGS[args.agent](**fields) if fields is not None else None
    out = Path(args.out or f"runs/train/{args.agent}-seed{args.seed}")
    env = make_train_env(args.env, args.num_envs, args.slate_size)
    warm = read_warm_start(args.warm_start, env) if args.warm_start else None
    config = TrainConfig(total_steps=args.steps, log_interval=max(args.steps // 50, args.num_envs),
                         checkpoint_interval=args.checkpoint_every or max(args.steps // 5, 50_000),
                         progress=args.progress)
    _, result = train_agent(args.agent, env, config, args.seed, out, args.resume, warm, agent_config)
    last = next((row for row in reversed(result.curve) if "episode/return" in row), {})
    print(f"trained {args.agent} for {result.steps} user-steps; last mean episode return "
          f"{last.get('episode/return', float('nan')):.3f}; checkpoint {result.checkpoint}; "
          f"TensorBoard: tensorboard --logdir {out / 'tb'}")
    return 0


def make_train_env(name: str, num_envs: int, slate_size: int | None) -> Any:
    """The batched env ``--env`` names: a factory ``module:function`` of one's own, else a registered id."""
    import gymnasium as gym

    factory = _find_factory(name)
    if factory is not None:
        return _env_from_factory(name, factory(), num_envs, slate_size)
    options = {} if slate_size is None else {"slate_size": slate_size}
    env_id = name if ":" in name else f"recsim_env:{name}"
    try:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **options)
    except gym.error.Error as exc:
        raise ConfigError(f"--env {name!r}: {exc}") from exc


def _find_factory(name: str) -> Callable[[], Any] | None:
    """The function ``module:function`` names, wrapped so that a failing call is a ConfigError; None for a
    Gymnasium id (no ``:``, or a module whose attribute of that name does not exist: ``pkg:Env-v0``)."""
    if ":" not in name:
        return None
    module_name, attribute = name.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing someone's module, not only ImportError
        raise ConfigError(f"--env {name!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    function = getattr(module, attribute, None) if attribute.isidentifier() else None
    if function is None:
        return None
    if not callable(function):
        raise ConfigError(f"--env {name!r}: {module_name}.{attribute} is a {type(function).__name__}, not a "
                          f"function returning a vector env or a UserModel")

    def call() -> Any:
        try:
            return function()
        except Exception as exc:  # the user's factory: report which one failed, not a traceback
            raise ConfigError(f"--env {name!r}: calling {module_name}.{attribute}() failed: "
                              f"{type(exc).__name__}: {exc}") from exc

    return call


def _env_from_factory(name: str, made: Any, num_envs: int, slate_size: int | None) -> Any:
    """A factory's vector env as it is (a differing ``--slate-size`` is an error), or its UserModel batched."""
    from gymnasium.vector import VectorEnv

    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv
    from recsim_env.protocols import UserModel

    if isinstance(made, VectorEnv):
        have = len(made.single_action_space.nvec) if hasattr(made.single_action_space, "nvec") else None
        if slate_size is not None and have != slate_size:
            raise ConfigError(f"--env {name!r} returned an env with slate size {have}, but --slate-size is "
                              f"{slate_size}; drop --slate-size or build the env with it")
        return made
    if not isinstance(made, UserModel):
        raise ConfigError(f"--env {name!r} returned a {type(made).__name__}; it must return a vector env "
                          f"(e.g. RecVectorEnv) or a UserModel")
    catalog = made.catalog() if callable(getattr(made, "catalog", None)) else None
    # The default candidate count may exceed a small model's items (the README's MyUser has 50): all of
    # them are candidates then. Other settings: return a vector env built with them.
    options: dict[str, Any] = {"n_candidates": min(EnvConfig().n_candidates, int(made.n_items))}
    if slate_size is not None:
        options["slate_size"] = slate_size
    return RecVectorEnv(made, catalog, EnvConfig(**options), num_envs=num_envs)
