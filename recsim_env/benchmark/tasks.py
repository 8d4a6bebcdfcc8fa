"""The benchmark's unit of work, and the driver loop that hands the units to an executor.

A :class:`TrainingTask` is one policy trained on one training context with one training seed, then
evaluated on the unfinished cells (simulator, seed) that need that training. Why this grain:

- Common random numbers hold wherever a cell runs: its evaluation seed depends on (seed, simulator)
  only (:func:`evaluation_seed`), and each task builds its own envs.
- A task evaluates its policy on its cells in the order the sequential run always used (seed, then
  simulator), so a policy that keeps state between evaluations meets them in the same order under any
  executor; with ``retrain_per_seed`` off one task covers every seed, as its one training does.
- The RL agents of one (context, training seed) share a warm start fitted once into the context's
  shared folder (``TrainingContext.shared_dir``). The first of them runs alone; once it succeeded, the
  files it left there travel with the others, which install them before training (on workers of
  other machines too), so the fit happens once per group and never twice at the same time.
- Contexts (ML-100K's fitted simulators, the synthetic log) are loaded once per process: the driver
  loads each first, so the fitted models are in the cache directory before any worker reads them, and
  a worker keeps what it loaded for its next tasks (:func:`loaded_context`).

A worker on this machine writes each cell into the run folder as it finishes (atomically,
:mod:`~recsim_env.benchmark.cells`), so a killed worker or Ctrl-C loses only the cell in flight. A
worker of a Ray cluster records its writes instead (:class:`CellRecorder`) and the driver replays
them when the task is done: the nodes need no file system in common, and a lost task loses its
cells. A task that fails is retried once, then named in a :class:`~recsim_env.errors.TasksFailedError` at the end
while the other tasks go on.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsim_env.benchmark import registry
from recsim_env.benchmark.cells import CellStore, atomic_write_bytes
from recsim_env.benchmark.config import BenchmarkConfig
from recsim_env.benchmark.defaults import CONTEXTS, policy_spec, simulator_spec
from recsim_env.benchmark.executors import Executor
from recsim_env.benchmark.registry import (
    BuiltPolicy,
    ContextData,
    ContextSpec,
    PolicySpec,
    Simulator,
    SimulatorSpec,
    TrainingContext,
)
from recsim_env.evaluation.rollout import EpisodeStats, evaluate

logger = logging.getLogger(__name__)

ATTEMPTS = 2
"""Tries per task: a failing task is retried once, then reported."""


def evaluation_seed(seed: int, simulator: str) -> int:
    """The evaluation seed of (seed, simulator): the same for every policy (common random numbers)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(simulator.encode())]).generate_state(1)[0])


def contexts_of(config: BenchmarkConfig) -> dict[str, list[str]]:
    """Training context -> the config's simulators in it, in config order."""
    contexts: dict[str, list[str]] = {}
    for sim in config.simulators:
        contexts.setdefault(simulator_spec(sim).context, []).append(sim)
    return contexts


def runs_on(policy: str, simulator: str) -> bool:
    """Whether the (policy, simulator) cell exists: the oracle only where the simulator has one, the planner
    only where the simulator gives it settings (``has_planner``: a true model with the planner's item term)."""
    kind, spec = policy_spec(policy).kind, simulator_spec(simulator)
    if kind == "planner":
        return spec.has_planner
    return kind != "oracle" or spec.has_oracle


# ---------------------------------------------------------------- loading, training, one cell
@dataclass(frozen=True, eq=False)
class LoadedContext:
    """A training context with its simulators built."""

    name: str
    data: ContextData
    simulators: dict[str, Simulator]
    train_simulator: Simulator


def load_context(config: BenchmarkConfig, context: str, sims: list[str]) -> LoadedContext:
    """Load ``context`` (fetch, fit: cached by the builders) and build its simulators ``sims``."""
    spec = CONTEXTS[context]
    logger.info("preparing training context %s", context)
    data = spec.load(config)
    simulators = {name: simulator_spec(name).build(data, config) for name in sims}
    train_sim = simulators.get(spec.train_simulator) or simulator_spec(spec.train_simulator).build(data, config)
    return LoadedContext(context, data, simulators, train_sim)


