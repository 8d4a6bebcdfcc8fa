"""`EnvConfig`: the shape and rules of a recommendation env, and the observation space they imply.

Shared by the single env (:mod:`recsim_env.env.rec_env`), the vector env and the batched simulation
core, so it lives below all three.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from recsim_env.env.candidates import CANDIDATE_KINDS
from recsim_env.env.rewards import RewardWeights
from recsim_env.errors import ConfigError
from recsim_env.protocols import UserModel

DUPLICATE_MODES = ("blank", "error")


def config_from_dict(config_class: type, values: dict, where: str) -> Any:
    """``config_class(**values)`` for a frozen config dataclass, with a :class:`ConfigError` naming
    ``where`` and every key that is not a field (``**`` alone would raise a bare TypeError)."""
    names = [f.name for f in dataclasses.fields(config_class)]
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {unknown}; valid: {names}")
    return config_class(**values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class EnvConfig:
    """Shape and rules of a recommendation env (shared by :class:`RecEnv` and the vector env)."""

    slate_size: int = 10
    """Items shown per step (``k``)."""
    n_candidates: int = 100
    """Candidate items offered to the policy per step (``C``); the action picks positions among them."""
    history_length: int = 10
    """Consumed items kept in the observation (``H``)."""
    step_cap: int = 100
    """Steps after which an episode is truncated."""
    reward: RewardWeights = field(default_factory=RewardWeights)
    """Weights of click / like / rating / dwell in the reward (a dict of them is accepted)."""
    candidates: str = "uniform"
    """Candidate generator: ``uniform``, ``popularity`` or ``mixed`` (see :mod:`recsim_env.env.candidates`)."""
    popularity_share: float = 0.5
    """Share of popularity in the ``mixed`` generator's item weights."""
    include_candidate_features: bool = False
    """Add ``candidate_features`` ``(C, D)`` (the catalog's content features) to the observation."""
    duplicates: str = "blank"
    """A repeated item in a slate: ``blank`` (shown once, later slots empty) or ``error`` (ActionError)."""

    def __post_init__(self) -> None:
        if isinstance(self.reward, dict):
            object.__setattr__(self, "reward", config_from_dict(RewardWeights, self.reward, "EnvConfig.reward"))
        for name in ("slate_size", "n_candidates", "history_length", "step_cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"EnvConfig.{name} must be an integer >= 1, got {value!r}")
        if self.slate_size > self.n_candidates:
            raise ConfigError(f"EnvConfig.slate_size={self.slate_size} exceeds n_candidates={self.n_candidates}")
        if not isinstance(self.reward, RewardWeights):
            raise ConfigError(f"EnvConfig.reward must be RewardWeights or a dict, got {self.reward!r}")
        if self.candidates not in CANDIDATE_KINDS:
            raise ConfigError(f"EnvConfig.candidates must be one of {CANDIDATE_KINDS}, got {self.candidates!r}")
        if not _is_number(self.popularity_share) or not 0.0 <= self.popularity_share <= 1.0:
            raise ConfigError(f"EnvConfig.popularity_share must be a number in [0, 1], got {self.popularity_share!r}")
        if not isinstance(self.include_candidate_features, bool):
            raise ConfigError(f"EnvConfig.include_candidate_features must be a bool, "
                              f"got {self.include_candidate_features!r}")
        if self.duplicates not in DUPLICATE_MODES:
            raise ConfigError(f"EnvConfig.duplicates must be one of {DUPLICATE_MODES}, got {self.duplicates!r}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "EnvConfig":
        """A config from keyword arguments, naming any that is not a field."""
        return cls().with_overrides(**kwargs)

    def with_overrides(self, **kwargs: Any) -> "EnvConfig":
        """A copy with some fields changed, naming any keyword that is not a field (itself when none)."""
        if not kwargs:
            return self
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ConfigError(f"unknown env option(s) {unknown}; valid: {sorted(names)}")
        return dataclasses.replace(self, **kwargs)


def observation_space(user_model: UserModel, config: EnvConfig, n_features: int | None) -> spaces.Dict:
    """The single-user observation space (the contract in the :class:`RecEnv` docstring)."""
    n_items, h, c = user_model.n_items, config.history_length, config.n_candidates
    inf = np.float32(np.inf)
    entries = {
        "user_index": spaces.Box(-1, max(user_model.n_logged_users - 1, -1), (1,), np.int64),
        "user_features": spaces.Box(-inf, inf, (user_model.n_user_features,), np.float32),
        "history_items": spaces.Box(-1, n_items - 1, (h,), np.int64),
        "history_responses": spaces.Box(-inf, inf, (h, 3), np.float32),
        "candidates": spaces.Box(0, n_items - 1, (c,), np.int64),
        "context": spaces.Box(0.0, 1.0, (4,), np.float32),
    }
    if n_features is not None:
        entries["candidate_features"] = spaces.Box(-inf, inf, (c, n_features), np.float32)
    return spaces.Dict(entries)
