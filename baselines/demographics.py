"""`UserFeatureMap`: a starting user vector for a user never seen in training, from their features.

A ridge regression (closed form) from the encoded user features (standardised numeric columns,
one-hot categorical ones: :func:`encode_user_features`, the same encoding the fitted simulator puts in
the observation's ``user_features``) to the user embedding, fitted on the users the model trained on.
For ML-100K that is age, gender and occupation: a new 25-year-old student starts where 25-year-old
students' embeddings lie on average, rather than at "no user" (popularity).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import seen_items
from recsim_env.errors import ConfigError, DataError
from recsim_env.evaluation.offline import SampledRanking
from recsim_env.fit.pipeline import user_feature_matrix

MAX_CATEGORIES = 32
"""Categorical user columns with more levels than this (zip codes, free text) are left out; the
fitted simulator's default (``FitConfig.max_categories``), so an env observation's ``user_features``
has the width the map was fitted on."""


def encode_user_features(users: pd.DataFrame) -> np.ndarray:
    """``(U, F)`` float64 encoded features of a log's users table (``F`` may be 0: no features)."""
    features, _ = user_feature_matrix(users, MAX_CATEGORIES)
    return features.astype(np.float64)


class UserFeatureMap:
    """Ridge map ``features -> embedding`` with an unpenalised intercept (the mean embedding)."""

    def __init__(self, alpha: float = 100.0):
        if not alpha > 0:
            raise ConfigError(f"UserFeatureMap alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.coef = np.empty((0, 0))
        self.intercept = np.empty(0)
        self.feature_mean = np.empty(0)

    @property
    def fitted(self) -> bool:
        return self.intercept.size > 0

    def fit(self, features: np.ndarray, embeddings: np.ndarray) -> "UserFeatureMap":
        """Fit on ``(n, F)`` features and ``(n, d)`` embeddings of the same ``n`` known users."""
        features = np.asarray(features, dtype=np.float64)
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if features.ndim != 2 or embeddings.ndim != 2 or len(features) != len(embeddings):
            raise DataError(f"UserFeatureMap.fit needs (n, F) features and (n, d) embeddings of the same users, "
                            f"got shapes {features.shape} and {embeddings.shape}")
        if len(features) == 0:
            raise DataError("UserFeatureMap.fit got no users to fit on")
        # Centring both sides leaves the intercept out of the penalty: with no informative
        # feature the map predicts the mean known user, never the origin.
        self.feature_mean = features.mean(axis=0)
        self.intercept = embeddings.mean(axis=0)
        centred = features - self.feature_mean
        gram = centred.T @ centred + self.alpha * np.eye(features.shape[1])
        self.coef = np.linalg.solve(gram, centred.T @ (embeddings - self.intercept))
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(n, F)`` features -> ``(n, d)`` starting embeddings."""
        if not self.fitted:
            raise ConfigError("UserFeatureMap is not fitted; call fit() first")
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != len(self.feature_mean):
            raise DataError(f"UserFeatureMap was fitted on {len(self.feature_mean)} features, "
                            f"got {features.shape[1]}")
        return (features - self.feature_mean) @ self.coef + self.intercept

    def state(self) -> dict[str, np.ndarray]:
        """Arrays that :meth:`from_state` rebuilds the map from (for checkpoints)."""
        return {"coef": self.coef, "intercept": self.intercept, "feature_mean": self.feature_mean,
                "alpha": np.array(self.alpha)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> "UserFeatureMap":
        out = cls(float(state["alpha"]))
        out.coef = np.asarray(state["coef"], dtype=np.float64)
        out.intercept = np.asarray(state["intercept"], dtype=np.float64)
        out.feature_mean = np.asarray(state["feature_mean"], dtype=np.float64)
        return out


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
