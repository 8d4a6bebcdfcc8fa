"""Gymnasium ids over the synthetic and the MovieLens-100K user models, session and lifetime, single and batched.

=====================================  ====================================  ====================================
id                                     user model                            envs (``make`` / ``make_vec``)
=====================================  ====================================  ====================================
``RecSim/Synthetic-v0``                :class:`SyntheticUserModel`           ``RecEnv`` / ``RecVectorEnv``
``RecSim/MovieLens100K-v0``            fitted on ML-100K                     ``RecEnv`` / ``RecVectorEnv``
``RecSim/Synthetic-Lifetime-v0``       :class:`ReturningSyntheticUserModel`  ``LifetimeEnv`` / ``LifetimeVectorEnv``
``RecSim/MovieLens100K-Lifetime-v0``   fitted on ML-100K (returning users)   ``LifetimeEnv`` / ``LifetimeVectorEnv``
=====================================  ====================================  ====================================

``gym.make("recsim_env:RecSim/Synthetic-v0", slate_size=5)`` and
``gym.make_vec("recsim_env:RecSim/Synthetic-v0", num_envs=1024, vectorization_mode="vector_entry_point")``
take any :class:`~recsim_env.env.config.EnvConfig` field as a keyword, the lifetime ids any
:class:`~recsim_env.env.lifetime.LifetimeConfig` field too (``horizon=30, return_bonus=1.0``). The
synthetic ids take ``synthetic`` (a :class:`~recsim_env.users.synthetic.SyntheticConfig` or a dict of its
fields) and ``longterm`` (a :class:`~recsim_env.users.synthetic.LongTermConfig` or a dict: the users'
leave hazard and return gaps; the lifetime id's default is ``LongTermConfig()``, the session id keeps
the v0 time budget without one). The MovieLens ids take ``split`` and ``cache_dir``, passed to
:func:`recsim_env.fit.datasets.movielens_user_model` (fitted on first use, then loaded from the cache).

Every id has the same two entry points, :func:`make_registered_env` and :func:`make_registered_vector_env`;
the id's registered kwargs (``source``, ``lifetime``) say which model and which env they build.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from recsim_env.data.catalog import ItemCatalog
from recsim_env.env.config import EnvConfig, config_from_dict
from recsim_env.env.lifetime import LifetimeConfig, LifetimeEnv, LifetimeVectorEnv, field_names
from recsim_env.env.rec_env import RecEnv
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.protocols import UserModel
from recsim_env.users.synthetic import LongTermConfig, ReturningSyntheticUserModel, SyntheticConfig, SyntheticUserModel

ENV_IDS = ("RecSim/Synthetic-v0", "RecSim/MovieLens100K-v0", "RecSim/Synthetic-Lifetime-v0",
           "RecSim/MovieLens100K-Lifetime-v0")
_SPECS = {env_id: {"source": "movielens" if "MovieLens" in env_id else "synthetic", "lifetime": "Lifetime" in env_id}
          for env_id in ENV_IDS}
"""Each id's registered kwargs: which user model, which env."""
SOURCE_OPTIONS = {"synthetic": ("synthetic", "longterm"), "movielens": ("split", "cache_dir")}
"""Keyword options of each user-model source (the rest are env options)."""


def register_envs() -> None:
    """Register the ids with Gymnasium (idempotent: importing the package twice does not warn)."""
    for env_id, kwargs in _SPECS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="recsim_env.env.registration:make_registered_env",
                         vector_entry_point="recsim_env.env.registration:make_registered_vector_env", kwargs=kwargs)


def synthetic_user_model(synthetic: SyntheticConfig | dict | None = None,
                         longterm: LongTermConfig | dict | None = None) -> tuple[UserModel, ItemCatalog]:
    """The synthetic ground-truth model and its catalog; with ``longterm``, its users come back."""
    if isinstance(synthetic, dict):
        synthetic = config_from_dict(SyntheticConfig, synthetic, "synthetic (SyntheticConfig fields)")
    if synthetic is not None and not isinstance(synthetic, SyntheticConfig):
        raise ConfigError(f"synthetic must be a SyntheticConfig or a dict of its fields, got {synthetic!r}")
    if isinstance(longterm, dict):
        longterm = config_from_dict(LongTermConfig, longterm, "longterm (LongTermConfig fields)")
    if longterm is not None and not isinstance(longterm, LongTermConfig):
        raise ConfigError(f"longterm must be a LongTermConfig or a dict of its fields, got {longterm!r}")
    model = SyntheticUserModel(synthetic) if longterm is None else ReturningSyntheticUserModel(synthetic, longterm)
    return model, model.catalog()


def _movielens(split: str = "train", cache_dir: Any = None) -> tuple[UserModel, ItemCatalog]:
    # Imported on use: fitting needs torch and the dataset, which the synthetic ids do not.
    from recsim_env.fit.datasets import movielens_user_model

    return movielens_user_model(split=split, cache_dir=cache_dir)


def make_registered_env(source: str, lifetime: bool, **options: Any) -> RecEnv | LifetimeEnv:
    """The single env of an id (its registered ``source`` and ``lifetime``) with keyword ``options``."""
    return _build(source, lifetime, None, options)


def make_registered_vector_env(source: str, lifetime: bool, num_envs: int = 1,
                               **options: Any) -> RecVectorEnv | LifetimeVectorEnv:
    """The natively batched env of an id with ``num_envs`` users and keyword ``options``."""
    return _build(source, lifetime, num_envs, options)


def _build(source: str, lifetime: bool, num_envs: int | None, options: dict[str, Any]) -> Any:
    if source not in SOURCE_OPTIONS:
        raise ConfigError(f"unknown user-model source {source!r}; known: {sorted(SOURCE_OPTIONS)}")
    options = dict(options)
    source_options = {name: options.pop(name) for name in SOURCE_OPTIONS[source] if name in options}
    lifetime_config = None
    if lifetime:
        lifetime_config = LifetimeConfig.coerce({name: options.pop(name) for name in field_names() if name in options})
        if source == "synthetic" and source_options.get("longterm") is None:
            source_options["longterm"] = LongTermConfig()
    if lifetime and not set(options) <= set(EnvConfig.__dataclass_fields__):
        raise ConfigError(f"unknown option(s) {sorted(set(options) - set(EnvConfig.__dataclass_fields__))} of a "
                          f"lifetime id; valid: EnvConfig's {sorted(EnvConfig.__dataclass_fields__)}, LifetimeConfig's "
                          f"{sorted(field_names())} and {list(SOURCE_OPTIONS[source])}")
    config = EnvConfig.from_kwargs(**options)  # names a bad option before a possibly long fit
    model, catalog = synthetic_user_model(**source_options) if source == "synthetic" else _movielens(**source_options)
    if lifetime:
        if num_envs is None:
            return LifetimeEnv(model, catalog, config, lifetime_config)
        return LifetimeVectorEnv(model, catalog, config, lifetime_config, num_envs=num_envs)
    if num_envs is None:
        return RecEnv(model, catalog, config)
    return RecVectorEnv(model, catalog, config, num_envs=num_envs)
