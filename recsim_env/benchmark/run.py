"""The main job: train every policy, evaluate it on every simulator and seed, write the report.

:func:`run_benchmark` is ``recsim benchmark``. Order of work:

1. check the output directory is writable (before anything slow) and record the run's settings;
2. per training context (``ml-100k``: fetch ML-100K, fit the train-split and later-split simulators,
   cached; ``synthetic``: its generated log), per seed, per policy: train the policy (skipped when
   all its cells are already finished), store its learning curve and, for supervised policies, the
   offline NCF-protocol metrics;
3. evaluate it on each of the context's simulators with common random numbers: the evaluation seed
   depends on (seed, simulator) only, so all policies meet the same users;
4. write the report (:mod:`recsim_env.benchmark.report`).

Steps 2-3 are units of work (:mod:`recsim_env.benchmark.tasks`: one policy, context and training
seed, with its cells) run by an executor (:mod:`recsim_env.benchmark.executors`): in this process,
in ``--jobs N`` local processes or on Ray, to the same numbers. A task that fails is retried once,
then named when the run ends (:class:`~recsim_env.errors.TasksFailedError`, after the
report of the other cells is written).

Each (policy, simulator, seed) cell is written atomically as it finishes, so Ctrl-C or a killed
worker keeps what is done and a rerun with the same ``out_dir`` resumes
(:mod:`recsim_env.benchmark.cells`). A rerun may add seeds, policies, simulators or metrics, and may
run on another executor; any other change to the folder's ``config.toml`` (a narrower run included)
is refused, since it would overwrite the record and the report of the finished cells, unless
``overwrite`` asks to start over (``recsim benchmark --overwrite``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import tomllib
from tqdm.auto import tqdm

from recsim_env.benchmark.cells import CellStore, atomic_write_text, check_writable
from recsim_env.benchmark.config import BenchmarkConfig, Budgets, read_toml
from recsim_env.benchmark.defaults import simulator_spec
from recsim_env.benchmark.executors import ExecutorConfig, make_executor
from recsim_env.benchmark.results import BenchmarkResult
from recsim_env.benchmark.tasks import (
    LoadedContext,
    absolute,
    evaluate_on,
    evaluation_seed,
    forget_contexts,
    load_context,
    loaded_context,
    plan_tasks,
    run_tasks,
    runs_on,
    train_policy,
)
from recsim_env.errors import ConfigError, TasksFailedError

logger = logging.getLogger(__name__)

__all__ = ["BenchmarkConfig", "Budgets", "BenchmarkResult", "ExecutorConfig", "LoadedContext", "run_benchmark",
           "execute", "load_context", "train_policy", "evaluate_on", "evaluation_seed", "load_results"]


def result_settings(config: BenchmarkConfig) -> dict[str, Any]:
    """The settings a finished cell depends on: a resumed run must keep them."""
    return {"episodes": config.episodes, "slate_size": config.slate_size, "n_candidates": config.n_candidates,
            "max_envs": config.max_envs, "budgets": asdict(config.budgets), "retrain_per_seed": config.retrain_per_seed,
            "warm_start": config.warm_start}


RUN_OUTPUTS = ("cells", "offline", "curves", "train", "logged_sessions", "plots", "tb", "run.json", "config.toml",
               "versions.toml", "report.md", "results.csv", "per_seed.csv", "paired_differences.csv",
               "gains.csv", "bound_shares.csv", "episodes.csv", "offline.csv")
"""What a run writes at the top of its folder: ``overwrite`` removes these and nothing else."""

EXTENDABLE = ("policies", "simulators", "metrics", "seeds")
"""Config fields a rerun may widen (more entries, more seeds) and still resume the same run."""


def run_benchmark(config: BenchmarkConfig, progress: bool = True, overwrite: bool = False,
                  executor: ExecutorConfig | None = None) -> Path:
    """Run the whole job (module docstring); returns the path of the markdown report.

    ``overwrite`` removes a previous run in ``config.out_dir`` (:data:`RUN_OUTPUTS`) and starts over;
    without it a rerun whose config differs from the folder's other than by extending it is refused.
    ``executor`` says where the work runs (default: in this process); it does not change the results.
    Tasks that fail twice raise :class:`~recsim_env.errors.TasksFailedError` once the report
    of the other cells is written.
    """
    from recsim_env.benchmark import report

    root = prepare_run_dir(config, overwrite)
    try:
        execute(config, progress=progress, executor=executor)
    except KeyboardInterrupt:
        # Keep the finished cells readable as one table before giving the interrupt back.
        report.write_results_csv(load_results(config), root)
        raise
    except TasksFailedError:
        report.write_report(load_results(config), root, console_table=progress)
        raise
    return report.write_report(load_results(config), root, console_table=progress)


def prepare_run_dir(config: BenchmarkConfig, overwrite: bool = False) -> Path:
    """Check the output directory is writable, check (or with ``overwrite`` clear) a previous run
    there, bind its settings, write the exact config and versions."""
    from recsim_env.benchmark.report import package_versions

    root = config.out_path
    check_writable(root)
    if overwrite:
        _remove_run(root)
    else:
        _check_rerun(config, root)
    CellStore(root).bind(result_settings(config))
    atomic_write_text(root / "config.toml", config.to_toml())
    atomic_write_text(root / "versions.toml", "".join(f'"{k}" = "{v}"\n' for k, v in package_versions().items()))
    return root


def _check_rerun(config: BenchmarkConfig, root: Path) -> None:
    """Refuse a rerun into a run folder whose ``config.toml`` differs other than by extension."""
    path = root / "config.toml"
    if not path.exists():
        return
    try:
        previous = read_toml(path)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; pass --overwrite to start over or choose another --out") from None
    changes = config_changes(previous, tomllib.loads(config.to_toml()))
    if changes:
        raise ConfigError(f"{root} holds a run of another config ({'; '.join(changes)}); rerun with that config "
                          f"(or one that only adds seeds, policies, simulators or metrics) to resume it, pass "
                          f"--overwrite to start over, or choose another --out")


def config_changes(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"field = old there, new now"`` for each field (``budgets.x`` for budgets) where ``current``
    departs from ``previous`` other than by extending it; ``out_dir`` is where, not what, and is skipped."""
    before = _flat(previous)
    after = _flat(current)
    changes = []
    for name in sorted((set(before) | set(after)) - {"out_dir"}):
        old, new = before.get(name), after.get(name)
        if old == new or (name in EXTENDABLE and _extends(old, new)):
            continue
        changes.append(f"{name} = {old!r} there, {new!r} now")
    return changes


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in values.items() if k != "budgets"}
    budgets = values.get("budgets", {})
    flat.update({f"budgets.{k}": v for k, v in (budgets.items() if isinstance(budgets, dict) else [])})
    return flat


