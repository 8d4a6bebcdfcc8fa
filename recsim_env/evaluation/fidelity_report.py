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
    hazard: dict[str, pd.DataFrame] = field(default_factory=dict)
    """The leave hazard by ``position`` and by ``rating``: logged (held-out, 95 % interval), fitted, simulated
    (the applied hazard with its interval over sessions, and the realised share)."""
    provenance: list[dict[str, str]] = field(default_factory=list)
    """One row per dynamics parameter: value, source (fitted / calibrated / assumed), figure or reason."""

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
        lines += self._leave_lines() + self._return_lines() + self._provenance_lines()
        lines += ["", "![reliability](reliability.png)", "![session lengths](session_lengths.png)",
                  "![genre repetition](genre_repetition.png)"]
        lines += ["![leave hazard](leave_hazard.png)", ""] if self.hazard else [""]
        return "\n".join(lines)

    def _leave_lines(self) -> list[str]:
        m = self.metrics
        if "leave_log_loss_full" not in m:
            return []
        lines = ["", "## Leave hazard (per consumed item; held-out log, reference-policy simulation)", "",
                 f"Held-out log-loss (nats per item, {int(m['leave_heldout_items'])} items, "
                 f"{int(m['leave_heldout_ends'])} session ends): fitted {m['leave_log_loss_full']:.4f}, "
                 f"position only {m['leave_log_loss_position']:.4f}, constant {m['leave_log_loss_constant']:.4f}."]
        if "session_ks_no_click_at_constant_hazard" in m:
            lines += ["", f"Session-length KS if a step without a click ended the session with the constant hazard "
                          f"{m['no_click_leave_alternative']:.4f} (an assumption the log cannot check) instead of "
                          f"the default: {m['session_ks_no_click_at_constant_hazard']:.4f}."]
        for key, frame in self.hazard.items():
            within = m.get(f"hazard_by_{key}_within_share", float("nan"))
            within_train = m.get(f"hazard_by_{key}_within_train_share", float("nan"))
            lines += ["", f"| {key} | at risk | logged [95 % CI] | fitted | simulated hazard [95 % CI] (n) | "
                          f"simulated share | in CI | training log [95 % CI] | in training CI |",
                      "|---|---:|---|---:|---|---:|:---:|---|:---:|"]
            for row in frame.itertuples(index=False):
                lines.append(f"| {getattr(row, key):g} | {row.at_risk} | {row.logged:.3f} [{row.low:.3f}, "
                             f"{row.high:.3f}] | {row.fitted:.3f} | {row.simulated:.3f} [{row.sim_low:.3f}, "
                             f"{row.sim_high:.3f}] ({row.sim_at_risk}) | {row.sim_share:.3f} | "
                             f"{'yes' if row.within else 'no'} | "
                             f"{row.train_logged:.3f} [{row.train_low:.3f}, {row.train_high:.3f}] | "
                             f"{'yes' if row.within_train else 'no'} |")
            lines += ["", f"Simulated hazard (the leave probability the simulator applied, mean over its items) "
                          f"inside the logged interval: {100 * within:.0f} % of {key} values (held-out log); "
                          f"{100 * within_train:.0f} % inside the training log's (the log the hazard was fitted on "
                          f"and the start states are drawn from). The simulated share, one Bernoulli draw per "
                          f"item, is beside it."]
        return lines

    def _return_lines(self) -> list[str]:
        m = self.metrics
        if "return_concordance" not in m:
            reason = self.extra.get("return_model_error")
            return ["", "## Return model", "", f"Not fitted: {reason}"] if reason else []
        lines = ["", "## Return model (held-out sessions; censored at the log's end)", "",
                 "| figure | covariate-free | model |", "|---|---:|---:|",
                 f"| concordance | {m['return_null_concordance']:.3f} | {m['return_concordance']:.3f} |"]
        for horizon in ("7d", "30d"):
            lines.append(f"| P(return within {horizon[:-1]} days), Kaplan-Meier observed "
                         f"{m[f'return_within_{horizon}_observed']:.3f} | {m[f'return_within_{horizon}_null']:.3f} | "
                         f"{m[f'return_within_{horizon}_predicted']:.3f} |")
        lines += [f"| gap KS, Kaplan-Meier vs mean model CDF | {m['return_null_ks_marginal']:.3f} | "
                  f"{m['return_ks_marginal']:.3f} |",
                  f"| gap KS, logged vs simulated returns (same follow-up) | {m['return_null_ks_simulated']:.3f} | "
                  f"{m['return_ks_simulated']:.3f} |"]
        if "sim_gap_ks_vs_train_km" in m:
            lines += ["", f"Gaps the simulator draws after its own sessions (reference policy) against the "
                          f"Kaplan-Meier curve of the training log's gaps: KS {m['sim_gap_ks_vs_train_km']:.3f}; "
                          f"P(return within 7 d) {m['sim_return_within_7d']:.3f} vs "
                          f"{m['train_km_return_within_7d']:.3f}, "
                          f"within 30 d {m['sim_return_within_30d']:.3f} vs {m['train_km_return_within_30d']:.3f}; "
                          f"median simulated gap {m['sim_gap_median_days']:.1f} days."]
        return lines

    def _provenance_lines(self) -> list[str]:
        if not self.provenance:
            return []
        lines = ["", "## Where every dynamics parameter comes from", "",
                 "| parameter | value | source | held-out figure, target or reason |", "|---|---|---|---|"]
        lines += [f"| {row['parameter']} | {row['value']} | {row['source']} | {row['detail']} |"
                  for row in self.provenance]
        return lines

    def write(self, out_dir: str | Path) -> Path:
        """``report.md``, ``metrics.json``, the PNG plots and the hazard / provenance tables (CSV) into
        ``out_dir``; returns the markdown path."""
        from recsim_env.evaluation.fidelity_plots import plot_all

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot_all(self.reliability, self.metrics, self.logged_lengths, self.simulated_lengths, out, self.hazard)
        for key, frame in self.hazard.items():
            frame.to_csv(out / f"leave_hazard_by_{key}.csv", index=False)
        if self.provenance:
            pd.DataFrame(self.provenance).to_csv(out / "provenance.csv", index=False)
        (out / "metrics.json").write_text(json.dumps(self.metrics, indent=2))
        path = out / "report.md"
        path.write_text(self.to_markdown())
        return path