_LOADED: dict[str, tuple[BenchmarkConfig, LoadedContext]] = {}
"""This process's loaded contexts, one per context name (the latest config's)."""


def loaded_context(config: BenchmarkConfig, context: str) -> LoadedContext:
    """``context`` with all of ``config``'s simulators in it, loaded once per process and config."""
    cached = _LOADED.get(context)
    if cached is None or cached[0] != config:
        _LOADED[context] = (config, load_context(config, context, contexts_of(config)[context]))
    return _LOADED[context][1]


def forget_contexts() -> None:
    """Drop this process's loaded contexts (the driver, once a run is over)."""
    _LOADED.clear()


def train_policy(config: BenchmarkConfig, loaded: LoadedContext, policy: str, seed: int,
                 progress: bool = True) -> tuple[BuiltPolicy, TrainingContext]:
    """Build (train) ``policy`` on the context's data / training simulator with ``seed``."""
    ctx = TrainingContext(loaded.name, loaded.data.log, loaded.data.split, loaded.train_simulator, config.slate_size,
                          config.budgets, seed, config.out_path / "train" / loaded.name / policy / f"seed-{seed}",
                          progress, config.warm_start, shared_root(config, loaded.name))
    return policy_spec(policy).build(ctx), ctx


def shared_root(config: BenchmarkConfig, context: str) -> Path:
    """``TrainingContext.shared_dir`` of ``context``; the policies keep one ``seed-<s>`` folder in it per seed."""
    return config.out_path / "train" / context / "shared"


def evaluate_on(built: BuiltPolicy, simulator: Simulator, config: BenchmarkConfig, seed: int) -> EpisodeStats:
    """One cell: ``config.episodes`` episodes of ``built.policy`` in ``simulator`` with the CRN seed."""
    env = simulator.make_env(min(config.episodes, config.max_envs))
    policy = built.policy
    if hasattr(policy, "bind_env"):
        policy.bind_env(env)
    stats = evaluate(policy, env, config.episodes, evaluation_seed(seed, simulator.name),
                     catalog=simulator.catalog, max_envs=config.max_envs)
    # Cells are keyed by the seed index; the derived evaluation seed is kept beside it.
    return EpisodeStats(*(frame.rename(columns={"seed": "eval_seed"}).assign(seed=seed)
                          for frame in (stats.episodes, stats.seeds)))


def offline_metrics(ctx: TrainingContext, built: BuiltPolicy) -> dict[str, float]:
    """The NCF-protocol metrics (HR@10, NDCG@10) of a trained supervised policy on its context's split."""
    from recsim_env.evaluation.offline import ncf_protocol

    split = ctx.split
    full = split.train.with_interactions(pd.concat([split.train.interactions, split.valid.interactions,
                                                    split.test.interactions]))
    return ncf_protocol(split.train, split.test, full, built.scorer, seed=ctx.seed)


# ---------------------------------------------------------------- the unit of work
@dataclass(frozen=True)
class TrainingTask:
    """Train ``policy`` on ``context`` with ``train_seed``, then evaluate it on ``cells``."""

    context: str
    policy: str
    train_seed: int
    cells: tuple[tuple[str, int], ...]
    """(simulator, seed) of each unfinished cell, in evaluation order."""
    offline: bool = False
    """Also compute the offline metrics (asked for and not stored yet)."""

    @property
    def name(self) -> str:
        return f"{self.policy} on {self.context}, training seed {self.train_seed}"


