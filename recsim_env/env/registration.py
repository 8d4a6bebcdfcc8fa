"""Gymnasium ids: ``RecSim/Synthetic-v0`` and ``RecSim/MovieLens100K-v0``, single and natively batched.

``gym.make("recsim_env:RecSim/Synthetic-v0", slate_size=5)`` and
``gym.make_vec("recsim_env:RecSim/Synthetic-v0", num_envs=1024, vectorization_mode="vector_entry_point")``
take any :class:`~recsim_env.env.rec_env.EnvConfig` field as a keyword. The synthetic ids also take
``synthetic`` (a :class:`~recsim_env.users.synthetic.SyntheticConfig` or a dict of its fields); the
MovieLens ids take ``split`` and ``cache_dir``, passed to :func:`recsim_env.fit.pipeline.movielens_user_model`
(fitted on first use, then loaded from the cache).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from recsim_env.data.catalog import ItemCatalog
from recsim_env.env.config import EnvConfig, config_from_dict
from recsim_env.env.rec_env import RecEnv
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.protocols import UserModel
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel

ENV_IDS = ("RecSim/Synthetic-v0", "RecSim/MovieLens100K-v0")


def register_envs() -> None:
    """Register the ids with Gymnasium (idempotent: importing the package twice does not warn)."""
    entry = {"RecSim/Synthetic-v0": "synthetic", "RecSim/MovieLens100K-v0": "movielens"}
    for env_id, name in entry.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"recsim_env.env.registration:make_{name}_env",
                         vector_entry_point=f"recsim_env.env.registration:make_{name}_vector_env")


def synthetic_user_model(synthetic: SyntheticConfig | dict | None = None) -> tuple[UserModel, ItemCatalog]:
    """The synthetic ground-truth model and its catalog."""
    if isinstance(synthetic, dict):
        synthetic = config_from_dict(SyntheticConfig, synthetic, "synthetic (SyntheticConfig fields)")
    if synthetic is not None and not isinstance(synthetic, SyntheticConfig):
        raise ConfigError(f"synthetic must be a SyntheticConfig or a dict of its fields, got {synthetic!r}")
    model = SyntheticUserModel(synthetic)
    return model, model.catalog()


def make_synthetic_env(synthetic: SyntheticConfig | dict | None = None, **config: Any) -> RecEnv:
    model, catalog = synthetic_user_model(synthetic)
    return RecEnv(model, catalog, EnvConfig.from_kwargs(**config))


def make_synthetic_vector_env(num_envs: int = 1, synthetic: SyntheticConfig | dict | None = None,
                              **config: Any) -> RecVectorEnv:
    model, catalog = synthetic_user_model(synthetic)
    return RecVectorEnv(model, catalog, EnvConfig.from_kwargs(**config), num_envs=num_envs)


def _movielens(split: str, cache_dir: Any) -> tuple[UserModel, ItemCatalog]:
    # Imported on use: fitting needs torch and the dataset, which the synthetic ids do not.
    from recsim_env.fit.datasets import movielens_user_model

    return movielens_user_model(split=split, cache_dir=cache_dir)


def make_movielens_env(split: str = "train", cache_dir: Any = None, **config: Any) -> RecEnv:
    env_config = EnvConfig.from_kwargs(**config)  # validate before a possibly long fit
    model, catalog = _movielens(split, cache_dir)
    return RecEnv(model, catalog, env_config)


def make_movielens_vector_env(num_envs: int = 1, split: str = "train", cache_dir: Any = None,
                              **config: Any) -> RecVectorEnv:
    env_config = EnvConfig.from_kwargs(**config)
    model, catalog = _movielens(split, cache_dir)
    return RecVectorEnv(model, catalog, env_config, num_envs=num_envs)
