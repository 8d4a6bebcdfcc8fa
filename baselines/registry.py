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
from baselines.mf import BPRMF, MFConfig
from baselines.ncf import GMF, MLP, NCFConfig, NeuMF
from baselines.popularity import Popularity, RandomConfig, RandomScores
from baselines.training import TrainConfig
from recsim_env.errors import ConfigError

TUNED_TRAIN = TrainConfig()
"""The training recipe every torch baseline uses here (the TrainConfig defaults are the tuned ones)."""


@dataclass(frozen=True)
class ModelSpec:
    """One named baseline."""

    label: str
    """Display name in tables."""
    description: str
    """One line for ``--help`` and BENCHMARKS.md."""
    build: Callable[[TrainConfig, int], ScoringRecommender]
    """(training config, seed) -> unfitted model."""


MODELS: dict[str, ModelSpec] = {
    "random": ModelSpec("Random", "uniform random scores (chance level)",
                        lambda t, s: RandomScores(RandomConfig(seed=s))),
    "popularity": ModelSpec("Popularity", "training interaction counts", lambda t, s: Popularity()),
    "itemknn": ModelSpec("Item-KNN", "cosine item-item CF, 100 neighbours, recency-weighted history",
                         lambda t, s: ItemKNN(ItemKNNConfig())),
    "bpr-mf": ModelSpec("MF-BPR", "matrix factorisation, BPR loss",
                        lambda t, s: BPRMF(MFConfig(), replace(t, n_negatives=1))),
    "gmf": ModelSpec("GMF", "NCF generalised matrix factorisation", lambda t, s: GMF(NCFConfig(), t)),
    "mlp": ModelSpec("MLP", "NCF multi-layer perceptron", lambda t, s: MLP(NCFConfig(), t)),
    "neumf": ModelSpec("NeuMF", "NCF: GMF + MLP, initialised from both pretrained",
                       lambda t, s: NeuMF(NCFConfig(), t)),
    "content": ModelSpec("Content (CNN)", "item text (title, genres, year) CNN, attention over history",
                         lambda t, s: ContentRecommender(ContentConfig(), t)),
}


def build_model(name: str, seed: int = 0, progress: bool = False, log_dir: str | None = None) -> ScoringRecommender:
    """An unfitted baseline by name (see :data:`MODELS`)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    train = replace(TUNED_TRAIN, seed=seed, progress=progress,
                    log_dir=None if log_dir is None else f"{log_dir}/{name}")
    return MODELS[name].build(train, seed)
