"""`BPRMF`: matrix factorisation trained with the pairwise BPR loss (Rendle et al. 2009).

``score(u, i) = <p_u, q_i> + b_i``. A cold user is scored from the observation's history as the mean
item vector of the consumed items (``<mean_h q_h, q_i> + b_i``); without history, a user with features
(``cold_user_features``) from ``p_u`` predicted by a ridge map of the features (:mod:`baselines.demographics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from baselines.torch_model import TorchRecommender
from recsim_env.data.log import InteractionLog
from recsim_env.errors import ConfigError


@dataclass(frozen=True)
class MFConfig:
    """Configuration of :class:`BPRMF`."""

    dim: int = 64
    """Embedding size."""
    init_std: float = 0.1
    """Standard deviation of the normal initialisation."""
    cold_user_features: bool = True
    """Score a user without training interactions from a vector predicted from their user features
    (age, gender, occupation...); ``False``: the popularity fallback."""
    cold_user_alpha: float = 100.0
    """Ridge penalty of that feature-to-embedding map."""

    def __post_init__(self) -> None:
        if self.dim < 1 or self.init_std <= 0 or not self.cold_user_alpha > 0:
            raise ConfigError(f"MFConfig needs dim >= 1, init_std > 0 and cold_user_alpha > 0, got {self}")


class MFModule(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        nn.init.zeros_(self.bias.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user(users)[:, None, :] * self.item(items)).sum(-1) + self.bias(items).squeeze(-1)

    def l2(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return ((self.user(users) ** 2).sum() + (self.item(items) ** 2).sum()) / len(users)


class BPRMF(TorchRecommender):
    config_class = MFConfig
    can_score_history = True
    has_user_vectors = True
    loss = "bpr"

    def _build(self, train: InteractionLog) -> nn.Module:
        return self._build_for(train.n_users, train.n_items)

    def _build_for(self, n_users: int, n_items: int) -> nn.Module:
        return MFModule(n_users, n_items, self.config.dim, self.config.init_std)

    @torch.no_grad()
    def _score_history(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = self.module.item.weight.numpy()
        mask = (history >= 0)[..., None]
        user = (q[np.maximum(history, 0)] * mask).sum(1) / np.maximum(mask.sum(1), 1)
        return self._score_vectors(user, items)

    def _user_vectors(self) -> np.ndarray:
        return self.module.user.weight.detach().numpy()

    def _score_vectors(self, vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = self.module.item.weight.detach().numpy()
        return np.einsum("nd,nmd->nm", vectors, q[items]) + self.module.bias.weight.detach().numpy()[items, 0]

    def embeddings(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """User and item embeddings, and the item biases as the one extra weight."""
        m = self.module
        return (
            m.user.weight.detach().numpy(),
            m.item.weight.detach().numpy(),
            {"item_bias": m.bias.weight.detach().numpy()[:, 0]},
        )
