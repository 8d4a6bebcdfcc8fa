"""`BenchmarkResult`: a finished benchmark's tables, read back from its cells.

Its own module so that the report and its plots, which read it, do not import the runner that
produces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from recsim_env.benchmark.config import BenchmarkConfig


@dataclass(frozen=True, eq=False)
class BenchmarkResult:
    """Everything the report reads, loaded from the run directory's finished cells."""

    config: BenchmarkConfig
    episodes: pd.DataFrame
    """One row per evaluated episode, with ``policy``, ``simulator``, ``seed`` columns."""
    seeds: pd.DataFrame
    """One row per (policy, simulator, seed) with the per-seed metrics (coverage)."""
    offline: pd.DataFrame
    """Offline protocol metrics of the supervised policies: one row per (context, policy, seed)."""
    curves: pd.DataFrame
    """Learning curves: ``context, policy, seed, step`` and metric columns."""
    logged_session_lengths: dict[str, np.ndarray]
    """Simulator name -> session lengths of the log it was fitted on."""
    missing: list[tuple[str, str, int]]
    """Cells of the config that are not finished (an interrupted run)."""