def _extends(old: Any, new: Any) -> bool:
    """More seeds, or every old entry still there (finished cells stay part of the run)."""
    if isinstance(old, int) and isinstance(new, int):
        return new >= old
    return isinstance(old, list) and isinstance(new, list) and set(old) <= set(new)


def _remove_run(root: Path) -> None:
    """Remove what a previous run wrote in ``root`` (:data:`RUN_OUTPUTS`); other files stay."""
    removed = [name for name in RUN_OUTPUTS if (root / name).exists()]
    for name in removed:
        target = root / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    if removed:
        logger.warning("--overwrite: removed the previous run in %s (%s)", root, ", ".join(removed))


def planned_cells(config: BenchmarkConfig) -> Iterator[tuple[str, str, int]]:
    """(policy, simulator, seed) of every cell the config asks for; the oracle only where it exists."""
    for sim in config.simulators:
        for seed in range(config.seeds):
            for policy in config.policies:
                if runs_on(policy, sim):
                    yield policy, sim, seed


def execute(config: BenchmarkConfig, progress: bool = True, executor: ExecutorConfig | None = None) -> None:
    """Steps 2-3 of the module docstring on ``executor`` (default: in this process); finished cells are skipped."""
    executor = executor or ExecutorConfig()
    config = absolute(config)
    store = CellStore(config.out_path)
    tasks = plan_tasks(config, store)
    if not tasks:
        logger.info("every cell of %s is finished; only the report is rewritten", config.out_path)
        return
    total = sum(1 for _ in planned_cells(config))
    todo = sum(len(task.cells) for task in tasks)
    if todo < total:
        logger.info("resuming %s: %d of %d cells already finished", config.out_path, total - todo, total)
    in_process = executor.backend == "sequential"
    with make_executor(executor) as pool:  # first: a missing Ray or a dead address fails before any work
        try:
            for context in dict.fromkeys(task.context for task in tasks):
                # In the driver first: fitted simulators reach the cache before any worker looks for them.
                _write_logged_sessions(config, loaded_context(config, context))
            if not in_process:
                forget_contexts()  # the workers load their own
            with tqdm(total=todo, desc="benchmark cells", unit="cell", disable=not progress) as bar:
                failures = run_tasks(pool, tasks, config, store, bar, in_process=in_process)
        finally:
            forget_contexts()
    if failures:
        raise TasksFailedError(f"{len(failures)} of {len(tasks)} tasks failed twice; their cells are missing from the "
                               f"report (rerun with the same --out to retry them): {'; '.join(failures)}")


def _write_logged_sessions(config: BenchmarkConfig, loaded: LoadedContext) -> None:
    for sim in loaded.simulators.values():
        if sim.logged_session_lengths is not None:
            frame = pd.DataFrame({"session_length": np.asarray(sim.logged_session_lengths)})
            atomic_write_text(config.out_path / "logged_sessions" / f"{sim.name}.csv", frame.to_csv(index=False))


def load_results(config: BenchmarkConfig) -> BenchmarkResult:
    """The finished cells of ``config`` in its run directory (missing ones listed, not invented)."""
    store = CellStore(config.out_path)
    episodes, seeds, missing = [], [], []
    for policy, sim, seed in planned_cells(config):
        if not store.done(policy, sim, seed):
            missing.append((policy, sim, seed))
            continue
        stats = store.read(policy, sim, seed)
        tag = {"policy": policy, "simulator": sim}
        episodes.append(stats.episodes.assign(**tag))
        seeds.append(stats.seeds.assign(**tag))
    offline = []
    for sim in config.simulators:
        context = simulator_spec(sim).context
        for policy in config.policies:
            for seed in range(config.seeds):
                row = store.read_json("offline", context, policy, seed)
                if row is not None:
                    offline.append({"context": context, "policy": policy, "seed": seed, **row})
    curves = store.curves()
    if len(curves):
        curves = curves[curves["policy"].isin(config.policies)]
    return BenchmarkResult(config, _frame(episodes), _frame(seeds), pd.DataFrame(offline).drop_duplicates(
        subset=["context", "policy", "seed"]) if offline else pd.DataFrame(), curves,
        _logged_lengths(config), missing)


def _frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _logged_lengths(config: BenchmarkConfig) -> dict[str, np.ndarray]:
    store = config.out_path / "logged_sessions"
    out = {}
    for sim in config.simulators:
        path = store / f"{sim}.csv"
        if path.exists():
            out[sim] = pd.read_csv(path)["session_length"].to_numpy()
    return out
