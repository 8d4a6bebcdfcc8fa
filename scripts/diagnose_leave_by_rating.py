"""Why the simulated leave hazard by rating differs from the logged one: the fitted hazard's log-odds split
by feature, on the held-out log's items and on the simulator's, by rating.

For every consumed item at positions 0..``--max-position`` the fitted hazard's log-odds is the intercept
plus one term per feature group (position, rating and shortfall, genre overlap, item popularity, user
activity). The table gives, per rating, the observed leave share (logged; simulated), the hazard's mean
prediction on those items, and each group's mean term on the held-out items and on the simulated ones
(reference policy, as ``recsim fidelity`` runs it). A group whose term differs between the two is a
covariate whose joint distribution with the rating differs between logged and simulated sessions.

    python scripts/diagnose_leave_by_rating.py [--cache-dir DIR] [--users 1000] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

GROUPS = {"position": ("log1p_position", "position_"), "rating": ("rating", "shortfall"), "overlap": ("overlap",),
          "popularity": ("log1p_popularity",), "activity": ("log1p_activity",), "first session": ("first_",)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache-dir", default=None,
                   help="data and model cache (default: $RECSIM_DATA or ~/.cache/recsim-env)")
    p.add_argument("--users", type=int, default=1000, help="simulated sessions (as recsim fidelity's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-position", type=int, default=20)
    p.add_argument("--start-activity", choices=("sessions", "drawn", "total"), default="sessions",
                   help="the simulator's start state (FittedUserModel.start_activity; default: %(default)s)")
    p.add_argument("--log", choices=("later", "train"), default="later",
                   help="logged side: the held-out later log (default) or the training log the hazard was fitted on")
    return p.parse_args(argv)


def group_terms(hazard, design: np.ndarray) -> dict[str, np.ndarray]:
    """Each feature group's term of the log-odds, ``(n,)`` per group."""
    terms = design * hazard.coefficients
    return {group: terms[:, [i for i, name in enumerate(hazard.feature_names) if name.startswith(prefixes)]].sum(axis=1)
            for group, prefixes in GROUPS.items()}


def simulated_rows(model, users: int, seed: int):
    """(position, rating, overlap, popularity, activity, ended) of every item of reference-policy sessions."""
    from recsim_env.evaluation.fidelity_longterm import simulated_items
    from recsim_env.fit.calibration import simulate_sessions
    from recsim_env.fit.leave import session_overlap

    start = model.sample(users, np.random.default_rng(seed))  # simulate_sessions samples these first
    rollout = simulate_sessions(model, users, np.random.default_rng(seed), record=True)
    position, rating, ended = simulated_items(rollout)
    lengths = np.array([len(c) for c in rollout.consumed])
    items = np.concatenate(rollout.consumed)
    hazard = model.leave
    overlap = session_overlap(model.arrays.item_genres.astype(np.float64), items, position, hazard.overlap_decay)
    activity = start.activity[np.repeat(np.arange(users), lengths)]  # the start state's: one session each
    return position, rating, overlap, hazard.item_counts[items], activity, ended


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from recsim_env.fit.datasets import movielens_splits, movielens_user_model
    from recsim_env.fit.leave import LeaveConfig, leave_inputs

    model, _ = movielens_user_model(cache_dir=args.cache_dir)
    model = model.with_start_activity(args.start_activity)
    hazard = model.leave
    train, later = movielens_splits(args.cache_dir)
    config = LeaveConfig(gap_seconds=hazard.gap_seconds, like_threshold=hazard.like_threshold,
                         overlap_decay=hazard.overlap_decay, position_bins=hazard.position_bins)
    if args.log == "train":
        later = train
        inputs = leave_inputs(train, config, hazard.item_counts)  # activity: the user's rows before the session
    else:
        inputs = leave_inputs(later, config, hazard.item_counts, hazard.user_counts)
    keep = inputs.observed & (inputs.position <= args.max_position)
    logged = (inputs.position[keep], inputs.rating[keep], inputs.overlap[keep], inputs.popularity[keep],
              inputs.activity[keep], inputs.ended[keep])
    simulated = simulated_rows(model, args.users, args.seed)
    simulated = tuple(column[simulated[0] <= args.max_position] for column in simulated)
    sides = {}
    for side, (position, rating, overlap, popularity, activity, ended) in (("logged", logged), ("sim", simulated)):
        design = hazard.features(position, rating, overlap, popularity, activity)
        sides[side] = (rating, ended, hazard.probability(design), group_terms(hazard, design),
                       np.log1p(activity), np.log1p(popularity), position)
    print(f"Logged ({args.log}) items at positions 0-{args.max_position}: {int(keep.sum())}; "
          f"simulated: {len(simulated[0])}\n")
    header = "| rating | leave share logged / sim | fitted hazard logged / sim | " + " | ".join(
        f"{g} term logged / sim" for g in GROUPS) + " |"
    print(header + "\n|" + "---|" * (3 + len(GROUPS)))
    for value in np.unique(sides["logged"][0]):
        cells = []
        at = {side: sides[side][0] == value for side in sides}
        for index in (1, 2):
            cells.append(" / ".join(f"{sides[side][index][at[side]].mean():.3f}" for side in sides))
        for group in GROUPS:
            cells.append(" / ".join(f"{sides[side][3][group][at[side]].mean():+.3f}" for side in sides))
        print(f"| {value:g} | " + " | ".join(cells) + " |")
    print("\n| covariate (mean) | logged | simulated |\n|---|---|---|")
    for name, index in (("log1p activity", 4), ("log1p popularity", 5), ("position", 6)):
        print(f"| {name} | {sides['logged'][index].mean():.3f} | {sides['sim'][index].mean():.3f} |")
    rating_corr = {s: np.corrcoef(sides[s][0], sides[s][4])[0, 1] for s in sides}
    pop_corr = {s: np.corrcoef(sides[s][0], sides[s][5])[0, 1] for s in sides}
    print(f"| corr(rating, log1p activity) | {rating_corr['logged']:+.3f} | {rating_corr['sim']:+.3f} |")
    print(f"| corr(rating, log1p popularity) | {pop_corr['logged']:+.3f} | {pop_corr['sim']:+.3f} |")
    new = float((hazard.user_counts[later.interactions['user'].to_numpy()[keep]] == 0).mean())
    print(f"\nShare of held-out items from users with no training interactions: {new:.3f}")


if __name__ == "__main__":
    main()
