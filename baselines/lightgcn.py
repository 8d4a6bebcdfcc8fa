"""`LightGCN`: graph convolution without weights or non-linearities (He et al., SIGIR 2020).

The user-item bipartite graph's adjacency ``A`` is normalised symmetrically,
``Â = D^-1/2 A D^-1/2`` (``D`` the node degrees), with users as nodes ``0 .. n_users - 1`` and
items after them. Layer 0 holds the learned embeddings ``E0``; layer ``k`` is ``Â E(k-1)``; a node's
final embedding is the mean of layers ``0 .. K``, and ``score(u, i) = <e_u, e_i>``. Training is BPR
through :func:`baselines.training.train_module` with L2 on the layer-0 embeddings a batch touches.

The graph is each user's distinct training items (a repeat adds no edge); with
``edge_half_life`` an edge weighs less the more items the user consumed after it (the tuned recipe:
on ML-100K the next item follows the last few). Early stopping propagates over the training
interactions only; afterwards the validation interactions join the graph, so the final model's users
carry their latest item through propagation, before any refit epoch. A cold user is scored from the
observation's history as the mean final embedding
of the consumed items, as MF-BPR does with its item vectors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from baselines.base import merge_validation
from baselines.torch_model import TorchRecommender
from baselines.training import LoopConfig, recency_weights
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import Split
from recsim_env.errors import ArtifactError, ConfigError


@dataclass(frozen=True)
class LightGCNConfig:
    """Configuration of :class:`LightGCN`."""

    dim: int = 64
    """Embedding size."""
    layers: int = 3
    """Propagation layers K (0 is matrix factorisation without item biases)."""
    init_std: float = 0.1
    """Standard deviation of the normal initialisation of the layer-0 embeddings."""
    edge_half_life: float | None = None
    """Recency-weighted graph: a (user, item) edge weighs ``0.5 ** (the user's later interactions /
    edge_half_life)`` before normalisation. ``None``: every edge weighs 1 (the paper's graph)."""

    def __post_init__(self) -> None:
        if self.dim < 1 or self.layers < 0 or self.init_std <= 0:
            raise ConfigError(f"LightGCNConfig needs dim >= 1, layers >= 0 and init_std > 0, got {self}")
        if self.edge_half_life is not None and self.edge_half_life <= 0:
            raise ConfigError(f"LightGCNConfig.edge_half_life must be > 0 or None, got {self.edge_half_life}")


def graph_edges(log: InteractionLog, half_life: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A log's distinct (user, item) pairs sorted by user then item (the order of the seen items), and
    each edge's weight: 1, or with ``half_life`` the recency weight of the pair's latest interaction."""
    users = log.interactions["user"].to_numpy(np.int64)
    keys = users * log.n_items + log.interactions["item"].to_numpy(np.int64)
    pairs, row_pair = np.unique(keys, return_inverse=True)
    weights = np.zeros(len(pairs))
    np.maximum.at(weights, row_pair, recency_weights(users, half_life))
    return pairs // log.n_items, pairs % log.n_items, weights


def normalized_adjacency(users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_users: int,
                         n_items: int) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` of the bipartite graph with edges ``(users[e], items[e])`` of weight
    ``weights[e]`` (distinct pairs), ``D`` the weighted degrees, as a ``(n_users + n_items)``-square
    sparse CSR float32 tensor (users first, then items)."""
    user_nodes = np.asarray(users, dtype=np.int64)
    item_nodes = np.asarray(items, dtype=np.int64) + n_users
    rows = np.concatenate([user_nodes, item_nodes])
    cols = np.concatenate([item_nodes, user_nodes])
    edge_weights = np.concatenate([weights, weights]).astype(np.float64)
    degree = np.bincount(rows, weights=edge_weights, minlength=n_users + n_items)
    values = edge_weights / np.sqrt(degree[rows] * degree[cols])  # every node in rows has degree > 0
    size = n_users + n_items
    coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(values).float(),
                                  (size, size), check_invariants=False)
    with warnings.catch_warnings():  # "CSR support is in beta": its product is 4x faster than COO's here
        warnings.simplefilter("ignore", UserWarning)
        return coo.coalesce().to_sparse_csr()


class _SymmetricPropagation(torch.autograd.Function):
    """``Â @ x`` whose gradient is ``Â @ grad``, since ``Â`` is symmetric. Torch's own backward of a
    CSR product builds the transpose at every step: 8x slower on ML-100K (83 vs 10 ms for the 3 layers
    forward and backward)."""

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, torch.sparse.mm(ctx.adjacency, grad)


class LightGCNModule(nn.Module):
    """Layer-0 embeddings and the propagation; the graph is set by :meth:`set_graph`, not learned."""

    def __init__(self, n_users: int, n_items: int, dim: int, layers: int, init_std: float):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        self.layers = layers
        self.adjacency: torch.Tensor | None = None  # not a buffer: rebuilt from the seen items on load
        self._final: tuple[torch.Tensor, torch.Tensor] | None = None

    def set_graph(self, adjacency: torch.Tensor) -> None:
        self.adjacency = adjacency
        self._final = None

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (layer-mean) user and item embeddings."""
        if self.adjacency is None:
            raise ConfigError("LightGCNModule has no graph; call set_graph() first")
        layer = torch.cat([self.user.weight, self.item.weight])
        total = layer
        for _ in range(self.layers):
            layer = _SymmetricPropagation.apply(self.adjacency, layer)
            total = total + layer
        final = total / (self.layers + 1)
        return final[: self.user.num_embeddings], final[self.user.num_embeddings:]

    def final(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`propagate`, cached while in eval mode without gradients (scoring in batches)."""
        if self.training or torch.is_grad_enabled():
            return self.propagate()
        if self._final is None:
            self._final = self.propagate()
        return self._final

    def train(self, mode: bool = True) -> LightGCNModule:
        self._final = None  # the weights change (training) or have just changed (best epoch restored)
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):  # type: ignore[override]
        self._final = None
        return super().load_state_dict(*args, **kwargs)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        user_final, item_final = self.final()
        return (user_final[users][:, None, :] * item_final[items]).sum(-1)

    def l2(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Squared norm of the batch's layer-0 embeddings (the paper's regulariser), per positive."""
        return ((self.user(users) ** 2).sum() + (self.item(items) ** 2).sum()) / len(users)


class LightGCN(TorchRecommender):
    config_class = LightGCNConfig
    can_score_history = True
    loss = "bpr"

    def __init__(self, config: LightGCNConfig | None = None, train: LoopConfig | None = None,
                 slate_size: int | None = None):
        super().__init__(config, train, slate_size)
        self.edge_weights = np.empty(0)
        """Weight of each seen (user, item) pair's edge, in the order of the seen items (saved)."""

    def _build(self, train: InteractionLog) -> nn.Module:
        module = self._build_for(train.n_users, train.n_items)
        module.set_graph(self._adjacency(*graph_edges(train, self.config.edge_half_life)))
        return module

    def _build_for(self, n_users: int, n_items: int) -> nn.Module:
        return LightGCNModule(n_users, n_items, self.config.dim, self.config.layers, self.config.init_std)

    def _adjacency(self, users: np.ndarray, items: np.ndarray, weights: np.ndarray) -> torch.Tensor:
        self.edge_weights = weights
        return normalized_adjacency(users, items, weights, self.n_users, self.n_items)

    def _train(self, train: InteractionLog, split: Split | None, config: LoopConfig) -> None:
        """Early stopping on the training graph, then the validation interactions join the graph (and
        the seen items); ``config.refit_epochs`` further epochs on them, if any, run on the training graph."""
        super()._train(train, split, config)
        if split is None or split.valid.n_interactions == 0:
            return
        merged = merge_validation(split)
        if not config.refit_epochs:
            self._record(merged)  # the refit records it otherwise
        self.module.set_graph(self._adjacency(*graph_edges(merged, self.config.edge_half_life)))

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "edge_weights": self.edge_weights}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        super()._set_state(state)
        weights = state.get("edge_weights")
        if weights is None or len(weights) != len(self._seen_idx):
            got = None if weights is None else len(weights)
            raise ArtifactError(f"LightGCN checkpoint: edge_weights has {got} entries, the seen items "
                                f"{len(self._seen_idx)}")
        users = np.repeat(np.arange(self.n_users), np.diff(self._seen_ptr))
        self.module.set_graph(self._adjacency(users, self._seen_idx, weights))

    @torch.no_grad()
    def _score_history(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        item_final = self.module.final()[1].numpy()
        mask = (history >= 0)[..., None]
        user = (item_final[np.maximum(history, 0)] * mask).sum(1) / np.maximum(mask.sum(1), 1)
        return np.einsum("nd,nmd->nm", user, item_final[items])

    @torch.no_grad()
    def embeddings(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """The final (layer-mean) user and item embeddings: their dot product is the score."""
        self.module.eval()
        user_final, item_final = self.module.final()
        return user_final.numpy().copy(), item_final.numpy().copy(), {}
