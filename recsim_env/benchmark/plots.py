"""PNG plots of a benchmark report (matplotlib, headless): returns with intervals, session lengths,
learning curves. Each function returns the files it wrote, keyed by a stable name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from recsim_env.benchmark.results import BenchmarkResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; the report only needs files
    import matplotlib.pyplot as plt

    return plt


def write_plots(result: "BenchmarkResult", agg: pd.DataFrame, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for sim in result.config.simulators:
        path = return_bars(agg, sim, folder / f"return_{sim}.png")
        if path is not None:
            out[f"return_{sim}"] = path
        path = session_length_plot(result, sim, folder / f"sessions_{sim}.png")
        if path is not None:
            out[f"sessions_{sim}"] = path
    path = learning_curves(result.curves, folder / "learning_curves.png")
    if path is not None:
        out["learning_curves"] = path
    return out


def return_bars(agg: pd.DataFrame, simulator: str, path: Path) -> Path | None:
    """Mean episode return per policy with its 95% interval as error bars, best first."""
    part = agg[(agg["simulator"] == simulator) & (agg["metric"] == "return")].sort_values("mean", ascending=False)
    if part.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(part) + 2), 4))
    err = np.vstack([part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]])
    ax.bar(part["policy"], part["mean"], yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_ylabel("mean episode return")
    ax.set_title(f"{simulator}: return with 95% CI")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def session_length_plot(result: "BenchmarkResult", simulator: str, path: Path) -> Path | None:
    """Clicks per simulated session (sessions with at least one click) per policy, beside the logged
    interactions per session: the quantity the fitted simulators' patience is calibrated on."""
    eps = result.episodes
    if eps.empty or "simulator" not in eps.columns:
        return None
    part = eps[eps["simulator"] == simulator]
    logged = result.logged_session_lengths.get(simulator)
    if part.empty or ("sessions_per_user" in part and part["sessions_per_user"].notna().any()):
        return None  # a lifetime episode holds many sessions: its clicks are no session length
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    column = "clicks" if "clicks" in part.columns else "session_length"
    part = part[part[column] > 0]
    if part.empty:
        plt.close(fig)
        return None
    top = int(max(part[column].max(), np.max(logged) if logged is not None and len(logged) else 1))
    bins = np.arange(1, min(top, 100) + 2) - 0.5
    for policy, group in part.groupby("policy", sort=False):
        ax.hist(group[column], bins=bins, density=True, histtype="step", label=f"simulated: {policy}")
    if logged is not None and len(logged):
        ax.hist(logged, bins=bins, density=True, histtype="stepfilled", alpha=0.3, color="black", label="logged")
    ax.set_xlabel("items consumed per session (simulated clicks / logged interactions)")
    ax.set_ylabel("share of sessions")
    ax.set_title(f"{simulator}: session lengths")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(curves: pd.DataFrame, path: Path) -> Path | None:
    """Training curves: episode return for agents (per step), validation NDCG for baselines (per epoch)."""
    if curves.empty:
        return None
    panels = [(m, label) for m, label in (("episode/return", "episode return (agents)"),
                                          ("ndcg@10", "validation NDCG@10 (baselines)"))
              if m in curves.columns and curves[m].notna().any()]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels):
        data = curves[curves[metric].notna()]
        for (context, policy), group in data.groupby(["context", "policy"], sort=False):
            mean = group.groupby("step")[metric].mean()
            # A log interval holds few episodes: a centred 3-point mean shows the trend, not the noise.
            smooth = mean.rolling(3, center=True, min_periods=1).mean() if metric == "episode/return" else mean
            ax.plot(smooth.index, smooth.values, label=f"{policy} ({context})")
        ax.set_xlabel("user-steps" if metric == "episode/return" else "epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