def plan_tasks(config: BenchmarkConfig, store: CellStore) -> list[TrainingTask]:
    """The tasks that finish ``config``'s unfinished cells: per context, training seed, policy."""
    tasks = []
    for context, sims in contexts_of(config).items():
        groups = [(seed, [seed]) for seed in range(config.seeds)] if config.retrain_per_seed else \
            [(0, list(range(config.seeds)))]
        for train_seed, seeds in groups:
            for policy in config.policies:
                cells = tuple((sim, seed) for seed in seeds for sim in sims
                              if runs_on(policy, sim) and not store.done(policy, sim, seed))
                if cells:
                    offline = config.offline and store.read_json("offline", context, policy, train_seed) is None
                    tasks.append(TrainingTask(context, policy, train_seed, cells, offline))
    return tasks


@dataclass(frozen=True)
class TaskInput:
    """What a worker gets: the task, the config, the registry entries it names (so policies registered
    in the driver at run time exist in the worker), and the shared files its group already has."""

    config: BenchmarkConfig
    task: TrainingTask
    entries: tuple[ContextSpec, tuple[SimulatorSpec, ...], PolicySpec]
    shared_files: dict[str, bytes] = field(default_factory=dict)
    return_shared: bool = False
    """Send back the files of the group's shared folder (the first agent of a warm-start group)."""
    write_here: bool = True
    """Write the cells into the run folder (a worker on the driver's machine); else record them."""
    progress: bool = False


class CellRecorder:
    """Stands in for the run's :class:`CellStore` on a worker that may not share the driver's file
    system: it records the writes, and the driver replays them into the store."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, tuple]] = []

    def write(self, policy: str, simulator: str, seed: int, stats: EpisodeStats) -> None:
        self.writes.append(("write", (policy, simulator, seed, stats)))

    def write_json(self, kind: str, context: str, policy: str, seed: int, values: dict[str, float]) -> None:
        self.writes.append(("write_json", (kind, context, policy, seed, values)))

    def write_curve(self, context: str, policy: str, seed: int, curve: pd.DataFrame) -> None:
        self.writes.append(("write_curve", (context, policy, seed, curve)))

    def replay(self, store: CellStore) -> None:
        for method, args in self.writes:
            getattr(store, method)(*args)


@dataclass(frozen=True, eq=False)
class TaskResult:
    recorded: CellRecorder | None
    """The task's writes when it did not write them itself."""
    shared_files: dict[str, bytes]


def task_input(config: BenchmarkConfig, task: TrainingTask, shared_files: dict[str, bytes] | None = None,
               return_shared: bool = False, write_here: bool = True, progress: bool = False) -> TaskInput:
    sims = {*contexts_of(config)[task.context], CONTEXTS[task.context].train_simulator}
    entries = (CONTEXTS[task.context], tuple(simulator_spec(s) for s in sorted(sims)), policy_spec(task.policy))
    return TaskInput(config, task, entries, shared_files or {}, return_shared, write_here, progress)


def run_task(work: TaskInput) -> TaskResult:
    """The worker's side: train; store the curve and, if asked, the offline metrics; evaluate and
    store each cell as it finishes."""
    _install_entries(work.entries)
    task = work.task
    config = work.config
    loaded = loaded_context(config, task.context)
    folder = shared_root(config, task.context) / f"seed-{task.train_seed}"
    for name, data in work.shared_files.items():
        if not (folder / name).exists():
            atomic_write_bytes(folder / name, data)
    sink = CellStore(config.out_path) if work.write_here else CellRecorder()
    built, ctx = train_policy(config, loaded, task.policy, task.train_seed, work.progress)
    if built.curve is not None and len(built.curve):
        sink.write_curve(task.context, task.policy, task.train_seed, built.curve)
    if task.offline and built.scorer is not None:
        sink.write_json("offline", task.context, task.policy, task.train_seed, offline_metrics(ctx, built))
    for sim, seed in task.cells:
        sink.write(task.policy, sim, seed, evaluate_on(built, loaded.simulators[sim], config, seed))
    recorded = sink if isinstance(sink, CellRecorder) else None
    return TaskResult(recorded, _files_in(folder) if work.return_shared else {})


