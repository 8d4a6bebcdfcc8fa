"""The benchmark report: tables with 95% intervals, plots, TensorBoard scalars, a terminal table.

Written into the run directory::

    results.csv          simulator, policy, metric, mean, ci_low, ci_high, n (seeds)
    per_seed.csv         one row per (simulator, policy, seed): per-seed means, coverage, personalization
    paired_differences.csv   each policy's return minus the best policy's, paired within seeds
    gains.csv            lifetime simulators: each policy's lifetime clicks against the best myopic policy's,
                         split into sessions x steps per session x clicks per step (benchmark.gains)
    bound_shares.csv     each policy's share of the planner's gain over the myopic oracle (with a planner cell)
    episodes.csv         every evaluated episode
    offline.csv          offline NCF-protocol metrics of the supervised policies (when computed)
    report.md            the tables and plots below, the config and the package versions
    plots/return_<simulator>.png      mean return per policy with 95% intervals
    plots/sessions_<simulator>.png    simulated vs logged session-length distributions (session simulators)
    plots/learning_curves.png         training curves of the policies that logged one
    tb/benchmark/        TensorBoard scalars: <simulator>/<metric>/<policy> per seed
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsim_env.benchmark import gains
from recsim_env.benchmark.cells import atomic_write_text
from recsim_env.evaluation import longterm
from recsim_env.evaluation.rollout import ALL_METRICS, METRICS, SEED_METRICS, summarize

if TYPE_CHECKING:
    from recsim_env.benchmark.results import BenchmarkResult

logger = logging.getLogger(__name__)

PACKAGES = ("recsim-env", "gymnasium", "stable-baselines3", "torch", "numpy", "pandas", "scipy", "matplotlib",
            "tensorboard", "rich", "tqdm")


SHORT_NAMES = {"like_rate": "like", "mean_rating": "rating", "session_length": "length", "diversity": "ILD",
               "personalization": "personal"}
"""Terminal column headers: short enough for an 80-column table."""


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on (``python`` included)."""
    import platform

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def per_seed(result: "BenchmarkResult") -> pd.DataFrame:
    """Per (simulator, policy, seed) means of the episode metrics, beside the per-seed metrics."""
    if result.episodes.empty:
        return pd.DataFrame(columns=["simulator", "policy", "seed"])
    keys = ["simulator", "policy", "seed"]
    cols = [c for c in METRICS if c in result.episodes.columns]
    means = result.episodes.groupby(keys, sort=False)[cols].mean()
    seeds = result.seeds.set_index(keys)[[c for c in result.seeds.columns if c in METRICS]]
    table = means.join(seeds)
    lifetime = result.episodes[result.episodes["simulator"].isin(lifetime_simulators(result))]
    if len(lifetime):  # the long-term metrics of the lifetime cells, pooled per seed as their intervals are
        table = table.join(longterm.per_group(lifetime, keys).set_index(keys))
    return table.reset_index()


def lifetime_simulators(result: "BenchmarkResult") -> list[str]:
    """The simulators whose episodes carry the long-term metrics (lifetime envs)."""
    episodes = result.episodes
    if episodes.empty or not longterm.has_longterm(episodes):
        return []
    counted = episodes.groupby("simulator", sort=False)["session_ends"].count()
    return [str(sim) for sim, n in counted.items() if n > 0]


def aggregate(result: "BenchmarkResult") -> pd.DataFrame:
    """``simulator, policy, metric, mean, ci_low, ci_high, n``: t-intervals over seeds.

    With a single seed the interval is over episodes (the per-seed metrics then have no interval)."""
    table = per_seed(result)
    lifetime = lifetime_simulators(result)
    rows = []
    for (sim, policy), group in table.groupby(["simulator", "policy"], sort=False):
        source = group
        if group["seed"].nunique() < 2:
            source = result.episodes[(result.episodes["simulator"] == sim) & (result.episodes["policy"] == policy)]
            source = source.assign(**{m: float(group[m].iloc[0]) for m in SEED_METRICS if m in group})
        cols = [c for c in METRICS if c in source.columns]
        rows.append(summarize(source, cols).assign(simulator=sim, policy=policy))
        if sim in lifetime:
            cell = result.episodes[(result.episodes["simulator"] == sim) & (result.episodes["policy"] == policy)]
            rows.append(longterm.summarize_longterm(cell).assign(simulator=sim, policy=policy))
    if not rows:
        return pd.DataFrame(columns=["simulator", "policy", "metric", "mean", "ci_low", "ci_high", "n"])
    out = pd.concat(rows, ignore_index=True)
    return out[["simulator", "policy", "metric", "mean", "ci_low", "ci_high", "n"]]


