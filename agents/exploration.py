"""Exploration: a linear epsilon schedule and epsilon-random slates, batched over users."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsim_env.errors import ConfigError


@dataclass(frozen=True)
class LinearSchedule:
    """Epsilon falling linearly from ``start`` to ``end`` over the first ``fraction`` of training."""

    start: float = 1.0
    """Epsilon at step 0."""
    end: float = 0.05
    """Epsilon after the decay."""
    fraction: float = 0.3
    """Share of the total env steps over which epsilon decays."""

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"LinearSchedule.{name} must lie in [0, 1], got {value}")
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"LinearSchedule.fraction must lie in (0, 1], got {self.fraction}")

    def __call__(self, step: float, total_steps: float) -> float:
        # No floor of 1 on the denominator: SlateQ passes progress in [0, 1] with total 1, which a
        # floor of 1 turned into a decay over the whole run instead of the first ``fraction`` of it.
        progress = min(1.0, step / (self.fraction * total_steps)) if total_steps > 0 else 1.0
        return self.start + progress * (self.end - self.start)


def random_slates(n: int, n_candidates: int, slate_size: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, slate_size)`` distinct candidate positions per user, uniformly at random."""
    keys = rng.random((n, n_candidates))
    return np.argpartition(keys, slate_size - 1, axis=1)[:, :slate_size].astype(np.int64)


def epsilon_mix(greedy: np.ndarray, epsilon: float, n_candidates: int, rng: np.random.Generator) -> np.ndarray:
    """Replace each user's greedy slate by a random one with probability ``epsilon``."""
    n, k = greedy.shape
    explore = rng.random(n) < epsilon
    random = random_slates(n, n_candidates, k, rng)
    return np.where(explore[:, None], random, greedy)
