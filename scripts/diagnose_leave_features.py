"""Which rating features the leave hazard's data support: alternatives to its linear rating and shortfall,
each fitted on the training log as the hazard is and scored by held-out log-loss (with the paired standard
error of the difference to the fitted specification), and the curve each predicts by rating at positions
0..``--max-position`` on the training log's own items beside that log's leave shares and Wilson 95 %
intervals. A specification whose curve is outside the training log's intervals on the very items it was
fitted on cannot bring a simulator driven by it inside them.

    python scripts/diagnose_leave_features.py [--cache-dir DIR] [--max-position 20]
"""

from __future__ import annotations

import argparse

import numpy as np

BINS = ((0, 1), (1, 3), (3, 6), (6, 11))

VARIANTS = {
    "the hazard's features (linear rating + shortfall)": (),
    "without the first session's curve (leave format 4)": ("drop_first",),
    "no rating features": ("drop_rating",),
    "a term per rating level instead": ("drop_rating", "levels"),
    "+ rating x log1p position": ("rating_x_log_position",),
    "+ rating x position bins": ("rating_x_bins",),
    "+ rating and shortfall x position bins": ("rating_x_bins", "shortfall_x_bins"),
    "+ activity bins": ("activity_bins",),
    "+ rating x log1p activity": ("rating_x_activity",),
    "+ rating x bins incl. [11, 21) (edge from the target's window)": ("rating_x_bins", "rating_x_11_21"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache-dir", default=None,
                   help="data and model cache (default: $RECSIM_DATA or ~/.cache/recsim-env)")
    p.add_argument("--max-position", type=int, default=20)
    return p.parse_args(argv)


def design(inputs, names, config, extras: tuple[str, ...]) -> np.ndarray:
    """The fitted hazard's raw design with ``extras`` applied (columns dropped or added)."""
    from recsim_env.fit.leave import raw_design

    keep = [n for n in names if not ("drop_rating" in extras and n in ("rating", "shortfall"))
            and not ("drop_first" in extras and n.startswith("first_"))]
    columns = [raw_design(tuple(keep), inputs.position, inputs.rating, inputs.overlap, inputs.popularity,
                          inputs.activity, config.like_threshold, config.position_bins)]
    rating, activity, position = inputs.rating, inputs.activity, inputs.position
    shortfall = np.maximum(config.like_threshold - rating, 0.0)
    added = {
        "levels": [rating == level for level in (1, 2, 4, 5)],
        "rating_x_log_position": [rating * np.log1p(position)],
        "rating_x_bins": [rating * ((position >= low) & (position < high)) for low, high in BINS],
        "shortfall_x_bins": [shortfall * ((position >= low) & (position < high)) for low, high in BINS],
        "rating_x_11_21": [rating * ((position >= 11) & (position < 21))],
        "activity_bins": [(activity >= low) & (activity < high) for low, high in ((1, 20), (20, 100), (100, np.inf))],
        "rating_x_activity": [rating * np.log1p(activity)],
    }
    for extra in extras:
        columns += [np.asarray(column, np.float64)[:, None] for column in added.get(extra, [])]
    return np.hstack(columns)


def row_losses(probability: np.ndarray, ended: np.ndarray) -> np.ndarray:
    probability = np.clip(probability, 1e-12, 1 - 1e-12)
    return -np.where(ended, np.log(probability), np.log1p(-probability))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from scipy.special import expit

    from recsim_env.fit.datasets import movielens_splits, movielens_user_model
    from recsim_env.fit.leave import (
        LeaveConfig,
        _logistic_newton,
        column_moments,
        feature_names,
        leave_inputs,
        standardise,
        wilson_interval,
    )

    model, _ = movielens_user_model(cache_dir=args.cache_dir)
    hazard = model.leave
    train, later = movielens_splits(args.cache_dir)
    config = LeaveConfig(gap_seconds=hazard.gap_seconds, like_threshold=hazard.like_threshold,
                         overlap_decay=hazard.overlap_decay, position_bins=hazard.position_bins)
    fit_rows = leave_inputs(train, config)
    test_rows = leave_inputs(later, config, hazard.item_counts, hazard.user_counts)
    names = feature_names(config, True)
    train_seen, test_seen = fit_rows.observed, test_rows.observed
    early = train_seen & (fit_rows.position <= args.max_position)
    levels = np.unique(fit_rows.rating[early])
    leaves = np.array([fit_rows.ended[early & (fit_rows.rating == v)].sum() for v in levels])
    at_risk = np.array([(early & (fit_rows.rating == v)).sum() for v in levels])
    low, high = wilson_interval(leaves, at_risk)
    print(f"Training log, positions 0-{args.max_position}, by rating {', '.join(f'{v:g}' for v in levels)}: "
          + " / ".join(f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]" for k, n, lo, hi in zip(leaves, at_risk, low, high)))
    print(f"\n| specification | held-out log-loss | vs fitted (paired SE) | predicted on training items by rating "
          f"(positions 0-{args.max_position}) | inside the training intervals |\n|---|---|---|---|---|")
    reference = None
    for label, extras in VARIANTS.items():
        fit_design = design(fit_rows, names, config, extras)[train_seen]
        mean, scale = column_moments(fit_design)
        scale = np.where(scale > 1e-12, scale, 1.0)
        params, _, _ = _logistic_newton(standardise(fit_design, mean, scale), fit_rows.ended[train_seen].astype(float),
                                        config.l2, config.max_iterations)
        held = standardise(design(test_rows, names, config, extras)[test_seen], mean, scale)
        losses = row_losses(expit(params[0] + held @ params[1:]), test_rows.ended[test_seen])
        reference = losses if reference is None else reference
        difference = losses - reference
        fitted = expit(params[0] + standardise(design(fit_rows, names, config, extras), mean, scale) @ params[1:])
        curve = np.array([fitted[early & (fit_rows.rating == v)].mean() for v in levels])
        inside = int(((curve >= low) & (curve <= high)).sum())
        paired_error = difference.std() / np.sqrt(len(difference))
        print(f"| {label} | {losses.mean():.5f} | {difference.mean():+.5f} ({paired_error:.5f}) "
              f"| {' / '.join(f'{c:.3f}' for c in curve)} | {inside} of {len(levels)} |")


if __name__ == "__main__":
    main()
