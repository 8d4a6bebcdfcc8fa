"""Name -> builder registries of the policies and simulators that ``recsim benchmark`` knows.

A new policy plugs in with :func:`register_policy` (a builder ``TrainingContext -> BuiltPolicy``), a
new simulator with :func:`register_simulator`; configs, the CLI and the report pick them up by name.

Simulators belong to a *training context*: the data and env the policies evaluated on them train on.
``ml100k-train`` and ``ml100k-later`` share the ``ml-100k`` context (policies train on the earlier
part of ML-100K and in the simulator fitted on it; the later-split simulator is one they never saw);
``synthetic`` is its own context (its generated log and env). The lifetime simulators have contexts
of their own, ``ml-100k-lifetime`` and ``synthetic-lifetime``: the same data as ``ml-100k`` and
``synthetic``, but their ``train_simulator`` is a lifetime simulator, so the RL agents evaluated over
lifetimes also trained over lifetimes (:mod:`recsim_env.benchmark.simulators`).

This module is where the library meets ``baselines`` and ``agents``: the default builders live in
:mod:`recsim_env.benchmark.policies` (and :mod:`recsim_env.benchmark.simulators`) and import them only
when called, so ``recsim_env`` keeps no
import-time dependency on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Simulator:
    """A simulator ready to evaluate in: an env factory and what the report needs about it."""

    name: str
    make_env: Callable[[int], Any]
    """``num_envs -> VectorEnv`` (autoreset SAME_STEP)."""
    catalog: ItemCatalog
    logged_session_lengths: np.ndarray | None = None
    """Session lengths of the log the simulator was fitted on (for the simulated-vs-logged plot)."""


@dataclass(frozen=True, eq=False)
class TrainingContext:
    """What a policy builder gets: the data and the env to train on, budgets, a seed, a folder."""

    name: str
    log: InteractionLog
    """Training interactions for the supervised baselines."""
    split: Any
    """Leave-one-out :class:`~recsim_env.data.splits.Split` of ``log`` (validation, offline protocol)."""
    simulator: Simulator
    """The simulator the RL agents train in."""
    slate_size: int
    budgets: Any
    """:class:`~recsim_env.benchmark.config.Budgets`."""
    seed: int
    out_dir: Path
    """Where the policy may write TensorBoard logs and checkpoints."""
    progress: bool = True
    warm_start: str = ""
    """A baseline policy name whose embeddings start the RL agents (``""``: cold)."""
    shared_dir: Path | None = None
    """Where the policies of this context may share what they derive alike (the warm-start
    embeddings, fitted once per seed for all agents); ``None``: each uses its ``out_dir``."""


@dataclass(eq=False)
class BuiltPolicy:
    """A trained policy and what it leaves for the report."""

    policy: Any
    """Anything with SB3-style ``predict``; an optional ``bind_env(vector_env)`` is called before each evaluation."""
    curve: pd.DataFrame | None = None
    """Learning curve: a ``step`` column and metric columns (e.g. ``episode/return``)."""
    scorer: Any = None
    """An object with ``score(users, items)`` for the offline protocol (supervised policies only)."""


@dataclass(frozen=True)
class PolicySpec:
    name: str
    build: Callable[[TrainingContext], BuiltPolicy]
    kind: str
    """``"baseline"``, ``"agent"``, ``"oracle"`` (reads the true utilities) or ``"planner"`` (plans over the true
    model in a copy of a session simulator)."""
    description: str = ""
    default: bool = True
    """Whether a run that names no policies runs it (``False`` keeps a costly reference out of ``--quick``)."""


@dataclass(frozen=True, eq=False)
class ContextData:
    """A loaded training context: the policies' training data and what its simulators are built from."""

    log: InteractionLog
    """Training interactions."""
    split: Any
    """Leave-one-out :class:`~recsim_env.data.splits.Split` of :attr:`log`."""
    catalog: ItemCatalog
    resources: dict[str, Any] = field(default_factory=dict)
    """Whatever the context's simulator builders need (other logs, fitted user models)."""


@dataclass(frozen=True)
class SimulatorSpec:
    name: str
    context: str
    """Training context name (simulators of one context share trained policies)."""
    build: Callable[[ContextData, Any], Simulator]
    """``(context data, BenchmarkConfig) -> Simulator``."""
    has_oracle: bool = False
    """Whether the ``oracle`` policy can read its users' true utilities."""
    lifetime: bool = False
    """Whether an episode is a user's sessions over a horizon."""
    planner: Any = None
    """The ``planner``'s :class:`~recsim_env.benchmark.planner.PlannerConfig` for this simulator's users (its
    item term and weights; the benchmark sets its seed), or ``None``: no planner runs here. A planner built in
    a context keeps the settings of the context's training simulator wherever it is evaluated."""
    description: str = ""
    default: bool = True
    """Whether a config that names no simulators runs it (the lifetime simulators are opt-in)."""

    @property
    def has_planner(self) -> bool:
        """Whether the ``planner`` runs here (:attr:`planner` is set)."""
        return self.planner is not None


@dataclass(frozen=True)
class ContextSpec:
    name: str
    load: Callable[[Any], ContextData]
    """``BenchmarkConfig -> ContextData``."""
    train_simulator: str
    """The simulator the RL agents of this context train in (``TrainingContext.simulator``): a session
    simulator for the session contexts, a lifetime one for the lifetime contexts."""
    description: str = ""


POLICIES: dict[str, PolicySpec] = {}
SIMULATORS: dict[str, SimulatorSpec] = {}
CONTEXTS: dict[str, ContextSpec] = {}


def register_policy(spec: PolicySpec) -> None:
    POLICIES[spec.name] = spec


def register_simulator(spec: SimulatorSpec) -> None:
    if spec.context not in CONTEXTS:
        raise ConfigError(f"simulator {spec.name!r} names unknown training context {spec.context!r}; "
                          f"known: {', '.join(CONTEXTS)}")
    SIMULATORS[spec.name] = spec


def register_context(spec: ContextSpec) -> None:
    CONTEXTS[spec.name] = spec


def policy_spec(name: str) -> PolicySpec:
    if name not in POLICIES:
        raise ConfigError(f"unknown policy {name!r}; valid: {', '.join(POLICIES)}")
    return POLICIES[name]


def simulator_spec(name: str) -> SimulatorSpec:
    if name not in SIMULATORS:
        raise ConfigError(f"unknown simulator {name!r}; valid: {', '.join(SIMULATORS)}")
    return SIMULATORS[name]