MYOPIC_REFERENCE, LONG_HORIZON_REFERENCE = "oracle", "planner"
"""The reference policies over the true model (never "the best policy" of a comparison): the myopic
oracle and the rollout planner; a policy's share of the planner's gain over the oracle is reported."""


def paired_differences(result: "BenchmarkResult", metric: str = "return") -> pd.DataFrame:
    """``simulator, policy, reference, mean, ci_low, ci_high, n``: each policy's ``metric`` minus the
    best policy's other than the references (oracle, planner), paired within seeds (same users), t-interval
    over seeds (with a single seed: over episodes, paired by episode, which common random numbers make the
    same user)."""
    table = per_seed(result)
    rows = []
    for sim, part in table.groupby("simulator", sort=False):
        means = part.groupby("policy")[metric].mean().drop(labels=[MYOPIC_REFERENCE, LONG_HORIZON_REFERENCE],
                                                            errors="ignore")
        if means.empty:
            continue
        best = str(means.idxmax())
        single_seed = part["seed"].nunique() < 2
        source = result.episodes[result.episodes["simulator"] == sim] if single_seed else part
        key = ["seed", "episode"] if single_seed else ["seed"]
        wide = source.pivot_table(index=key, columns="policy", values=metric)
        for policy in wide.columns:
            if policy == best:
                continue
            diff = (wide[policy] - wide[best]).to_frame("diff")
            summary = summarize(diff, ["diff"]).iloc[0]
            rows.append({"simulator": sim, "policy": policy, "reference": best, "mean": summary["mean"],
                         "ci_low": summary["ci_low"], "ci_high": summary["ci_high"], "n": summary["n"]})
    return pd.DataFrame(rows, columns=["simulator", "policy", "reference", "mean", "ci_low", "ci_high", "n"])


def bound_shares(result: "BenchmarkResult", metric: str = "return") -> pd.DataFrame:
    """``simulator, policy, mean, ci_low, ci_high, n``: ``(policy − oracle) / (planner − oracle)`` of ``metric``
    in each simulator with both reference cells: the share of the long-horizon reference's gain over the
    myopic oracle that a policy reaches (0: the oracle's return, 1: the planner's; below 0: worse than the
    oracle). Paired within seeds (same users), t-interval over the seeds both references ran."""
    table = per_seed(result)
    rows = []
    for sim, part in table.groupby("simulator", sort=False):
        wide = part.pivot_table(index="seed", columns="policy", values=metric)
        if not {MYOPIC_REFERENCE, LONG_HORIZON_REFERENCE} <= set(wide.columns):
            continue
        gain = wide[LONG_HORIZON_REFERENCE] - wide[MYOPIC_REFERENCE]
        for policy in wide.columns:
            share = ((wide[policy] - wide[MYOPIC_REFERENCE]) / gain).replace([np.inf, -np.inf], np.nan)
            share = share.to_frame("share")
            summary = summarize(share, ["share"]).iloc[0]
            rows.append({"simulator": sim, "policy": policy, "mean": summary["mean"], "ci_low": summary["ci_low"],
                         "ci_high": summary["ci_high"], "n": summary["n"]})
    return pd.DataFrame(rows, columns=["simulator", "policy", "mean", "ci_low", "ci_high", "n"])


