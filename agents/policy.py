"""The Recommender face of every agent: SB3-style ``predict`` over batched or single observations."""

from __future__ import annotations

from typing import Any

import numpy as np


class SlatePolicy:
    """Mixin: ``predict`` in the shape of SB3's ``PolicyPredictor`` on top of the agent's ``act``."""

    def act(self, obs: dict[str, np.ndarray], explore: bool) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """``(n, k)`` candidate positions for batched observations, ``(k,)`` for a single one."""
        single = np.ndim(observation["candidates"]) == 1
        batch = {k: np.asarray(v)[None] for k, v in observation.items()} if single else observation
        slate = self.act(batch, explore=not deterministic)
        return (slate[0] if single else slate), state
