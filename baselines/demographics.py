"""New users from demographics in the baselines: the feature encoding and the new-user protocol.

:class:`UserFeatureMap` (the ridge map from encoded user features to a starting user vector; its home
is :mod:`recsim_env.fit.feature_map`, shared with the agents) is fitted on the users a model trained
on, from :func:`encode_user_features` (standardised numeric columns, one-hot categorical ones: the
same encoding the fitted simulator puts in the observation's ``user_features``). For ML-100K that is
age, gender and occupation: a new 25-year-old student starts where 25-year-old students' embeddings
lie on average, rather than at "no user" (popularity). :func:`hold_out_users` is the offline
new-user protocol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import seen_items
from recsim_env.errors import ConfigError
from recsim_env.evaluation.offline import SampledRanking
from recsim_env.fit.feature_map import UserFeatureMap
from recsim_env.fit.pipeline import user_feature_matrix

__all__ = ["MAX_CATEGORIES", "UserFeatureMap", "encode_user_features", "hold_out_users"]

MAX_CATEGORIES = 32
"""Categorical user columns with more levels than this (zip codes, free text) are left out; the
fitted simulator's default (``FitConfig.max_categories``), so an env observation's ``user_features``
has the width the map was fitted on."""


def encode_user_features(users: pd.DataFrame) -> np.ndarray:
    """``(U, F)`` float64 encoded features of a log's users table (``F`` may be 0: no features)."""
    features, _ = user_feature_matrix(users, MAX_CATEGORIES)
    return features.astype(np.float64)


def hold_out_users(log: InteractionLog, fraction: float = 0.1, n_negatives: int = 99,
                   seed: int = 0) -> tuple[InteractionLog, SampledRanking]:
    """The new-user protocol: a seeded ``fraction`` of users is held out of training entirely.

    Returns the training log (the other users' interactions; every user stays in the users table, so
    a held-out user keeps their features) and the evaluation: each held-out user's first item (by
    time: what a new user is shown first) ranked among ``n_negatives`` items they never interacted
    with, under the NCF protocol.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction!r}")
    active = np.unique(log.interactions["user"].to_numpy())
    n_new = max(1, int(round(fraction * len(active))))
    new = np.zeros(log.n_users, dtype=bool)
    new[np.random.default_rng([seed, 4]).choice(active, n_new, replace=False)] = True
    inter = log.interactions
    on_new = new[inter["user"].to_numpy()]
    train = log.with_interactions(inter[~on_new], f"{log.name}/known-users")
    first = inter[on_new].groupby("user", sort=True).head(1)  # rows are sorted by user, then time
    test = log.with_interactions(first, f"{log.name}/new-users")
    return train, SampledRanking.build(test, seen_items(log), n_negatives, seed)
