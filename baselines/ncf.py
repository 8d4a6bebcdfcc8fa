"""Neural collaborative filtering (He et al. 2017): `GMF`, `MLP` and `NeuMF`.

- GMF: ``h^T (p_u * q_i)``.
- MLP: a ReLU tower over ``[p'_u, q'_i]`` (``layers[0]`` wide, so each embedding is half of it).
- NeuMF: both paths side by side, one output layer over ``[p_u * q_i, tower(...)]``. With
  ``pretrain=True`` it first fits a GMF and an MLP, copies their embeddings and tower, and starts the
  output layer at ``[alpha * h_gmf, (1 - alpha) * h_mlp]``, as in the paper.

All three are trained pointwise with binary cross-entropy and ``n_negatives`` sampled negatives per
positive. A cold user gets the popularity fallback (the model has no user-free path).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from baselines.torch_model import TorchRecommender
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import Split
from recsim_env.errors import ConfigError

KINDS = ("gmf", "mlp", "neumf")


@dataclass(frozen=True)
class NCFConfig:
    """Configuration of :class:`GMF`, :class:`MLP` and :class:`NeuMF`."""

    dim: int = 32
    """GMF embedding size (predictive factors)."""
    layers: tuple[int, ...] = (64, 32, 16)
    """MLP tower widths; the first is the concatenated user+item embedding."""
    dropout: float = 0.0
    """Dropout after each tower layer."""
    pretrain: bool = True
    """NeuMF only: initialise from a GMF and an MLP fitted first."""
    alpha: float = 0.5
    """NeuMF only: weight of the GMF output layer in the pretrained initialisation."""
    pretrain_lr_scale: float = 0.5
    """NeuMF only: learning rate of the joint fine-tuning relative to the pretraining one."""

    def __post_init__(self) -> None:
        if self.dim < 1 or not self.layers or any(w < 1 for w in self.layers) or self.layers[0] % 2:
            raise ConfigError(f"NCFConfig needs dim >= 1 and positive layers with an even first width, got {self}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.alpha <= 1.0 or self.pretrain_lr_scale <= 0:
            raise ConfigError(f"NCFConfig needs dropout in [0, 1), alpha in [0, 1], pretrain_lr_scale > 0; got {self}")


class NCFModule(nn.Module):
    """One module for the three variants; ``kind`` selects the paths that exist."""

    def __init__(self, kind: str, n_users: int, n_items: int, config: NCFConfig):
        super().__init__()
        self.kind = kind
        width = 0
        if kind in ("gmf", "neumf"):
            self.gmf_user, self.gmf_item = nn.Embedding(n_users, config.dim), nn.Embedding(n_items, config.dim)
            width += config.dim
        if kind in ("mlp", "neumf"):
            half = config.layers[0] // 2
            self.mlp_user, self.mlp_item = nn.Embedding(n_users, half), nn.Embedding(n_items, half)
            blocks: list[nn.Module] = []
            for a, b in zip(config.layers[:-1], config.layers[1:]):
                blocks += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(config.dropout)]
            self.tower = nn.Sequential(*blocks)
            width += config.layers[-1]
        self.out = nn.Linear(width, 1)
        for m in self.modules():
            if isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.01)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.kind != "mlp":
            parts.append(self.gmf_user(users)[:, None, :] * self.gmf_item(items))
        if self.kind != "gmf":
            u = self.mlp_user(users)[:, None, :].expand(-1, items.shape[1], -1)
            parts.append(self.tower(torch.cat([u, self.mlp_item(items)], dim=-1)))
        return torch.cat(parts, dim=-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(users, items)).squeeze(-1)

    def l2(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(())
        for name in ("gmf", "mlp"):
            if hasattr(self, f"{name}_user"):
                total = total + (getattr(self, f"{name}_user")(users) ** 2).sum()
                total = total + (getattr(self, f"{name}_item")(items) ** 2).sum()
        return total / len(users)


class _NCF(TorchRecommender):
    config_class = NCFConfig
    kind = "neumf"

    def _build(self, train: InteractionLog) -> nn.Module:
        return self._build_for(train.n_users, train.n_items)

    def _build_for(self, n_users: int, n_items: int) -> nn.Module:
        return NCFModule(self.kind, n_users, n_items, self.config)

    def embeddings(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """User/item embeddings (GMF then MLP part, concatenated) and the tower + output weights."""
        weights = {k: v.detach().numpy() for k, v in self.module.state_dict().items()}
        paths = [p for p in ("gmf", "mlp") if f"{p}_user.weight" in weights]
        users = np.concatenate([weights.pop(f"{p}_user.weight") for p in paths], axis=1)
        items = np.concatenate([weights.pop(f"{p}_item.weight") for p in paths], axis=1)
        return users, items, weights


class GMF(_NCF):
    kind = "gmf"


class MLP(_NCF):
    kind = "mlp"


class NeuMF(_NCF):
    kind = "neumf"

    def _fit(self, train: InteractionLog, split: Split | None) -> None:
        if not self.config.pretrain:
            super()._fit(train, split)
            return
        data = split if split is not None else train
        pre = replace(self.train_config, refit_epochs=0)  # only the final model sees validation data
        gmf, mlp = GMF(self.config, pre).fit(data), MLP(self.config, pre).fit(data)
        self.pretrain_reports = (gmf.report, mlp.report)
        torch.manual_seed(self.train_config.seed)
        self.module = self._build(train)
        self._init_from(gmf.module, mlp.module)
        self._train(train, split, replace(self.train_config, lr=self.train_config.lr * self.config.pretrain_lr_scale))

    @torch.no_grad()
    def _init_from(self, gmf: nn.Module, mlp: nn.Module) -> None:
        m, a = self.module, self.config.alpha
        for name in ("gmf_user", "gmf_item"):
            getattr(m, name).weight.copy_(getattr(gmf, name).weight)
        for name in ("mlp_user", "mlp_item"):
            getattr(m, name).weight.copy_(getattr(mlp, name).weight)
        m.tower.load_state_dict(mlp.tower.state_dict())
        m.out.weight.copy_(torch.cat([a * gmf.out.weight, (1 - a) * mlp.out.weight], dim=1))
        m.out.bias.copy_(a * gmf.out.bias + (1 - a) * mlp.out.bias)
