"""Offline benchmark of the baselines: fit each on the leave-one-out split, then score it under the
NCF protocol (mean over several negative-sample seeds, and seed 0 alone) and by full ranking.
Used by ``recsim offline-eval`` and ``scripts/bench_baselines.py``."""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass

import pandas as pd

from baselines.base import ScoringRecommender
from baselines.recipes import MODELS, build_model
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import Split, leave_one_out, seen_items
from recsim_env.errors import ConfigError
from recsim_env.evaluation import metrics
from recsim_env.evaluation.offline import SampledRanking, full_ranking, item_cold_start

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfflineConfig:
    """What ``recsim offline-eval`` runs."""

    models: tuple[str, ...] = ("popularity", "itemknn", "bpr-mf", "neumf")
    """Names from :data:`baselines.recipes.MODELS`."""
    seed: int = 0
    """Seeds model training and the first negative sample."""
    negative_seeds: int = 5
    """NCF-protocol repetitions with different sampled negatives (seed, seed + 1, ...)."""
    full: bool = True
    """Also rank against every unseen item."""
    k: int = 10
    """Cut-off of every ranking metric."""
    progress: bool = False
    """Progress bars while training."""
    log_dir: str | None = None
    """TensorBoard directory for the torch models."""
    plain: bool = False
    """Textbook recipes: no recency weighting, no refit on validation (an ablation of the tuned ones)."""

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ConfigError(f"unknown or no model(s) {unknown}; choose from {', '.join(MODELS)}")
        if self.negative_seeds < 1 or self.k < 1:
            raise ConfigError(f"negative_seeds and k must be >= 1, got {self.negative_seeds}, {self.k}")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _timings(model: ScoringRecommender, fit_s: float, fit_cpu_s: float) -> dict[str, float]:
    """Fit wall and CPU time, and both until the best validation epoch (pretraining included)."""
    report = getattr(model, "report", None)
    if report is None:
        return {"fit_s": fit_s, "to_best_s": fit_s, "fit_cpu_s": fit_cpu_s, "to_best_cpu_s": fit_cpu_s,
                "epochs": 0, "best_epoch": 0}
    pre = getattr(model, "pretrain_reports", ())
    return {"fit_s": fit_s, "to_best_s": sum(r.seconds for r in pre) + report.seconds_to_best,
            "fit_cpu_s": fit_cpu_s, "to_best_cpu_s": sum(r.cpu_seconds for r in pre) + report.cpu_seconds_to_best,
            "epochs": report.epochs, "best_epoch": report.best_epoch}


def evaluate_model(name: str, split: Split, full_log: InteractionLog, config: OfflineConfig) -> dict[str, object]:
    """Fit one model and return its row of the results table."""
    model = build_model(name, config.seed, config.progress, config.log_dir, config.plain)
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(split)
    row: dict[str, object] = {"model": MODELS[name].label,
                              **_timings(model, time.perf_counter() - start, time.process_time() - cpu)}
    seen = seen_items(full_log)
    k = config.k
    per_seed = [SampledRanking.build(split.test, seen, 99, config.seed + s).evaluate(model, k)
                for s in range(config.negative_seeds)]
    for key in (f"HR@{k}", f"NDCG@{k}"):
        values = [r[key] for r in per_seed]
        mean, low, high = metrics.mean_confidence_interval(values)
        row[f"ncf_{key}"] = per_seed[0][key]
        row[f"ncf_{key}_mean"] = mean
        row[f"ncf_{key}_ci"] = (high - low) / 2.0
    if config.full:
        known = split.train.with_interactions(pd.concat([split.train.interactions, split.valid.interactions]))
        row.update(
            {f"full_{key}": value for key, value in full_ranking(model, known, split.test, k, config.seed).items()}
        )
    row["peak_rss_mb"] = _peak_rss_mb()
    log.debug("%s: %s", name, row)
    return row


def evaluate_models(log_: InteractionLog, config: OfflineConfig) -> pd.DataFrame:
    """One row per model (see :func:`evaluate_model`), plus the whole run's wall time in ``run_s``."""
    start = time.perf_counter()
    split = leave_one_out(log_)
    rows = [evaluate_model(name, split, log_, config) for name in config.models]
    frame = pd.DataFrame(rows)
    frame["run_s"] = time.perf_counter() - start
    return frame


def cold_start_table(log_: InteractionLog, models: tuple[str, ...] = ("popularity", "content"),
                     held_out_fraction: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Item cold start: each model fitted without the held-out items, ranking them (HR@10, NDCG@10)."""
    train, ranking = item_cold_start(log_, held_out_fraction, seed=seed)
    rows = []
    for name in models:
        model = build_model(name, seed).fit(leave_one_out(train))  # validation drives early stopping
        rows.append({"model": MODELS[name].label, **ranking.evaluate(model, 10), "users": len(ranking.users)})
    return pd.DataFrame(rows)