def write_results_csv(result: "BenchmarkResult", root: Path) -> pd.DataFrame:
    """``results.csv``, ``per_seed.csv``, ``episodes.csv``, ``offline.csv``; returns the aggregate."""
    agg = aggregate(result)
    atomic_write_text(root / "results.csv", agg.to_csv(index=False))
    atomic_write_text(root / "per_seed.csv", per_seed(result).to_csv(index=False))
    atomic_write_text(root / "paired_differences.csv", paired_differences(result).to_csv(index=False))
    decomposed = [gains.decompose(result, sim).assign(simulator=sim) for sim in lifetime_simulators(result)]
    decomposed = [frame for frame in decomposed if len(frame)]
    if decomposed:
        atomic_write_text(root / "gains.csv", pd.concat(decomposed, ignore_index=True).to_csv(index=False))
    atomic_write_text(root / "episodes.csv", result.episodes.to_csv(index=False))
    shares = bound_shares(result)
    if len(shares):
        atomic_write_text(root / "bound_shares.csv", shares.to_csv(index=False))
    if not result.offline.empty:
        atomic_write_text(root / "offline.csv", result.offline.to_csv(index=False))
    return agg


def write_report(result: "BenchmarkResult", root: Path, console_table: bool = True) -> Path:
    """Every file of the module docstring; prints the table and the report's path; returns the path."""
    from recsim_env.benchmark import plots as report_plots

    agg = write_results_csv(result, root)
    plots = report_plots.write_plots(result, agg, root / "plots")
    write_tensorboard(result, root / "tb" / "benchmark")
    path = root / "report.md"
    atomic_write_text(path, markdown(result, agg, plots, root))
    if console_table:
        print_table(agg, result)
        from rich.console import Console

        Console().print(f"\nReport: [bold]{path.resolve()}[/bold]")
    return path


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _cell(row: pd.Series) -> str:
    if np.isnan(row["mean"]):
        return "—"
    if row["ci_high"] == row["ci_low"]:
        return _num(row["mean"])
    return f"{_num(row['mean'])} [{_num(row['ci_low'])}, {_num(row['ci_high'])}]"


def _compact(row: pd.Series) -> str:
    """``mean ±h`` with ``h`` the larger half-width: narrow enough for a terminal."""
    if np.isnan(row["mean"]):
        return "—"
    half = max(row["ci_high"] - row["mean"], row["mean"] - row["ci_low"])
    return _num(row["mean"]) if half == 0 else f"{_num(row['mean'])} ±{half:.2g}"


def wide_table(agg: pd.DataFrame, simulator: str, metrics: tuple[str, ...], compact: bool = False) -> pd.DataFrame:
    """One simulator's policies (rows, best return first) x metrics, cells ``mean [low, high]``
    (``mean ±half-width`` when ``compact``). Metrics without data there (all NaN, or a dwell that
    is zero everywhere because the log had none) are left out."""
    part = agg[(agg["simulator"] == simulator) & agg["metric"].isin(metrics)]
    part = part[part.groupby("metric")["n"].transform("max") > 0]
    no_dwell = (part["metric"] == "dwell") & (part.groupby("metric")["mean"].transform(lambda v: v.abs().max()) == 0)
    part = part[~no_dwell]
    cells = part.assign(cell=part.apply(_compact if compact else _cell, axis=1)).pivot(
        index="policy", columns="metric", values="cell")
    order = part[part["metric"] == "return"].sort_values("mean", ascending=False)["policy"].tolist()
    cols = [m for m in metrics if m in cells.columns]
    return cells.reindex(index=order or list(cells.index), columns=cols)


