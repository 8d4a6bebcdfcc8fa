"""recsim-env: train and benchmark recommendation policies against users simulated from logged data.

The names users reach for first are here, loaded on first use (PEP 562), so ``import recsim_env``
registers the Gymnasium ids and stays light: it imports neither torch nor Stable-Baselines3.

    >>> from recsim_env import EnvConfig, RecVectorEnv, SyntheticUserModel
    >>> model = SyntheticUserModel()
    >>> venv = RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=4)
    >>> obs, info = venv.reset(seed=0)
    >>> obs["candidates"].shape
    (4, 10)

The stages, in the order data flows through them: :mod:`recsim_env.data` (logs), :mod:`recsim_env.fit`
(logs -> fitted parameters), :mod:`recsim_env.users` (user models), :mod:`recsim_env.env` (Gymnasium
envs and wrappers), :mod:`recsim_env.evaluation` (metrics, rollouts, fidelity),
:mod:`recsim_env.benchmark` (the benchmark harness and its report), :mod:`recsim_env.cli` (``recsim``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recsim_env._lazy import attach

__version__ = "0.1.0"

_EXPORTS = {
    # data
    "InteractionLog": "recsim_env.data.log",
    "ColumnMapping": "recsim_env.data.schema",
    "load_dataset": "recsim_env.data.loaders",
    "load_frames": "recsim_env.data.loaders",
    "leave_one_out": "recsim_env.data.splits",
    "temporal_split": "recsim_env.data.splits",
    "sessionize": "recsim_env.data.sessions",
    "ItemCatalog": "recsim_env.data.catalog",
    # fit
    "fit_user_model": "recsim_env.fit.pipeline",
    "FitConfig": "recsim_env.fit.config",
    # users
    "FittedUserModel": "recsim_env.users.fitted",
    "SyntheticUserModel": "recsim_env.users.synthetic",
    "SyntheticConfig": "recsim_env.users.synthetic",
    "ReturningSyntheticUserModel": "recsim_env.users.synthetic",
    "LongTermConfig": "recsim_env.users.synthetic",
    "PerUserAdapter": "recsim_env.users.adapter",
    "UserResponse": "recsim_env.users.adapter",
    # seams
    "UserModel": "recsim_env.protocols",
    "ReturningUserModel": "recsim_env.protocols",
    "ChoiceModel": "recsim_env.protocols",
    "Recommender": "recsim_env.protocols",
    "RewardFn": "recsim_env.protocols",
    "Responses": "recsim_env.protocols",
    # env
    "RecEnv": "recsim_env.env.rec_env",
    "make_env": "recsim_env.env.rec_env",
    "RecVectorEnv": "recsim_env.env.vector",
    "EnvConfig": "recsim_env.env.config",
    "LifetimeEnv": "recsim_env.env.lifetime",
    "LifetimeVectorEnv": "recsim_env.env.lifetime",
    "LifetimeConfig": "recsim_env.env.lifetime",
    "SingleItemDiscrete": "recsim_env.env.wrappers",
    "FlattenRecObservation": "recsim_env.env.wrappers",
    # evaluation
    "evaluate": "recsim_env.evaluation.rollout",
    "EpisodeStats": "recsim_env.evaluation.rollout",
    # benchmark
    "run_benchmark": "recsim_env.benchmark.run",
    "BenchmarkConfig": "recsim_env.benchmark.config",
    # errors
    "RecSimError": "recsim_env.errors",
    "ConfigError": "recsim_env.errors",
    "DataError": "recsim_env.errors",
    "ActionError": "recsim_env.errors",
    "ArtifactError": "recsim_env.errors",
    "FetchError": "recsim_env.errors",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
__all__ += ["__version__"]


if TYPE_CHECKING:  # static checkers and IDEs see the real names
    from recsim_env.benchmark.config import BenchmarkConfig
    from recsim_env.benchmark.run import run_benchmark
    from recsim_env.data.catalog import ItemCatalog
    from recsim_env.data.loaders import load_dataset, load_frames
    from recsim_env.data.log import InteractionLog
    from recsim_env.data.schema import ColumnMapping
    from recsim_env.data.sessions import sessionize
    from recsim_env.data.splits import leave_one_out, temporal_split
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.lifetime import LifetimeConfig, LifetimeEnv, LifetimeVectorEnv
    from recsim_env.env.rec_env import RecEnv, make_env
    from recsim_env.env.vector import RecVectorEnv
    from recsim_env.env.wrappers import FlattenRecObservation, SingleItemDiscrete
    from recsim_env.errors import (
        ActionError,
        ArtifactError,
        ConfigError,
        DataError,
        FetchError,
        RecSimError,
    )
    from recsim_env.evaluation.rollout import EpisodeStats, evaluate
    from recsim_env.fit.config import FitConfig
    from recsim_env.fit.pipeline import fit_user_model
    from recsim_env.protocols import (
        ChoiceModel,
        Recommender,
        Responses,
        ReturningUserModel,
        RewardFn,
        UserModel,
    )
    from recsim_env.users.adapter import PerUserAdapter, UserResponse
    from recsim_env.users.fitted import FittedUserModel
    from recsim_env.users.synthetic import (
        LongTermConfig,
        ReturningSyntheticUserModel,
        SyntheticConfig,
        SyntheticUserModel,
    )

from recsim_env.env.registration import register_envs  # noqa: E402  (gym.make("recsim_env:...") imports this package)

register_envs()
