"""PNG plots of a :class:`~recsim_env.evaluation.fidelity.FidelityReport` (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recsim_env.evaluation.fidelity_report import FidelityReport


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(5, 4), dpi=100)


def reliability_plot(report: "FidelityReport", path: Path) -> None:
    plt, fig, ax = _figure()
    bins = report.reliability.dropna()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    ax.plot(bins["mean_prob"], bins["mean_outcome"], marker="o", label=f"simulator (ECE {report.metrics['ece']:.3f})")
    ax.set(xlabel="predicted choice probability (given a click)", ylabel="observed frequency",
           title="Choice reliability", xlim=(0, 1), ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def session_length_plot(report: "FidelityReport", path: Path) -> None:
    plt, fig, ax = _figure()
    for values, label in ((report.logged_lengths, "logged (held-out)"), (report.simulated_lengths, "simulated")):
        x = np.sort(values)
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=f"{label}, n={len(x)}")
    ax.set_xscale("log")
    ax.set(xlabel="interactions per session", ylabel="cumulative share",
           title=f"Session lengths (KS {report.metrics['session_ks']:.3f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def genre_repetition_plot(report: "FidelityReport", path: Path) -> None:
    plt, fig, ax = _figure()
    values = [report.metrics["logged_genre_repetition"], report.metrics["sim_genre_repetition"]]
    ax.bar(["logged (held-out)", "simulated"], values, color=["tab:blue", "tab:orange"])
    ax.set(ylabel="share of consecutive items sharing a genre", ylim=(0, 1), title="Genre repetition")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_all(report: "FidelityReport", out: Path) -> None:
    reliability_plot(report, out / "reliability.png")
    session_length_plot(report, out / "session_lengths.png")
    genre_repetition_plot(report, out / "genre_repetition.png")
