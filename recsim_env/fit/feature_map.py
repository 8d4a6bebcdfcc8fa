"""A starting user vector from user features: the ridge map of the trained users' vectors on their features.

One home for the map shared by the baselines (:mod:`baselines.demographics`: MF-BPR, NCF) and the
agents (:mod:`agents.known_users`). For ML-100K the features are age, gender and occupation (the
fitted simulator's ``user_features`` encoding, :func:`recsim_env.fit.pipeline.user_feature_matrix`):
a new 25-year-old student starts where 25-year-old students' vectors lie on average, rather than at
"no user".

The ridge fit with an unpenalised intercept is linear in the targets: for known users' features ``X``
it is one operator ``H = (Xc'Xc + αI)^-1 Xc'`` (:func:`ridge_operator`), and a new user with features
``f`` starts at ``(f - mean(X)) H (E - mean(E)) + mean(E)`` for any table ``E`` of the known users'
vectors. The agents apply ``H`` to their embedding rows as they train (torch, differentiable); the
baselines fit once on their trained vectors (:class:`UserFeatureMap`).
"""

from __future__ import annotations

import numpy as np

from recsim_env.errors import ConfigError, DataError

DEFAULT_ALPHA = 100.0
"""The ridge penalty of the maps: assumed (MF-BPR's ``cold_user_alpha`` default, used by the agents
as well), not tuned; on standardised and one-hot features it is worth 100 users' weight of evidence."""


def ridge_operator(features: np.ndarray, alpha: float = DEFAULT_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """``(feature_mean (F,), operator (F, n))`` of ``n`` known users' ``(n, F)`` features: the ridge
    coefficients for their centred targets ``E - mean(E)`` are ``operator @ (E - mean(E))``.

    Examples:
        >>> x = np.array([[0.0], [1.0], [2.0]])
        >>> mean, op = ridge_operator(x, alpha=1e-9)
        >>> float(mean[0]), np.round(op @ (np.array([1.0, 3.0, 5.0]) - 3.0), 6).tolist()
        (1.0, [2.0])
    """
    if not alpha > 0:
        raise ConfigError(f"ridge alpha must be > 0, got {alpha!r}")
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) == 0:
        raise DataError(f"a feature map needs (n >= 1, F) features of known users, got shape {features.shape}")
    mean = features.mean(axis=0)
    centred = features - mean
    # Centring both sides leaves the intercept out of the penalty: with no informative feature the
    # map predicts the mean known user, never the origin.
    gram = centred.T @ centred + alpha * np.eye(features.shape[1])
    return mean, np.linalg.solve(gram, centred.T)


class UserFeatureMap:
    """Ridge map ``features -> embedding`` with an unpenalised intercept (the mean embedding)."""

    def __init__(self, alpha: float = DEFAULT_ALPHA):
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
        self.feature_mean, operator = ridge_operator(features, self.alpha)
        self.intercept = embeddings.mean(axis=0)
        self.coef = operator @ (embeddings - self.intercept)
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
