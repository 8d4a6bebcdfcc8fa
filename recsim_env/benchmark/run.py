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

Each (policy, simulator, seed) cell is written atomically as it finishes, so Ctrl-C keeps what is done
and a rerun with the same ``out_dir`` resumes (:mod:`recsim_env.benchmark.cells`). A rerun may add seeds,
policies, simulators or metrics; any other change to the folder's ``config.toml`` (a narrower run
included) is refused, since it would overwrite the record and the report of the finished cells,
unless ``overwrite`` asks to start over (``recsim benchmark --overwrite``).
"""

from __future__ import annotations

import logging
import shutil
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import tomllib
from tqdm.auto import tqdm

from recsim_env.benchmark.cells import CellStore, atomic_write_text, check_writable
from recsim_env.benchmark.config import BenchmarkConfig, Budgets, read_toml
from recsim_env.benchmark.defaults import CONTEXTS, policy_spec, simulator_spec
from recsim_env.benchmark.registry import (
    BuiltPolicy,
    ContextData,
    Simulator,
    TrainingContext,
)
from recsim_env.benchmark.results import BenchmarkResult
from recsim_env.errors import ConfigError
from recsim_env.evaluation.rollout import EpisodeStats, evaluate

logger = logging.getLogger(__name__)

__all__ = ["BenchmarkConfig", "Budgets", "BenchmarkResult", "LoadedContext", "run_benchmark", "execute",
           "load_context", "train_policy", "evaluate_on", "evaluation_seed", "load_results"]


def evaluation_seed(seed: int, simulator: str) -> int:
    """The evaluation seed of (seed, simulator): the same for every policy (common random numbers)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(simulator.encode())]).generate_state(1)[0])


def result_settings(config: BenchmarkConfig) -> dict[str, Any]:
    """The settings a finished cell depends on: a resumed run must keep them."""
    return {"episodes": config.episodes, "slate_size": config.slate_size, "n_candidates": config.n_candidates,
            "max_envs": config.max_envs, "budgets": asdict(config.budgets), "retrain_per_seed": config.retrain_per_seed,
            "warm_start": config.warm_start}


RUN_OUTPUTS = ("cells", "offline", "curves", "train", "logged_sessions", "plots", "tb", "run.json", "config.toml",
               "versions.toml", "report.md", "results.csv", "per_seed.csv", "paired_differences.csv",
               "episodes.csv", "offline.csv")
"""What a run writes at the top of its folder: ``overwrite`` removes these and nothing else."""

EXTENDABLE = ("policies", "simulators", "metrics", "seeds")
"""Config fields a rerun may widen (more entries, more seeds) and still resume the same run."""


def run_benchmark(config: BenchmarkConfig, progress: bool = True, overwrite: bool = False) -> Path:
    """Run the whole job (module docstring); returns the path of the markdown report.

    ``overwrite`` removes a previous run in ``config.out_dir`` (:data:`RUN_OUTPUTS`) and starts over;
    without it a rerun whose config differs from the folder's other than by extending it is refused.
    """
    from recsim_env.benchmark import report

    root = prepare_run_dir(config, overwrite)
    try:
        execute(config, progress=progress)
    except KeyboardInterrupt:
        # Keep the finished cells readable as one table before giving the interrupt back.
        report.write_results_csv(load_results(config), root)
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
                if policy_spec(policy).kind != "oracle" or simulator_spec(sim).has_oracle:
                    yield policy, sim, seed


def execute(config: BenchmarkConfig, progress: bool = True) -> None:
    """Steps 2-3 of the module docstring; finished cells are skipped."""
    store = CellStore(config.out_path)
    contexts: dict[str, list[str]] = {}
    for sim in config.simulators:
        contexts.setdefault(simulator_spec(sim).context, []).append(sim)
    todo = [c for c in planned_cells(config) if not store.done(*c)]
    if not todo:
        logger.info("every cell of %s is finished; only the report is rewritten", config.out_path)
        return
    total = sum(1 for _ in planned_cells(config))
    if len(todo) < total:
        logger.info("resuming %s: %d of %d cells already finished", config.out_path, total - len(todo), total)
    bar = tqdm(total=len(todo), desc="benchmark cells", unit="cell", disable=not progress)
    for context, sims in contexts.items():
        if any(c[1] in sims for c in todo):
            _run_context(config, context, sims, store, bar, progress)
    bar.close()


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


def train_policy(config: BenchmarkConfig, loaded: LoadedContext, policy: str, seed: int,
                 progress: bool = True) -> tuple[BuiltPolicy, TrainingContext]:
    """Build (train) ``policy`` on the context's data / training simulator with ``seed``."""
    ctx = TrainingContext(loaded.name, loaded.data.log, loaded.data.split, loaded.train_simulator, config.slate_size,
                          config.budgets, seed, config.out_path / "train" / loaded.name / policy / f"seed-{seed}",
                          progress, config.warm_start, config.out_path / "train" / loaded.name / "shared")
    return policy_spec(policy).build(ctx), ctx


def _run_context(config: BenchmarkConfig, context: str, sims: list[str], store: CellStore, bar: tqdm,
                 progress: bool) -> None:
    loaded = load_context(config, context, sims)
    for sim in loaded.simulators.values():
        if sim.logged_session_lengths is not None:
            frame = pd.DataFrame({"session_length": np.asarray(sim.logged_session_lengths)})
            atomic_write_text(config.out_path / "logged_sessions" / f"{sim.name}.csv", frame.to_csv(index=False))
    trained: dict[str, BuiltPolicy] = {}  # policies trained once, when seeds do not retrain
    for seed in range(config.seeds):
        for policy in config.policies:
            cells = [s for s in sims if not store.done(policy, s, seed)
                     and (policy_spec(policy).kind != "oracle" or simulator_spec(s).has_oracle)]
            if not cells:
                continue
            train_seed = seed if config.retrain_per_seed else 0
            built = trained.get(policy)
            if built is None:
                bar.set_postfix_str(f"{context} {policy} seed {train_seed}: training")
                built, ctx = train_policy(config, loaded, policy, train_seed, progress)
                _store_training(store, config, context, policy, train_seed, built, ctx)
                if not config.retrain_per_seed:
                    trained[policy] = built
            for sim in cells:
                bar.set_postfix_str(f"{policy} on {sim}, seed {seed}")
                store.write(policy, sim, seed, evaluate_on(built, loaded.simulators[sim], config, seed))
                bar.update(1)


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


def _store_training(store: CellStore, config: BenchmarkConfig, context: str, policy: str, seed: int,
                    built: BuiltPolicy, ctx: TrainingContext) -> None:
    if built.curve is not None and len(built.curve):
        store.write_curve(context, policy, seed, built.curve)
    if config.offline and built.scorer is not None and store.read_json("offline", context, policy, seed) is None:
        from recsim_env.evaluation.offline import ncf_protocol

        split = ctx.split
        full = split.train.with_interactions(pd.concat([split.train.interactions, split.valid.interactions,
                                                        split.test.interactions]))
        metrics = ncf_protocol(split.train, split.test, full, built.scorer, seed=seed)
        store.write_json("offline", context, policy, seed, metrics)


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
