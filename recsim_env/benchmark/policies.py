"""The default policies of ``recsim benchmark``: builders that train each one on a training context.

Supervised baselines fit on the context's leave-one-out split (training part; the validation item
drives early stopping) and act myopically: they rank each step's candidates. RL agents train in the
context's simulator for ``budgets.steps_for(name)`` user-steps. ``baselines`` and ``agents`` are imported
inside the builders, never at import time (``recsim_env`` must not depend on them to load).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from recsim_env.benchmark.registry import (
    BuiltPolicy,
    PolicySpec,
    TrainingContext,
    register_policy,
    simulator_spec,
)
from recsim_env.errors import ConfigError


def _curve(history: list[dict[str, float]] | None, step_key: str) -> pd.DataFrame | None:
    if not history:
        return None
    frame = pd.DataFrame(history)
    if step_key in frame.columns and step_key != "step":
        frame = frame.rename(columns={step_key: "step"})
    if "step" not in frame.columns:
        frame.insert(0, "step", np.arange(1, len(frame) + 1))
    return frame


def _fit_scoring(model: Any, ctx: TrainingContext) -> BuiltPolicy:
    model.fit(ctx.split)
    report = getattr(model, "report", None)
    return BuiltPolicy(model, _curve(getattr(report, "history", None), "epoch"), scorer=model)


BASELINE_MODELS = {"random": "random", "popularity": "popularity", "item-knn": "itemknn", "mf-bpr": "bpr-mf",
                   "neumf": "neumf", "lightgcn": "lightgcn", "content": "content"}
"""Benchmark policy name -> :data:`baselines.recipes.MODELS` name (the tuned recipe of each baseline)."""


def _baseline(name: str):
    """Builder of a baseline with its tuned recipe, epochs capped by ``budgets.epochs``."""

    def build(ctx: TrainingContext) -> BuiltPolicy:
        from baselines.recipes import build_model

        model = build_model(
            BASELINE_MODELS[name], seed=ctx.seed, progress=ctx.progress, log_dir=str(ctx.out_dir / "tb")
        )
        model.slate_size = ctx.slate_size
        if hasattr(model, "train_config"):  # torch models: the budget caps the tuned epoch count
            model.train_config = replace(model.train_config, epochs=min(model.train_config.epochs, ctx.budgets.epochs))
        return _fit_scoring(model, ctx)

    build.__name__ = f"build_{name.replace('-', '_')}"
    return build


def _agent_train_config(ctx: TrainingContext, name: str) -> Any:
    from agents.training import TrainConfig

    steps = ctx.budgets.steps_for(name)
    return TrainConfig(total_steps=steps, log_interval=max(steps // 10, 1), checkpoint_interval=0,
                       progress=ctx.progress)


def agent_builder(name: str, agent_config: Any = None) -> Callable[[TrainingContext], BuiltPolicy]:
    """Train agent ``name`` through :func:`agents.factory.train_agent`, the path ``recsim train`` takes,
    so the benchmark acts with exactly what that trains (e.g. SB3 DQN's slot fill). ``agent_config``
    (e.g. a :class:`agents.slateq.SlateQConfig`; ``None``: the agent's defaults) lets a variant be
    registered under another policy name; it trains for ``name``'s budget."""

    def build(ctx: TrainingContext) -> BuiltPolicy:
        from agents.factory import read_warm_start, train_agent

        env = ctx.simulator.make_env(ctx.budgets.train_envs)
        # A context's log may hold some of its simulator's users only (the synthetic one): items then.
        warm = (
            read_warm_start(_export_warm_start(ctx), env, items_only_if_users_differ=True) if ctx.warm_start else None
        )
        policy, result = train_agent(name, env, _agent_train_config(ctx, name), ctx.seed, out_dir=ctx.out_dir,
                                     warm_start=warm, agent_config=agent_config)
        return BuiltPolicy(policy, _curve(result.curve, "step"))

    return build


def _export_warm_start(ctx: TrainingContext) -> Any:
    """The warm-start baseline's embeddings file: fitted (its benchmark recipe and budget, the agent's
    seed) on the context's split once per seed, in ``ctx.shared_dir``, and reused by the other agents;
    written under a temporary name and renamed, so an interrupted fit never leaves a file to reuse."""
    import os

    from baselines.embeddings import export_embeddings

    folder = ctx.out_dir if ctx.shared_dir is None else ctx.shared_dir / f"seed-{ctx.seed}"
    path = folder / f"warm_start_{ctx.warm_start}.npz"
    if not path.exists():
        built = _baseline(ctx.warm_start)(replace(ctx, out_dir=folder / f"warm-start-{ctx.warm_start}"))
        tmp = export_embeddings(built.policy, ctx.log, folder / f".warm_start_{ctx.warm_start}.tmp.npz")
        os.replace(tmp, path)
    return path


build_slateq, build_reinforce, build_sb3_dqn = (agent_builder(n) for n in ("slateq", "reinforce", "sb3-dqn"))


def build_oracle(ctx: TrainingContext) -> BuiltPolicy:
    return BuiltPolicy(OraclePolicy(ctx.slate_size))


def build_planner(ctx: TrainingContext) -> BuiltPolicy:
    """The rollout planner over the true model (:mod:`~recsim_env.benchmark.planner`) with the settings of the
    context's training simulator (:attr:`~recsim_env.benchmark.registry.SimulatorSpec.planner`), seeded by
    ``ctx.seed``."""
    from recsim_env.benchmark.planner import RolloutPlanner

    settings = simulator_spec(ctx.simulator.name).planner
    if settings is None:
        raise ConfigError(f"the planner has no settings for {ctx.simulator.name!r}, the simulator it is built in")
    return BuiltPolicy(RolloutPlanner(ctx.slate_size, replace(settings, seed=ctx.seed)))


class OraclePolicy:
    """Greedy on the users' true utilities: shows the ``slate_size`` candidates the user values most.

    It reads the simulated users' hidden state, which no real policy can, so it is an upper
    reference for a myopic policy (not the long-term optimum). :meth:`bind_env` attaches it to the
    vector env whose users it reads.
    """

    def __init__(self, slate_size: int) -> None:
        self.slate_size = slate_size
        self.env: Any = None

    def bind_env(self, env: Any) -> "OraclePolicy":
        self.env = env.unwrapped if hasattr(env, "unwrapped") else env
        return self

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        if self.env is None:
            raise ConfigError("OraclePolicy needs bind_env(vector_env) before predict")
        cands = np.asarray(observation["candidates"], dtype=np.int64)
        # The users' hidden state (the env's documented `user_state`): only an oracle may read it.
        utilities = self.env.user_model.true_utilities(self.env.user_state, cands)
        top = np.argsort(-utilities, axis=1, kind="stable")[:, : self.slate_size]
        return top.astype(np.int64), state


for _spec in (
    PolicySpec("random", _baseline("random"), "baseline", "uniformly random candidates"),
    PolicySpec("popularity", _baseline("popularity"), "baseline", "most-consumed candidates first"),
    PolicySpec("item-knn", _baseline("item-knn"), "baseline", "cosine item-KNN over the user's training items"),
    PolicySpec("mf-bpr", _baseline("mf-bpr"), "baseline", "matrix factorisation with BPR loss"),
    PolicySpec("neumf", _baseline("neumf"), "baseline", "NeuMF (He et al. 2017), greedy on its scores"),
    PolicySpec("lightgcn", _baseline("lightgcn"), "baseline", "LightGCN (He et al. 2020), greedy on its scores"),
    PolicySpec("content", _baseline("content"), "baseline", "content model over item text and genres"),
    PolicySpec(
        "sb3-dqn", build_sb3_dqn, "agent", "Stable-Baselines3 DQN: its pick in slot 0, its next picks by Q after"
    ),
    PolicySpec("slateq", build_slateq, "agent", "SlateQ (Ie et al. 2019), double DQN per item"),
    PolicySpec("reinforce", build_reinforce, "agent", "top-K off-policy-corrected REINFORCE (Chen et al. 2019)"),
    PolicySpec(
        "oracle",
        build_oracle,
        "oracle",
        "greedy on the true utilities: the CTR ceiling of a myopic policy, not a return bound",
    ),
    PolicySpec(
        "planner",
        build_planner,
        "planner",
        "rollouts of the true model from the true user state: a long-horizon reference (minutes per cell; "
        "run it by name)",
        default=False,
    ),
):
    register_policy(_spec)
