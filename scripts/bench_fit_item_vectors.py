"""Item vectors in the fitted user model (issue #14): a known answer on a log driven by hidden item vectors.

Users choose items with probability ``∝ exp(1.5 t_u·z_i / √dim)`` and rate them
``round(3 + t_u·z_i / √dim + noise)``; items carry no genres or year, only the hidden ``z``. The fit is
run with and without ``FitConfig.item_vectors`` (``z`` written as a CSV), and scored on each user's
last 20 % (the tail neither the relevance nor the rating model trains on): rating RMSE and the mean
log-probability of the tail item under a softmax of ``p_u·v_i + b_i`` over all items.

    python scripts/bench_fit_item_vectors.py [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
from recsim_env.fit.config import FitConfig
from recsim_env.fit.pipeline import fit_user_model, tail_mask
from recsim_env.users.fitted import FittedUserModel

HOLDOUT = 0.2
"""Share of each user's sequence held out of the relevance and rating fits."""


def hidden_vector_log(n_users: int = 200, n_items: int = 300, per_user: int = 25, dim: int = 4,
                      seed: int = 0) -> tuple[InteractionLog, pd.DataFrame]:
    """The log (see the module docstring) and the hidden vectors as an item-vectors table."""
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(n_items, dim))
    taste = rng.normal(size=(n_users, dim))
    affinity = taste @ hidden.T / np.sqrt(dim)
    rows = []
    for user in range(n_users):
        weights = np.exp(1.5 * affinity[user])
        picks = rng.choice(n_items, per_user, replace=False, p=weights / weights.sum())
        for step, item in enumerate(picks):
            rating = int(np.clip(np.round(3 + affinity[user, item] + rng.normal(0, 0.3)), 1, 5))
            rows.append((f"u{user}", f"i{item}", 1_000_000 + 3600 * step + user, rating))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    log = InteractionLog.from_frames(frame, mapping=ColumnMapping(rating="rating"), name="hidden-vectors")
    table = pd.DataFrame(hidden, columns=[f"v{j}" for j in range(dim)])
    table.insert(0, "item_id", [f"i{i}" for i in range(n_items)])
    return log, table


def tail_log_likelihood(model: FittedUserModel, log: InteractionLog) -> float:
    """Mean log-probability of each tail item under a softmax over all items of ``p_u·v_i + b_i``."""
    inter = log.interactions
    tail = tail_mask(inter["user"].to_numpy(), HOLDOUT)
    users = inter["user"].to_numpy()[tail]
    items = inter["item"].to_numpy()[tail]
    scores = model.arrays.user_pref[users] @ model.arrays.item_vectors.T + model.arrays.item_bias
    top = scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scores - top).sum(axis=1)) + top[:, 0]
    return float((scores[np.arange(len(items)), items] - log_norm).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)
    print("| seed | rating RMSE, tail: without / with vectors | tail log-likelihood: without / with |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for seed in (int(s) for s in args.seeds.split(",")):
            log, table = hidden_vector_log(seed=seed)
            path = Path(folder) / f"hidden-{seed}.csv"
            table.to_csv(path, index=False)
            fits = [fit_user_model(log, FitConfig.fast(holdout_fraction=HOLDOUT, item_vectors=vectors))
                    for vectors in ("", str(path))]
            print(f"| {seed} | {fits[0].scales.rating_std:.3f} / {fits[1].scales.rating_std:.3f} | "
                  f"{tail_log_likelihood(fits[0], log):.3f} / {tail_log_likelihood(fits[1], log):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