def _install_entries(entries: tuple[ContextSpec, tuple[SimulatorSpec, ...], PolicySpec]) -> None:
    context, simulators, policy = entries
    registry.CONTEXTS[context.name] = context
    for spec in simulators:
        registry.SIMULATORS[spec.name] = spec
    registry.POLICIES[policy.name] = policy


def _files_in(folder: Path) -> dict[str, bytes]:
    """The finished files at the top of ``folder`` (a dot name is one still being written)."""
    if not folder.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())
            if path.is_file() and not path.name.startswith(".")}


# ---------------------------------------------------------------- the driver loop
class _WarmStartGroups:
    """The agents of one (context, training seed) share a warm start: one runs until one succeeded."""

    def __init__(self, config: BenchmarkConfig) -> None:
        self.enabled = bool(config.warm_start)
        self.files: dict[tuple[str, int], dict[str, bytes]] = {}
        self.running: set[tuple[str, int]] = set()

    def group(self, task: TrainingTask) -> tuple[str, int] | None:
        if self.enabled and policy_spec(task.policy).kind == "agent":
            return task.context, task.train_seed
        return None

    def may_start(self, task: TrainingTask) -> bool:
        group = self.group(task)
        return group is None or group in self.files or group not in self.running

    def started(self, task: TrainingTask) -> None:
        group = self.group(task)
        if group is not None and group not in self.files:
            self.running.add(group)

    def finished(self, task: TrainingTask, files: dict[str, bytes] | None) -> None:
        """``files``: what the task left in the shared folder; ``None`` when it failed."""
        group = self.group(task)
        if group is None:
            return
        self.running.discard(group)
        if files is not None and group not in self.files:
            self.files[group] = files


def run_tasks(executor: Executor, tasks: list[TrainingTask], config: BenchmarkConfig, store: CellStore,
              bar: tqdm, in_process: bool = False) -> list[str]:
    """Run ``tasks`` on ``executor`` (agents first: they train longest), write each result as it
    comes, retry a failure once; returns ``"task: error"`` for each task that failed every attempt."""
    queue = deque(sorted(tasks, key=lambda t: policy_spec(t.policy).kind != "agent"))
    groups = _WarmStartGroups(config)
    attempts: Counter[TrainingTask] = Counter()
    running: dict[str, TrainingTask] = {}
    failures: list[str] = []
    while queue or running:
        for task in [t for t in queue if groups.may_start(t)]:
            if len(running) >= executor.capacity:
                break
            if not groups.may_start(task):  # its group's first agent started in this pass
                continue
            queue.remove(task)
            group = groups.group(task)
            executor.submit(task.name, run_task, task_input(
                config, task, groups.files.get(group), return_shared=group is not None and group not in groups.files,
                write_here=executor.shares_files, progress=in_process and not bar.disable))
            groups.started(task)
            running[task.name] = task
        if not running:  # cannot happen: a task waits only on its group's task in flight
            raise RuntimeError(f"no task can start: {[t.name for t in queue]}")
        bar.set_postfix_str("; ".join(running), refresh=True)
        for outcome in executor.wait():
            task = running.pop(outcome.key)
            if outcome.error is None:
                if outcome.value.recorded is not None:
                    outcome.value.recorded.replay(store)
                groups.finished(task, outcome.value.shared_files)
                bar.update(len(task.cells))
                continue
            groups.finished(task, None)
            attempts[task] += 1
            if attempts[task] < ATTEMPTS:
                logger.warning("%s failed (%s); retrying it once", task.name, _last_line(outcome.error))
                queue.appendleft(task)
            else:
                logger.warning("%s failed again, its cells are left unfinished:\n%s", task.name, outcome.error)
                failures.append(f"{task.name}: {_last_line(outcome.error)}")
    return failures


def _last_line(error: str) -> str:
    """The exception line of a traceback (or the whole of a one-line error)."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else error


def absolute(config: BenchmarkConfig) -> BenchmarkConfig:
    """``config`` with an absolute ``out_dir``: a worker's current directory need not be the driver's."""
    return replace(config, out_dir=str(config.out_path.resolve()))
