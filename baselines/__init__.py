"""Supervised baselines: the myopic policies RL agents must beat, and the source of warm-start embeddings.

Every model is a :class:`~baselines.base.ScoringRecommender` (fit / score / recommend / predict /
save / load); the torch models share one loop (:mod:`baselines.training`). Named, tuned instances:
:func:`baselines.recipes.build_model`. Offline benchmark: :mod:`baselines.offline_eval`
(``recsim offline-eval``, ``scripts/bench_baselines.py``). Embedding export: :mod:`baselines.embeddings`.
"""

from baselines.base import ScoringRecommender, load_recommender
from baselines.content import ContentConfig, ContentRecommender
from baselines.embeddings import export_embeddings
from baselines.knn import ItemKNN, ItemKNNConfig
from baselines.lightgcn import LightGCN, LightGCNConfig
from baselines.mf import BPRMF, MFConfig
from baselines.ncf import GMF, MLP, NCFConfig, NeuMF
from baselines.popularity import Popularity, RandomConfig, RandomScores
from baselines.recipes import MODELS, build_model
from baselines.training import LoopConfig

__all__ = ["MODELS", "build_model", "ScoringRecommender", "load_recommender", "ContentConfig", "ContentRecommender",
           "export_embeddings", "ItemKNN", "ItemKNNConfig", "LightGCN",
           "LightGCNConfig", "BPRMF", "MFConfig", "GMF", "MLP",
           "NCFConfig", "NeuMF", "Popularity", "RandomConfig", "RandomScores", "LoopConfig"]
