"""Where a policy's lifetime gain comes from: clicks over the horizon split into sessions, their length
and the clicks per step, each against the best myopic policy of the simulator.

Over the episodes of one seed (one user each, the same users for every policy: common random numbers)

    lifetime clicks = sessions x steps per session x clicks per step

with every factor pooled over the seed's episodes (sessions per episode, total steps / total sessions,
total clicks / total steps). The ratio of two policies' lifetime clicks is then exactly the product of the
three factors' ratios, so the log ratios add: a policy that keeps users longer in a session, one whose
users come back more often and one that is clicked more per slate show up in different columns.
Across seeds each factor is the geometric mean of the per-seed ratios with a t-interval on the logs
(exponentiated), so the factors' means multiply to the clicks' mean; the difference in lifetime clicks
takes a t-interval of the per-seed paired differences. One seed gives no interval.

The reference is the best *myopic* policy by lifetime clicks: the baselines and the oracle (policies
that rank by the click they expect now), not the RL agents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsim_env.benchmark.defaults import POLICIES
from recsim_env.evaluation import metrics

if TYPE_CHECKING:
    from recsim_env.benchmark.results import BenchmarkResult

FACTORS = ("lifetime_clicks", "sessions", "steps_per_session", "clicks_per_step")
"""The ratios reported, the product of the last three being the first."""
MYOPIC_KINDS = ("baseline", "oracle")
"""Policy kinds that optimise the immediate click (the reference is the best of them)."""


def seed_totals(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per (policy, seed) of one simulator's lifetime episodes: lifetime clicks and sessions per episode,
    steps per session and clicks per step (each pooled over the seed's episodes)."""
    totals = episodes.groupby(["policy", "seed"], sort=False)[["clicks", "session_length", "sessions_per_user"]].mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({"lifetime_clicks": totals["clicks"], "sessions": totals["sessions_per_user"],
                             "steps_per_session": totals["session_length"] / totals["sessions_per_user"],
                             "clicks_per_step": totals["clicks"] / totals["session_length"]})


def myopic_reference(totals: pd.DataFrame) -> str | None:
    """The myopic policy (:data:`MYOPIC_KINDS`) with the most lifetime clicks, or None without one."""
    means = totals["lifetime_clicks"].groupby(level="policy").mean()
    myopic = [p for p in means.index if POLICIES.get(p) is not None and POLICIES[p].kind in MYOPIC_KINDS]
    return str(means[myopic].idxmax()) if myopic else None


def decompose(result: "BenchmarkResult", simulator: str, confidence: float = 0.95) -> pd.DataFrame:
    """One row per policy other than the reference: ``reference``, the lifetime-clicks difference
    ``diff`` (``diff_low``, ``diff_high``) and each factor's ratio ``<factor>`` (``_low``, ``_high``),
    and ``n`` (seeds paired). Empty when the simulator has no lifetime episodes or no myopic policy."""
    episodes = result.episodes
    part = episodes[episodes["simulator"] == simulator] if "simulator" in episodes else episodes.iloc[:0]
    if part.empty or "sessions_per_user" not in part or part["sessions_per_user"].isna().all():
        return pd.DataFrame()
    totals = seed_totals(part)
    reference = myopic_reference(totals)
    if reference is None:
        return pd.DataFrame()
    base = totals.loc[reference]
    rows = []
    for policy in totals.index.get_level_values("policy").unique():
        if policy == reference:
            continue
        mine = totals.loc[policy]
        seeds = mine.index.intersection(base.index)
        row = {"policy": policy, "reference": reference, "n": len(seeds)}
        diff = metrics.mean_confidence_interval((mine.loc[seeds, "lifetime_clicks"]
                                                 - base.loc[seeds, "lifetime_clicks"]).to_numpy(), confidence)
        row.update(zip(("diff", "diff_low", "diff_high"), diff))
        for factor in FACTORS:
            logs = np.log(mine.loc[seeds, factor].to_numpy() / base.loc[seeds, factor].to_numpy())
            row.update(zip((factor, f"{factor}_low", f"{factor}_high"),
                           np.exp(metrics.mean_confidence_interval(logs, confidence))))
        rows.append(row)
    return pd.DataFrame(rows).sort_values("diff", ascending=False, ignore_index=True)
