"""PNG plots of a fidelity run's figures (matplotlib, Agg backend).

The functions take the figures themselves (tables, arrays, the metrics dict), not the report that
holds them: :class:`~recsim_env.evaluation.fidelity_report.FidelityReport` calls them to write itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(5, 4), dpi=100)


def reliability_plot(reliability: pd.DataFrame, ece: float, path: Path) -> None:
    plt, fig, ax = _figure()
    bins = reliability.dropna()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    ax.plot(bins["mean_prob"], bins["mean_outcome"], marker="o", label=f"simulator (ECE {ece:.3f})")
    ax.set(xlabel="predicted choice probability (given a click)", ylabel="observed frequency",
           title="Choice reliability", xlim=(0, 1), ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def session_length_plot(logged: np.ndarray, simulated: np.ndarray, ks: float, path: Path) -> None:
    plt, fig, ax = _figure()
    for values, label in ((logged, "logged (held-out)"), (simulated, "simulated")):
        x = np.sort(values)
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=f"{label}, n={len(x)}")
    ax.set_xscale("log")
    ax.set(xlabel="interactions per session", ylabel="cumulative share",
           title=f"Session lengths (KS {ks:.3f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def genre_repetition_plot(logged: float, simulated: float, path: Path) -> None:
    plt, fig, ax = _figure()
    values = [logged, simulated]
    ax.bar(["logged (held-out)", "simulated"], values, color=["tab:blue", "tab:orange"])
    ax.set(ylabel="share of consecutive items sharing a genre", ylim=(0, 1), title="Genre repetition")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def leave_hazard_plot(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """The hazard by position and by rating: logged with its 95 % band, fitted, simulated with error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 4), dpi=100, squeeze=False)
    for ax, (key, frame) in zip(axes[0], tables.items()):
        x = frame[key].to_numpy(np.float64)
        ax.fill_between(x, frame["low"], frame["high"], color="tab:blue", alpha=0.25, label="logged 95 % interval")
        ax.plot(x, frame["logged"], marker="o", color="tab:blue", label="logged (held-out)")
        ax.plot(x, frame["fitted"], ls="--", color="tab:green", label="fitted (held-out items)")
        sim = frame["simulated"].to_numpy(np.float64)
        errors = np.abs(np.vstack([sim - frame["sim_low"], frame["sim_high"] - sim]))
        ax.errorbar(x, sim, yerr=errors, fmt="s", color="tab:orange", capsize=2, label="simulated (applied hazard)")
        ax.set(xlabel=f"{key} of the consumed item", ylabel="P(session ends after it)",
               title=f"Leave hazard by {key}")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_all(reliability: pd.DataFrame, metrics: dict[str, float], logged_lengths: np.ndarray,
             simulated_lengths: np.ndarray, out: Path, hazard: dict[str, pd.DataFrame] | None = None) -> None:
    """The PNGs of a fidelity report into ``out`` (the leave hazard's when ``hazard`` tables are given)."""
    reliability_plot(reliability, metrics["ece"], out / "reliability.png")
    session_length_plot(logged_lengths, simulated_lengths, metrics["session_ks"], out / "session_lengths.png")
    genre_repetition_plot(
        metrics["logged_genre_repetition"], metrics["sim_genre_repetition"], out / "genre_repetition.png"
    )
    if hazard:
        leave_hazard_plot(hazard, out / "leave_hazard.png")
