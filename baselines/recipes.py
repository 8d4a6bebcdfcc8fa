"""Named baselines with the settings tuned on ML-100K (BENCHMARKS.md), for the CLI and the scripts.

``build_model(name, seed=..., ...)`` returns an unfitted :class:`~baselines.base.ScoringRecommender`.
Torch models share :data:`TUNED_TRAIN`; each name documents what it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from baselines.base import ScoringRecommender
from baselines.content import ContentConfig, ContentRecommender
from baselines.knn import ItemKNN, ItemKNNConfig
from baselines.lightgcn import LightGCN, LightGCNConfig
from baselines.mf import BPRMF, MFConfig
from baselines.ncf import GMF, MLP, NCFConfig, NeuMF
from baselines.popularity import Popularity, RandomConfig, RandomScores
from baselines.training import LoopConfig
from recsim_env.errors import ConfigError

TUNED_TRAIN = LoopConfig()
"""The training recipe every torch baseline uses here (the LoopConfig defaults are the tuned ones)."""


NCF_LR = 8e-3
"""Adam rate of the history-aware NCF models (GMF / MLP pretraining; NeuMF fine-tunes at half of it):
twice :data:`TUNED_TRAIN`'s, which halves the pretraining epochs on ML-100K at no loss (BENCHMARKS.md)."""


LIGHTGCN_EDGE_HALF_LIFE = 10.0
"""Recency weighting of LightGCN's graph edges (halving every 10 later items of the user), tuned on the
validation items of ML-100K with the rest of :data:`LIGHTGCN_TRAIN` (BENCHMARKS.md)."""

LIGHTGCN_TRAIN = {"lr": 4e-2, "batch_size": 8192}
"""LightGCN's departures from :data:`TUNED_TRAIN`: every batch propagates over the whole graph, so
few large batches at a high rate reach the best validation score soonest (ML-100K: ~8 s)."""


def _lightgcn(train: LoopConfig, plain: bool) -> ScoringRecommender:
    """Tuned LightGCN: recency-weighted edges and :data:`LIGHTGCN_TRAIN`; plain: the paper's graph
    (every edge weighs 1), still at the larger batch and rate (the default 1,024 is ~4x slower)."""
    config = LightGCNConfig(edge_half_life=None if plain else LIGHTGCN_EDGE_HALF_LIFE)
    return LightGCN(config, replace(train, **LIGHTGCN_TRAIN))


def _ncf(cls: type, train: LoopConfig, plain: bool) -> ScoringRecommender:
    """Tuned NCF: user vectors include the recency-weighted history, trained at :data:`NCF_LR`;
    plain: the textbook static user embedding at the shared rate, pretraining until early stopping."""
    if plain:
        return cls(NCFConfig(history=0, pretrain_epochs=train.epochs), train)
    return cls(NCFConfig(), replace(train, lr=NCF_LR))


@dataclass(frozen=True)
class ModelSpec:
    """One named baseline."""

    label: str
    """Display name in tables."""
    description: str
    """One line for ``--help`` and BENCHMARKS.md."""
    build: Callable[[LoopConfig, int, bool], ScoringRecommender]
    """(training config, seed, plain) -> unfitted model; ``plain`` drops the recency weighting."""


MODELS: dict[str, ModelSpec] = {
    "random": ModelSpec("Random", "uniform random scores (chance level)",
                        lambda t, s, p: RandomScores(RandomConfig(seed=s))),
    "popularity": ModelSpec("Popularity", "training interaction counts", lambda t, s, p: Popularity()),
    "itemknn": ModelSpec("Item-KNN", "cosine item-item CF, 200 neighbours, history weight halving every 3 items",
                         lambda t, s, p: ItemKNN(ItemKNNConfig(recency_half_life=None) if p else ItemKNNConfig())),
    "bpr-mf": ModelSpec("MF-BPR", "matrix factorisation (64 factors), BPR loss over 4 sampled negatives",
                        lambda t, s, p: BPRMF(MFConfig(), t)),
    "gmf": ModelSpec("GMF", "NCF generalised matrix factorisation, history-aware user embeddings",
                     lambda t, s, p: _ncf(GMF, t, p)),
    "mlp": ModelSpec("MLP", "NCF multi-layer perceptron, history-aware user embeddings",
                     lambda t, s, p: _ncf(MLP, t, p)),
    "neumf": ModelSpec("NeuMF", "NCF: GMF + MLP initialised from both pretrained, history-aware user embeddings",
                       lambda t, s, p: _ncf(NeuMF, t, p)),
    "lightgcn": ModelSpec("LightGCN", "graph convolution (3 layers, 64 factors) over the user-item graph, "
                          "edges weighted by recency, BPR loss", lambda t, s, p: _lightgcn(t, p)),
    "content": ModelSpec("Content (CNN)", "item text (title, genres, year) CNN, attention over history",
                         # One batch re-encodes the whole catalogue's text, so larger batches pay it less often.
                         lambda t, s, p: ContentRecommender(ContentConfig(), replace(t, batch_size=4096, lr=1e-2))),
    "content-minilm": ModelSpec("Content (MiniLM)",
                                "item text as pretrained all-MiniLM-L6-v2 vectors (the text extra), learned "
                                "projection, attention over history",
                                lambda t, s, p: ContentRecommender(ContentConfig(text_encoder="minilm"),
                                                                   replace(t, batch_size=4096, lr=1e-2))),
}


def build_model(name: str, seed: int = 0, progress: bool = False, log_dir: str | None = None,
                plain: bool = False) -> ScoringRecommender:
    """An unfitted baseline by name (see :data:`MODELS`). ``plain=True`` is the textbook recipe: no
    recency weighting (item-KNN and the torch models), no history in the NCF user vectors and no refit on
    the validation interactions."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    train = replace(TUNED_TRAIN, seed=seed, progress=progress,
                    log_dir=None if log_dir is None else f"{log_dir}/{name}")
    if plain:
        train = replace(train, recency_half_life=None, refit_epochs=0)
    return MODELS[name].build(train, seed, plain)
