"""`FidelityReport`: the figures of one fidelity run, rendered as markdown and plots.

Its own module so that the plots, which read it, do not import the fidelity computation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class FidelityReport:
    """Figures of one fidelity run; :meth:`write` renders markdown and PNG plots."""

    metrics: dict[str, float]
    reliability: pd.DataFrame
    simulated_lengths: np.ndarray
    logged_lengths: np.ndarray
    extra: dict[str, object] = field(default_factory=dict)

    def to_markdown(self) -> str:
        m = self.metrics
        rows = [
            ("Next-item HR@10 (99 sampled negatives)", m["hr@10"], m["popularity_hr@10"]),
            ("Next-item NDCG@10", m["ndcg@10"], m["popularity_ndcg@10"]),
            ("AUC of choice scores", m["auc"], m["popularity_auc"]),
            ("Rating RMSE", m["rating_rmse"], m["global_mean_rmse"]),
            ("Rating MAE", m["rating_mae"], m["global_mean_mae"]),
        ]
        lines = [f"# Fidelity report: {self.extra.get('model', 'fitted user model')}", "",
                 f"Held-out log: {self.extra.get('heldout', '?')} ({int(m['events'])} interactions evaluated).", "",
                 "| measure | simulator | baseline (popularity / global mean) |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {value:.4f} | {base:.4f} |" for name, value, base in rows]
        if "warm_hr@10" in m:
            lines += [f"| HR@10 / AUC, users seen in training only ({100 * m['warm_share']:.0f} % of events) | "
                      f"{m['warm_hr@10']:.4f} / {m['warm_auc']:.4f} | |"]
        lines += ["", "| distributional check | value |", "| --- | ---: |",
                  f"| Choice ECE (10 bins, probability given a click) | {m['ece']:.4f} |",
                  f"| Session length KS (simulated vs held-out logged) | {m['session_ks']:.4f} |",
                  f"| Session length KS (simulated vs training logged) | {m['session_ks_train']:.4f} |",
                  f"| Median session length simulated / logged | {m['sim_median_length']:.1f} / "
                  f"{m['logged_median_length']:.1f} |",
                  f"| Genre repetition simulated / logged | {m['sim_genre_repetition']:.3f} / "
                  f"{m['logged_genre_repetition']:.3f} |"]
        if "greedy_return" in m:
            lines += ["", "## Long-horizon headroom (default env, clicks per episode)", "",
                      f"- greedy on click probability: {m['greedy_return']:.2f} (length {m['greedy_length']:.1f})",
                      f"- rating-aware heuristic: {m['heuristic_return']:.2f} (length {m['heuristic_length']:.1f})",
                      f"- gain of the non-myopic heuristic: {100 * m['headroom']:.1f} %"]
        lines += ["", "![reliability](reliability.png)", "![session lengths](session_lengths.png)",
                  "![genre repetition](genre_repetition.png)", ""]
        return "\n".join(lines)

    def write(self, out_dir: str | Path) -> Path:
        """``report.md``, ``metrics.json`` and three PNG plots into ``out_dir``; returns the markdown path."""
        from recsim_env.evaluation.fidelity_plots import plot_all

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot_all(self.reliability, self.metrics, self.logged_lengths, self.simulated_lengths, out)
        (out / "metrics.json").write_text(json.dumps(self.metrics, indent=2))
        path = out / "report.md"
        path.write_text(self.to_markdown())
        return path
