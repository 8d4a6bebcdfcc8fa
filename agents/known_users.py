"""Which logged users an agent has trained on, and the fallback for the ones it has not.

An agent reads each observation's ``user_index`` through a user-embedding row. A user it never met
in training (a simulator fitted on other logs, a new user) has a row that training never moved: a
random vector for a cold agent, and for a warm-started one whatever the baseline left there —
MF-BPR never updates users absent from its log, so their rows keep their small initial norm among
the trained users' large ones. Measured in the ML-100K simulator fitted on the later 20 % of the log
(85 % of its sessions come from users absent from the earlier 80 % the agents train on), a
warm-started SlateQ clicked 0.38 for users it knew and 0.18 (random's level) for the others.

The fallback: users the agent has not trained on are read as "no user" (index -1), and training shows
the agent "no user" for a share of its transitions (``user_dropout``), so that it learns what to do for
a user it cannot look up and the rest of the state (history, responses, context) carries the decision.

**Demographic start** (agents' ``user_feature_start``, off by default: no measured gain in
``ml100k-later``): a "no user" row whose observation carries user features (ML-100K: age, gender,
occupation) does not read the tower's one spare row but the row a ridge map of the features predicts
from the rows of the users trained on
(:func:`recsim_env.fit.feature_map.ridge_operator`: the map the baselines' new users start from). The
map is linear in the rows, so it is recomputed from the tower's current rows at every forward pass and
trained through: the dropped-out transitions teach the agent to act on these rows, and a new user
starts where trained users like them lie. Without features (or with another width) the spare row
stays the fallback. :meth:`KnownUsers.attach` gives the towers the map; each tower applies it to its
own rows (the online and target networks differ).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recsim_env.errors import ArtifactError
from recsim_env.fit.feature_map import DEFAULT_ALPHA, ridge_operator

MIN_USERS = 2
"""Known users with features needed before the map replaces the spare row (one user has no spread)."""


class KnownUsers:
    """The set of ``user_index`` values seen in training, with the masking of the others.

    :param n_users: size of the logged-user index space (``ObservationSpec.n_users``).
    """

    def __init__(self, n_users: int) -> None:
        self.known = np.zeros(max(int(n_users), 0), dtype=bool)
        self.features = np.zeros((len(self.known), 0), dtype=np.float32)
        """``(n_users, F)`` the user features each known user was observed with (rows of ``has_features``)."""
        self.has_features = np.zeros(len(self.known), dtype=bool)
        self._ridge: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def add(self, user_index: np.ndarray, user_features: np.ndarray | None = None) -> None:
        """Mark the (valid, non-negative) indices in ``user_index`` as trained on, and record the
        ``user_features`` (one row per index) of those not seen with features before."""
        users = np.asarray(user_index).reshape(-1)
        valid = (users >= 0) & (users < len(self.known))
        if user_features is not None and valid.any():
            features = np.asarray(user_features, dtype=np.float32).reshape(len(users), -1)
            if self.features.shape[1] != features.shape[1]:
                self.features = np.zeros((len(self.known), features.shape[1]), dtype=np.float32)
                self.has_features[:] = False
            new = np.zeros(len(users), dtype=bool)
            new[valid] = ~self.has_features[users[valid]]
            if new.any():
                self.features[users[new]] = features[new]
                self.has_features[users[new]] = True
                self._ridge = None
        self.known[users[valid]] = True

    def attach(self, *towers: Any) -> None:
        """Give each :class:`~agents.networks.ItemTower` the demographic start (module docstring)."""
        for tower in towers:
            tower.start = self.start_rows

    def start_rows(self, user_rows: torch.Tensor, features: torch.Tensor) -> torch.Tensor | None:
        """``(b, d)`` starting rows for ``(b, F)`` features from a tower's ``(n_users, d)`` user rows:
        the ridge map of the known users' rows on their features; ``None`` when there is nothing to map
        from (fewer than :data:`MIN_USERS` known users with features, no features, another width)."""
        ridge = self._fit_ridge()
        if ridge is None or features.shape[-1] != ridge[1].shape[0]:
            return None
        index, feature_mean, operator = ridge
        rows = user_rows[index]
        centre = rows.mean(dim=0)
        return (features - feature_mean) @ (operator @ (rows - centre)) + centre

    def _fit_ridge(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(known users with features, their feature mean, the ridge operator), cached until a user joins."""
        if self._ridge is None:
            users = np.flatnonzero(self.known & self.has_features)
            if len(users) < MIN_USERS or self.features.shape[1] == 0:
                return None
            feature_mean, operator = ridge_operator(self.features[users], DEFAULT_ALPHA)
            # Ordinary tensors even when first asked for under inference_mode (SlateQ acts and builds its
            # targets in it): the cache is reused by training's forward passes, which save it for backward.
            with torch.inference_mode(False):
                self._ridge = (torch.from_numpy(users), torch.from_numpy(feature_mean.astype(np.float32)),
                               torch.from_numpy(operator.astype(np.float32)))
        return self._ridge

    def mask(self, obs: dict[str, torch.Tensor], drop: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """``obs`` with ``user_index`` set to -1 for unknown users and for the rows where ``drop`` is
        True (training's user dropout); a new dict, the input is not modified."""
        users = obs["user_index"]
        flat = users.reshape(-1).numpy()
        in_range = (flat >= 0) & (flat < len(self.known))
        # Look up only the in-range rows: with no logged users (a model of one's own, n_users == 0)
        # the table is empty and even a placeholder index would be out of bounds.
        keep = np.zeros(len(flat), dtype=bool)
        keep[in_range] = self.known[flat[in_range]]
        if drop is not None:
            keep &= ~np.asarray(drop, dtype=bool).reshape(-1)
        if keep.all() or not (flat >= 0).any():
            return obs
        out = dict(obs)
        out["user_index"] = torch.from_numpy(np.where(keep, flat, -1).reshape(tuple(users.shape)))
        return out

    @staticmethod
    def draw_drop(n: int, dropout: float, rng: np.random.Generator) -> np.ndarray | None:
        """Rows to show as "no user" in one training batch (``None`` when ``dropout`` is 0)."""
        return rng.random(n) < dropout if dropout > 0.0 else None

    def state_dict(self) -> dict[str, Any]:
        return {"known": self.known.copy(), "features": self.features.copy(), "has_features": self.has_features.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        known = np.asarray(state["known"], dtype=bool)
        if known.shape != self.known.shape:
            raise ArtifactError(f"known-users table has {len(known)} users, the agent's env {len(self.known)}")
        self.known = known.copy()
        # Checkpoints written before the demographic start hold no features: the spare row serves.
        self.features = np.asarray(state.get("features", np.zeros((len(known), 0))), dtype=np.float32).copy()
        self.has_features = np.asarray(state.get("has_features", np.zeros(len(known))), dtype=bool).copy()
        if self.features.shape[0] != len(known) or self.has_features.shape != known.shape:
            raise ArtifactError(f"known-users features have shape {self.features.shape} for {len(known)} users")
        self._ridge = None