def markdown(result: "BenchmarkResult", agg: pd.DataFrame, plots: dict[str, Path], root: Path) -> str:
    cfg = result.config
    lines = ["# Benchmark report", "",
             f"{len(cfg.policies)} policies x {len(cfg.simulators)} simulators x {cfg.seeds} seeds, "
             f"{cfg.episodes} episodes per cell, slate {cfg.slate_size} of {cfg.n_candidates} candidates"
             f"{' (quick budgets)' if cfg.quick else ''}; RL agents "
             + (f"warm-started from {cfg.warm_start}'s user and item embeddings." if cfg.warm_start else
                "trained from scratch (no warm start)."), "",
             "Cells are `mean [95% CI]`: a t-interval over seeds "
             + ("(each seed trains the policy anew and evaluates it on its own users). " if cfg.retrain_per_seed else
                "(each policy was trained once, with seed 0, and evaluated on each seed's users: the intervals "
                "cover evaluation noise, not training noise). ")
             + "Within a seed every policy meets the same simulated users: common random numbers (the env draws "
             "users, candidates and responses from separate streams of the seed, so every policy is also "
             "offered the same candidate sets at each step while the user is in session under both). "
             "CTR and like rate are per slate shown; mean rating is over clicked "
             "items; diversity is intra-list genre diversity; novelty is the mean self-information of "
             "shown items; coverage is the share of the catalogue shown at least once; personalization is 1 "
             "minus the mean overlap (shared items / slate size) of the slates any two users in session at the "
             "same step are shown (0: one slate for everyone, 1: no item shared). `oracle` is greedy on "
             "the simulator's true utilities: the click-through ceiling of a myopic policy, not a bound on "
             "long-term return.", ""]
    paired = paired_differences(result)
    lifetime = lifetime_simulators(result)
    shares = bound_shares(result)
    for sim in cfg.simulators:
        table = wide_table(agg, sim, cfg.metrics)
        lines += [f"## {sim}", ""]
        lines += [_md_table(table), ""] if len(table) else ["No finished cells.", ""]
        diffs = paired[paired["simulator"] == sim].sort_values("mean", ascending=False)
        if len(diffs):
            ref = diffs["reference"].iloc[0]
            cells = pd.DataFrame({f"return − {ref}": diffs.apply(_cell, axis=1).to_numpy()}, index=diffs["policy"])
            lines += [f"Paired differences in return against the best policy, **{ref}** (same users in each "
                      "seed; an interval that excludes 0 is a difference the seeds agree on):", "",
                      _md_table(cells), ""]
        if sim in lifetime:
            lines += lifetime_section(result, sim)
        lines += _shares_section(shares[shares["simulator"] == sim])
        for key in (f"return_{sim}", f"sessions_{sim}"):
            if key in plots:
                lines += [f"![{key}]({plots[key].relative_to(root).as_posix()})", ""]
    if not result.offline.empty:
        lines += [
            "## Offline NCF protocol (supervised policies)",
            "",
            "Leave-one-out on each context's training log (for ML-100K its earlier part, not the whole "
            "dataset): the last item of each user ranked among 99 sampled unseen items; "
            + ("mean [95% CI] over training seeds." if result.offline["seed"].nunique() > 1 else "one training seed."),
            "",
            _md_table(offline_table(result.offline)),
            "",
        ]
    if "learning_curves" in plots:
        lines += [
            "## Learning curves",
            "",
            f"![learning curves]({plots['learning_curves'].relative_to(root).as_posix()})",
            "",
        ]
    if result.missing:
        lines += ["## Unfinished cells", "", "The run was interrupted; rerun the same command to finish:", ""]
        lines += [f"- {p} on {s}, seed {k}" for p, s, k in result.missing] + [""]
    lines += ["## Configuration", "", "```toml", cfg.to_toml().rstrip(), "```", "", "## Package versions", ""]
    lines += [f"- {k} {v}" for k, v in package_versions().items()]
    return "\n".join(lines) + "\n"


def lifetime_section(result: "BenchmarkResult", simulator: str) -> list[str]:
    """The markdown of a lifetime simulator's gain decomposition (:mod:`~recsim_env.benchmark.gains`)."""
    lines = ["In this lifetime simulator an episode is one user's sessions over the horizon: `return` and "
             "`lifetime_clicks` are clicks over the horizon, `session_length` the steps of all its sessions, "
             "`ctr` clicks per step; `return_rate_7d` is the share of sessions followed by a return within 7 days "
             "and `days_to_return` the mean gap of the sessions whose user comes back.", ""]
    table = gains.decompose(result, simulator)
    if table.empty:
        return lines
    ref = table["reference"].iloc[0]
    cells = pd.DataFrame(index=table["policy"])
    cells[f"lifetime clicks − {ref}"] = [_cell(pd.Series({"mean": r["diff"], "ci_low": r["diff_low"],
                                                          "ci_high": r["diff_high"]})) for _, r in table.iterrows()]
    for factor in gains.FACTORS:
        cells[f"{factor.replace('_', ' ')} ×"] = [
            _ratio_cell(r[factor], r[f"{factor}_low"], r[f"{factor}_high"]) for _, r in table.iterrows()]
    lines += [f"Lifetime clicks against the best myopic policy, **{ref}**, paired within seeds, and the ratio of "
              "each factor of lifetime clicks = sessions × steps per session × clicks per step (geometric mean "
              "over seeds [95% CI]; the three factors multiply to the first ratio):", "", _md_table(cells), ""]
    return lines


