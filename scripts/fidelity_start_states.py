"""The fidelity figures that depend on a simulated session's start state, over several seeds, per start mode.

``recsim fidelity`` runs one seed; its session-length and gap figures move by a few hundredths between
seeds (1,000 simulated sessions). This script repeats the report's rollout (``simulate_sessions`` with the
reference policy and return gaps, 1,000 sessions) for seeds ``0..n-1`` and each start mode of
:attr:`~recsim_env.users.fitted.FittedUserModel.start_activity`, on the cached ML-100K train fit, and prints
each figure's median and range: session-length KS against the held-out and the training log, median
length, the simulated gaps' KS against the training log's Kaplan-Meier curve, ``P(return <= 7 / 30 d)``
beside the Kaplan-Meier ones, and how many ratings 1-5 have the simulated hazard (positions 0-20) inside
the held-out and the training log's 95 % intervals.

    python scripts/fidelity_start_states.py [--cache-dir DIR] [--seeds 5] [--modes sessions,total,drawn]
        [--no-click-utility U]   # e.g. main's calibration (3.5181), to compare against a fit calibrated under it
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

FIGURES = ("session_ks", "session_ks_train", "sim_median_length", "sim_gap_ks_vs_train_km", "sim_return_within_7d",
           "train_km_return_within_7d", "sim_return_within_30d", "train_km_return_within_30d", "rating_in_heldout_ci",
           "rating_in_train_ci", "position_in_heldout_share", "position_in_train_share")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache-dir", default=None,
                   help="data and model cache (default: $RECSIM_DATA or ~/.cache/recsim-env)")
    p.add_argument("--seeds", type=int, default=5, help="rollout seeds 0..n-1 (default: %(default)s)")
    p.add_argument("--modes", default="sessions,total,drawn",
                   help="start modes, comma-separated (default: %(default)s)")
    p.add_argument("--users", type=int, default=1000, help="simulated sessions per seed (as recsim fidelity's)")
    p.add_argument("--no-click-utility", type=float, default=None,
                   help="override the fit's calibrated no-click utility (default: the fit's)")
    return p.parse_args(argv)


def seed_figures(model, train, heldout, seed: int, users: int) -> dict[str, float]:
    """The start-state figures of one rollout (the report's: reference policy, 300-step cap, gaps drawn)."""
    from recsim_env.data.sessions import session_lengths
    from recsim_env.evaluation.fidelity import FidelityConfig
    from recsim_env.evaluation.fidelity_longterm import leave_fidelity, return_fidelity
    from recsim_env.evaluation.metrics import ks_statistic
    from recsim_env.fit.calibration import simulate_sessions

    config = FidelityConfig()
    gap = model.leave.gap_seconds
    rng = np.random.default_rng(seed)
    rollout = simulate_sessions(model, users, rng, step_cap=config.step_cap, record=True, gaps=True)
    simulated = rollout.clicks[rollout.clicks > 0]
    figures = {"session_ks": ks_statistic(simulated, np.minimum(session_lengths(heldout, gap), config.step_cap)),
               "session_ks_train": ks_statistic(simulated, np.minimum(session_lengths(train, gap), config.step_cap)),
               "sim_median_length": float(np.median(simulated))}
    metrics, tables = leave_fidelity(model, train, heldout, rollout, config.max_position)
    rating = tables["rating"]
    figures["rating_in_heldout_ci"] = float(rating["within"].sum())
    figures["rating_in_train_ci"] = float(rating["within_train"].sum())
    figures["position_in_heldout_share"] = metrics["hazard_by_position_within_share"]
    figures["position_in_train_share"] = metrics["hazard_by_position_within_train_share"]
    returns = return_fidelity(model, train, heldout, rollout, rng)
    return figures | {name: returns[name] for name in FIGURES if name in returns}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from recsim_env.fit.datasets import movielens_splits, movielens_user_model

    fitted, _ = movielens_user_model(cache_dir=args.cache_dir)
    if args.no_click_utility is not None:
        fitted = fitted.with_dynamics(no_click_utility=args.no_click_utility)
    train, heldout = movielens_splits(args.cache_dir)
    print(f"no-click utility {fitted.dynamics.no_click_utility:.4f}; {args.seeds} seeds x {args.users} sessions")
    rows = []
    for mode in args.modes.split(","):
        model = fitted.with_start_activity(mode)
        frame = pd.DataFrame([seed_figures(model, train, heldout, seed, args.users) for seed in range(args.seeds)])
        for name in FIGURES:
            values = frame[name]
            rows.append({"mode": mode, "figure": name, "median": values.median(), "min": values.min(),
                         "max": values.max()})
    table = pd.DataFrame(rows).pivot(index="figure", columns="mode").reindex(list(FIGURES))
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
