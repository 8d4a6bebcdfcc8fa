"""Neural collaborative filtering (He et al. 2017): `GMF`, `MLP` and `NeuMF`.

- GMF: ``h^T (p_u * q_i)``.
- MLP: a ReLU tower over ``[p'_u, q'_i]`` (``layers[0]`` wide, so each embedding is half of it).
- NeuMF: both paths side by side, one output layer over ``[p_u * q_i, tower(...)]``. With
  ``pretrain=True`` it first fits a GMF and an MLP, copies their embeddings and tower, and starts the
  output layer at ``[alpha * h_gmf, (1 - alpha) * h_mlp]``, as in the paper.

All three are trained pointwise with binary cross-entropy and ``n_negatives`` sampled negatives per
positive.

**History-aware user vectors** (``history > 0``, the default; FISM / NAIS style): in each path the user
vector is the user-id embedding plus the recency-weighted mean of that path's item embeddings of the
user's last ``history`` items (weight halving every ``history_halflife`` items; :mod:`baselines.history`).
The history is causal: a training pair sees only the user's items before it; scoring sees the user's
training items during model selection and training + validation items after the refit (the test
item never). ``history=0`` is the textbook NCF (a static user-id embedding).

**Acting in the env** (``predict`` / ``score_observation``), a history-aware model's context is the
logged user's scoring history (none for a cold ``user_index``) followed by the observation's
``history_items`` (the session's clicks, more recent); the last ``history`` of these enter the user
vector with the recency weights, beside the id embedding of a known user. A session that has clicked
nothing is thus scored exactly as ``score(user_index, candidates)``. A cold user with an empty
history, and every cold user of a ``history=0`` model, gets the popularity fallback; with
``cold_user_features=True`` (off by default: it measured no better, see the field) they start instead
from the user vectors (both paths, scoring history included) that a ridge map predicts from their
user features (:class:`baselines.demographics.UserFeatureMap`, fitted on the trained users, as MF-BPR's).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from baselines.history import observation_histories
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
    pretrain_epochs: int = 8
    """NeuMF only: cap on the GMF and MLP pretraining epochs. Fine-tuning starts from good, not fully
    converged, paths; on ML-100K the MLP's validation score creeps up by ~0.001 per epoch after the
    8th, which cost up to 7 more epochs (~5 s) and nothing in the final NeuMF."""
    history: int = 20
    """Last items of a user added (recency-weighted mean of their embeddings) to the user-id embedding in
    both paths; 0 = the textbook static user embedding."""
    history_halflife: float = 3.0
    """A history item's weight halves with every this many more recent items of the user."""
    cold_user_features: bool = False
    """Score a user without training interactions (and, in the env, without clicks yet) from user
    vectors predicted from their user features (age, gender, occupation...); ``False``: popularity.
    Off by default, as measured: on ML-100K's new-user protocol it ranks new users' first items no
    better than popularity (HR@10 0.804 vs 0.806, NDCG@10 0.581 vs 0.617, 5 seeds; NeuMF has no item
    bias, and the mean-like vectors the map predicts score items flatter than popularity does)."""
    cold_user_alpha: float = 100.0
    """Ridge penalty of that feature-to-embedding map."""

    def __post_init__(self) -> None:
        if self.dim < 1 or not self.layers or any(w < 1 for w in self.layers) or self.layers[0] % 2:
            raise ConfigError(f"NCFConfig needs dim >= 1 and positive layers with an even first width, got {self}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.alpha <= 1.0 or self.pretrain_lr_scale <= 0:
            raise ConfigError(f"NCFConfig needs dropout in [0, 1), alpha in [0, 1], pretrain_lr_scale > 0; got {self}")
        if self.pretrain_epochs < 1:
            raise ConfigError(f"NCFConfig.pretrain_epochs must be >= 1, got {self.pretrain_epochs}")
        if not self.cold_user_alpha > 0:
            raise ConfigError(f"NCFConfig.cold_user_alpha must be > 0, got {self.cold_user_alpha}")
        if self.history < 0 or self.history_halflife <= 0:
            raise ConfigError(f"NCFConfig needs history >= 0 and history_halflife > 0, got {self.history}, "
                              f"{self.history_halflife}")


History = tuple[torch.Tensor, torch.Tensor]
"""``(B, H)`` item indices and ``(B, H)`` weights (0 on padding), see :mod:`baselines.history`."""


class NCFModule(nn.Module):
    """One module for the three variants; ``kind`` selects the paths that exist.

    With ``config.history > 0`` it holds each user's scoring history as buffers (``user_history``,
    ``user_history_weights``, set by the training loop through :meth:`set_user_history`), and
    ``forward`` takes an explicit per-row history for training pairs."""

    def __init__(self, kind: str, n_users: int, n_items: int, config: NCFConfig):
        super().__init__()
        self.kind = kind
        self.history_length = config.history
        self.history_halflife = config.history_halflife
        if config.history:
            self.register_buffer("user_history", torch.zeros((n_users, config.history), dtype=torch.int64))
            self.register_buffer("user_history_weights", torch.zeros((n_users, config.history)))
        width = 0
        if kind in ("gmf", "neumf"):
            self.gmf_user = nn.Embedding(n_users, config.dim)
            self.gmf_item = nn.Embedding(n_items, config.dim)
            width += config.dim
        if kind in ("mlp", "neumf"):
            half = config.layers[0] // 2
            self.mlp_user = nn.Embedding(n_users, half)
            self.mlp_item = nn.Embedding(n_items, half)
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

    @torch.no_grad()
    def set_user_history(self, index: np.ndarray, weights: np.ndarray) -> None:
        """Scoring history per user (``(n_users, history)`` each)."""
        self.user_history.copy_(torch.as_tensor(index))
        self.user_history_weights.copy_(torch.as_tensor(weights))

    def user_vectors(self, path: str, users: torch.Tensor, history: History | None,
                     known: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, d)`` user vectors of ``path`` (``"gmf"``/``"mlp"``); ``known=False`` drops the id part."""
        vec = getattr(self, f"{path}_user")(users)
        if known is not None:
            vec = vec * known[:, None]
        if self.history_length:
            idx, w = history if history is not None else (self.user_history[users], self.user_history_weights[users])
            vec = vec + (w.unsqueeze(-1) * getattr(self, f"{path}_item")(idx)).sum(1)
        return vec

    @property
    def paths(self) -> tuple[str, ...]:
        return {"gmf": ("gmf",), "mlp": ("mlp",)}.get(self.kind, ("gmf", "mlp"))

    def features(self, users: torch.Tensor, items: torch.Tensor, history: History | None = None,
                 known: torch.Tensor | None = None) -> torch.Tensor:
        return self.features_from({p: self.user_vectors(p, users, history, known) for p in self.paths}, items)

    def features_from(self, user: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        """The output layer's input from given ``(B, d)`` user vectors per path and ``(B, m)`` items."""
        parts = []
        if "gmf" in user:
            parts.append(user["gmf"][:, None, :] * self.gmf_item(items))
        if "mlp" in user:
            u = user["mlp"][:, None, :].expand(-1, items.shape[1], -1)
            parts.append(self.tower(torch.cat([u, self.mlp_item(items)], dim=-1)))
        return torch.cat(parts, dim=-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor, history: History | None = None,
                known: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.features(users, items, history, known)).squeeze(-1)

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
    has_user_vectors = True

    def _build(self, train: InteractionLog) -> nn.Module:
        return self._build_for(train.n_users, train.n_items)

    def _build_for(self, n_users: int, n_items: int) -> nn.Module:
        return NCFModule(self.kind, n_users, n_items, self.config)

    def score_observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """History-aware models add the observation's ``history_items`` to the context (module docstring)."""
        if not self.config.history or "history_items" not in observation:
            return super().score_observation(observation)
        self._require_fitted()
        cands = np.asarray(observation["candidates"], dtype=np.int64)
        users = np.asarray(observation["user_index"], dtype=np.int64).reshape(len(cands))
        known = self.known_users(users)
        safe_users = np.where(known, users, 0)
        idx, w = observation_histories(self._context(safe_users, known, observation["history_items"]),
                                       self.n_items, self.config.history, self.config.history_halflife)
        valid = (cands >= 0) & (cands < self.n_items)
        with torch.no_grad():
            scores = self.module(
                torch.as_tensor(safe_users),
                torch.as_tensor(np.where(valid, cands, 0)),
                (torch.as_tensor(idx), torch.as_tensor(w)),
                torch.as_tensor(known, dtype=torch.float32),
            )
        scores = scores.numpy().astype(np.float64)
        blind = ~known & (w.sum(axis=1) == 0)  # no clicks to go on: as any cold user (features or popularity)
        if blind.any():
            scores[blind] = super().score_observation({k: np.asarray(v)[blind] for k, v in observation.items()})
        scores[~valid] = -np.inf
        return scores

    def _user_vectors(self) -> np.ndarray:
        """``(n_users, d_gmf + d_mlp)``: each path's effective user vector (id + scoring history), side by side."""
        with torch.no_grad():
            everyone = torch.arange(self.n_users)
            return np.concatenate([self.module.user_vectors(p, everyone, None).numpy() for p in self.module.paths],
                                  axis=1)

    def _score_vectors(self, vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of ``(n, m)`` items from ``(n, d_gmf + d_mlp)`` user vectors (:meth:`_user_vectors`' layout)."""
        widths = {"gmf": self.config.dim, "mlp": self.config.layers[0] // 2}
        cuts = np.cumsum([widths[p] for p in self.module.paths])[:-1]
        parts = np.split(np.asarray(vectors, dtype=np.float32), cuts, axis=1)
        with torch.no_grad():
            user = {p: torch.from_numpy(np.ascontiguousarray(v)) for p, v in zip(self.module.paths, parts)}
            out = self.module.out(self.module.features_from(user, torch.as_tensor(items))).squeeze(-1)
        return out.numpy().astype(np.float64)

    def _context(self, users: np.ndarray, known: np.ndarray, history_items: np.ndarray) -> np.ndarray:
        """Known users' logged history followed by the observed (session) items, -1 padding moved left."""
        observed = np.asarray(history_items, dtype=np.int64).reshape(len(users), -1)
        observed = np.where((observed >= 0) & (observed < self.n_items), observed, -1)
        logged = self.module.user_history[torch.as_tensor(users)].numpy()
        logged = np.where((self.module.user_history_weights[torch.as_tensor(users)].numpy() > 0) & known[:, None],
                          logged, -1)
        both = np.concatenate([logged, observed], axis=1)
        order = np.argsort(both >= 0, axis=1, kind="stable")  # padding first, items keep their order
        return np.take_along_axis(both, order, axis=1)

    def embeddings(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """User/item embeddings (GMF then MLP part, concatenated) and the tower + output weights. The
        user embeddings are the effective ones: id embedding plus the scoring history's part."""
        weights = {k: v.detach().numpy() for k, v in self.module.state_dict().items()
                   if not k.startswith("user_history")}
        paths = self.module.paths
        users = self._user_vectors()
        for p in paths:
            weights.pop(f"{p}_user.weight")
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
        # Only the final model sees validation data (no refit here).
        pre = replace(self.train_config, refit_epochs=0,
                      epochs=min(self.train_config.epochs, self.config.pretrain_epochs))
        gmf = GMF(self.config, pre).fit(data)
        mlp = MLP(self.config, pre).fit(data)
        self.pretrain_reports = (gmf.report, mlp.report)
        torch.manual_seed(self.train_config.seed)
        self.module = self._build(train)
        self._init_from(gmf.module, mlp.module)
        self._train(train, split, replace(self.train_config, lr=self.train_config.lr * self.config.pretrain_lr_scale))

    @torch.no_grad()
    def _init_from(self, gmf: nn.Module, mlp: nn.Module) -> None:
        m = self.module
        a = self.config.alpha
        for name in ("gmf_user", "gmf_item"):
            getattr(m, name).weight.copy_(getattr(gmf, name).weight)
        for name in ("mlp_user", "mlp_item"):
            getattr(m, name).weight.copy_(getattr(mlp, name).weight)
        m.tower.load_state_dict(mlp.tower.state_dict())
        m.out.weight.copy_(torch.cat([a * gmf.out.weight, (1 - a) * mlp.out.weight], dim=1))
        m.out.bias.copy_(a * gmf.out.bias + (1 - a) * mlp.out.bias)