def _ratio_cell(mean: float, low: float, high: float) -> str:
    """A ratio with its interval; the ratio alone where there is none (one seed: NaN bounds, or equal ones)."""
    if not np.isfinite(mean):
        return "—"
    if not (np.isfinite(low) and np.isfinite(high)) or low == high:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _shares_section(shares: pd.DataFrame) -> list[str]:
    """The report's lines on the policies' shares of the planner's gain (none without a planner cell)."""
    if not len(shares):
        return []
    shares = shares.sort_values("mean", ascending=False)
    cells = pd.DataFrame({"share of the planner's gain": shares.apply(_cell, axis=1).to_numpy()},
                         index=shares["policy"])
    return [f"Share of the long-horizon reference's gain over the myopic oracle, `(return − {MYOPIC_REFERENCE}) / "
            f"({LONG_HORIZON_REFERENCE} − {MYOPIC_REFERENCE})` per seed (0: the oracle's return, 1: the planner's, "
            "which reads the true model and state; not a real policy):", "", _md_table(cells), ""]


def offline_table(offline: pd.DataFrame) -> pd.DataFrame:
    metric_cols = [c for c in offline.columns if c not in ("context", "policy", "seed")]
    rows = {}
    for (context, policy), group in offline.groupby(["context", "policy"], sort=False):
        summary = summarize(group, metric_cols).set_index("metric")
        rows[(context, policy)] = {m: _cell(summary.loc[m]) for m in metric_cols}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = [f"{c} / {p}" for c, p in table.index]
    return table


def _md_table(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(["policy", *map(str, table.columns)]) + " |"
    sep = "|" + "---|" * (len(table.columns) + 1)
    body = ["| " + " | ".join([str(idx), *("—" if pd.isna(v) else str(v) for v in row)]) + " |"
            for idx, row in zip(table.index, table.itertuples(index=False))]
    return "\n".join([header, sep, *body])


def print_table(agg: pd.DataFrame, result: "BenchmarkResult") -> None:
    """A rich table per simulator in the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped to a file or a CI log: no terminal width to respect
        console = Console(width=max(console.width, 160))
    shares = bound_shares(result)
    for sim in result.config.simulators:
        table = wide_table(agg, sim, result.config.metrics, compact=True)
        if not len(table):
            continue
        rich_table = Table(title=f"{sim}: mean ±95% CI half-width over {result.config.seeds} seeds")
        rich_table.add_column("policy", style="bold", no_wrap=True)
        for col in table.columns:
            rich_table.add_column(SHORT_NAMES.get(col, col), justify="right")
        for idx, row in zip(table.index, table.itertuples(index=False)):
            rich_table.add_row(str(idx), *("—" if pd.isna(v) else str(v) for v in row))
        console.print(rich_table)
        mine = shares[(shares["simulator"] == sim) & ~shares["policy"].isin([MYOPIC_REFERENCE, LONG_HORIZON_REFERENCE])]
        if len(mine):
            cells = ", ".join(f"{row.policy} {_compact(pd.Series(row._asdict()))}"
                              for row in mine.sort_values("mean", ascending=False).itertuples(index=False))
            console.print(f"share of the planner's gain over the oracle, (return − oracle) / (planner − oracle): "
                          f"{cells}")
    if result.missing:
        console.print(f"[yellow]{len(result.missing)} cells unfinished; rerun to complete them.[/yellow]")


def write_tensorboard(result: "BenchmarkResult", log_dir: Path) -> None:
    """Per-seed metric values as scalars ``<simulator>/<metric>/<policy>`` (step = seed)."""
    from torch.utils.tensorboard import SummaryWriter

    table = per_seed(result)
    if table.empty:
        return
    # Derived data: rewritten whole on every report, so a resumed run does not log each value twice.
    shutil.rmtree(log_dir, ignore_errors=True)
    writer = SummaryWriter(str(log_dir))
    try:
        for values in table.to_dict("records"):
            for metric in ALL_METRICS:
                value = values.get(metric)
                if value is not None and np.isfinite(value):
                    writer.add_scalar(f"{values['simulator']}/{metric}/{values['policy']}", float(value),
                                      int(values["seed"]))
    finally:
        writer.close()
