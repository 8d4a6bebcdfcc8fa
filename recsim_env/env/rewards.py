"""Reward functions: one scalar per user from a step's :class:`~recsim_env.protocols.Responses`."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from recsim_env.errors import ConfigError
from recsim_env.protocols import Responses


@dataclass(frozen=True)
class RewardWeights:
    """Weights of each response in the reward: ``r = Σ_slots w·(click, like, rating, dwell)``."""

    click: float = 1.0
    """Per click (the default reward: clicks per step)."""
    like: float = 0.0
    """Per liked / converted item."""
    rating: float = 0.0
    """Per rating point of the clicked item."""
    dwell: float = 0.0
    """Per second of dwell time."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"RewardWeights.{f.name} must be a finite number, got {value!r}")

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


class WeightedReward:
    """``RewardFn``: the weighted sum of the per-slot responses, summed over the slate."""

    def __init__(self, weights: RewardWeights | None = None) -> None:
        self.weights = weights or RewardWeights()
        # Only the non-zero terms are computed: the default (clicks) costs one reduction per step.
        self._terms = tuple((name, float(w)) for name, w in self.weights.as_dict().items() if w != 0.0)

    def __call__(self, responses: Responses) -> np.ndarray:
        n = responses.click.shape[0]
        if not self._terms:
            return np.zeros(n, dtype=np.float32)
        name, w = self._terms[0]
        total = getattr(responses, name).sum(axis=1, dtype=np.float32)
        if w != 1.0:  # the default reward (clicks, weight 1) is one reduction
            total *= np.float32(w)
        for name, w in self._terms[1:]:
            total += getattr(responses, name).sum(axis=1, dtype=np.float32) * np.float32(w)
        return total

    def per_slot(self, responses: Any) -> np.ndarray:
        """``(n, k)`` float32 reward earned by each slot: the same weighted responses, not summed over
        the slate (row sums equal :meth:`__call__`). ``responses`` is anything with ``(n, k)``
        ``click``, ``like``, ``rating`` and ``dwell`` (a :class:`Responses`, or an env step's ``info``)."""
        get = responses.get if isinstance(responses, dict) else lambda name: getattr(responses, name)
        click = np.asarray(get("click"), dtype=np.float32)
        total = np.zeros(click.shape, dtype=np.float32)
        for name, w in self._terms:
            total += np.asarray(get(name), dtype=np.float32) * np.float32(w)
        return total

    def __repr__(self) -> str:
        return f"WeightedReward({self.weights!r})"
