"""The default training contexts and simulators of ``recsim benchmark``.

- ``ml-100k`` context: MovieLens-100K (fetched on first use), cut in time; policies train on the
  earlier part. Simulators ``ml100k-train`` (fitted on the earlier part: the one agents train in)
  and ``ml100k-later`` (fitted on the later part: users no policy was trained against). Both come
  from :func:`recsim_env.fit.pipeline.movielens_user_model`, which caches the fitted artifacts.
- ``synthetic`` context: :class:`~recsim_env.users.synthetic.SyntheticUserModel` with its default
  ground truth; policies train on a log it generates under a random logging policy and in its env.
  It exposes true utilities, so the ``oracle`` runs there.
- Lifetime simulators ``ml100k-train-lifetime``, ``ml100k-later-lifetime`` and ``synthetic-lifetime``:
  the same users over a horizon of sessions (:class:`~recsim_env.env.lifetime.LifetimeVectorEnv`,
  default :class:`~recsim_env.env.lifetime.LifetimeConfig`: 60 days, no return bonus); an episode's
  return is its clicks over the horizon, and the report adds the long-term metrics
  (:mod:`recsim_env.evaluation.longterm`). They have training contexts of their own,
  ``ml-100k-lifetime`` and ``synthetic-lifetime``, which load the same data as ``ml-100k`` and
  ``synthetic`` (the supervised baselines fit the same log, split and seed) but whose agents train IN
  the lifetime simulator (``ml100k-train-lifetime``, ``synthetic-lifetime``): a lifetime episode runs
  across sessions, so the agents learn what a session does to the next ones, which an agent trained
  on single sessions never sees. ``ml100k-later-lifetime`` stays a simulator no policy trained against.
  The ML-100K ones wrap the same fitted models (their leave hazard ends sessions, their return model
  draws the gaps); the synthetic one is
  :class:`~recsim_env.users.synthetic.ReturningSyntheticUserModel` with its default ground truth
  (sessions end by its known hazard instead of the session simulator's time budget), over the same
  catalogue. They are not in the default set (:func:`default_simulators`): name them with
  ``--simulators``. A run that names session and lifetime simulators of one dataset trains each
  policy once per context (the baselines twice, on the same data).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from recsim_env.benchmark.planner import PlannerConfig
from recsim_env.benchmark.registry import (
    ContextData,
    ContextSpec,
    Simulator,
    SimulatorSpec,
    register_context,
    register_simulator,
)
from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.splits import leave_one_out

logger = logging.getLogger(__name__)

SYNTHETIC_LOG_SEED = 20240
"""Seed of the synthetic context's generated log (fixed: every benchmark seed trains on the same log)."""


def vector_env_factory(user_model: Any, catalog: ItemCatalog, config: Any, lifetime: bool = False):
    """``num_envs -> RecVectorEnv`` over ``user_model`` with the benchmark's slate shape; with ``lifetime``
    a :class:`~recsim_env.env.lifetime.LifetimeVectorEnv` (default horizon) over it."""
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.lifetime import LifetimeVectorEnv
    from recsim_env.env.vector import RecVectorEnv

    env_config = EnvConfig(slate_size=config.slate_size, n_candidates=config.n_candidates)

    def make(num_envs: int) -> RecVectorEnv:
        if lifetime:
            return LifetimeVectorEnv(user_model, catalog, env_config, num_envs=num_envs)
        return RecVectorEnv(user_model, catalog, env_config, num_envs=num_envs)

    return make


# ---------------------------------------------------------------- ML-100K
def load_movielens(config: Any) -> ContextData:
    from recsim_env.fit.datasets import movielens_splits, movielens_user_model

    early, later = movielens_splits()
    catalog = ItemCatalog.from_log(early)
    return ContextData(early, leave_one_out(early), catalog,
                       {"logs": {"train": early, "later": later}, "fit": movielens_user_model})


def _movielens_simulator(name: str, split: str, lifetime: bool = False):
    def build(data: ContextData, config: Any) -> Simulator:
        from recsim_env.data.sessions import session_lengths

        model, catalog = data.resources["fit"](split=split)  # catalog popularity: the part it was fitted on
        log = data.resources["logs"][split]
        # A lifetime episode holds many sessions: no logged session lengths to set beside it.
        return Simulator(name, vector_env_factory(model, catalog, config, lifetime), catalog,
                         logged_session_lengths=None if lifetime else session_lengths(log))

    return build


# ---------------------------------------------------------------- synthetic
def load_synthetic(config: Any) -> ContextData:
    from recsim_env.users.synthetic import SyntheticUserModel

    model = SyntheticUserModel()
    log = model.generate_log(min(config.budgets.synthetic_log_users, model.n_logged_users),
                             np.random.default_rng(SYNTHETIC_LOG_SEED), slate_size=config.slate_size,
                             n_candidates=config.n_candidates)
    logger.info("synthetic context: generated %d interactions of %d users", log.n_interactions, log.n_users)
    return ContextData(log, leave_one_out(log), model.catalog(), {"model": model})


def _build_synthetic(data: ContextData, config: Any) -> Simulator:
    from recsim_env.data.sessions import session_lengths

    model = data.resources["model"]
    return Simulator("synthetic", vector_env_factory(model, data.catalog, config), data.catalog,
                     logged_session_lengths=session_lengths(data.log))


def _build_synthetic_lifetime(data: ContextData, config: Any) -> Simulator:
    from recsim_env.users.synthetic import ReturningSyntheticUserModel

    session_model = data.resources["model"]
    model = ReturningSyntheticUserModel(session_model.config)  # same users and catalogue, known long-term truth
    # No logged session lengths: the context's log was generated by the session model (another leave rule).
    return Simulator("synthetic-lifetime", vector_env_factory(model, data.catalog, config, lifetime=True),
                     data.catalog)


register_context(ContextSpec("ml-100k", load_movielens, train_simulator="ml100k-train",
                             description="MovieLens-100K, earlier part for training"))
register_context(ContextSpec("synthetic", load_synthetic, train_simulator="synthetic",
                             description="synthetic ground-truth users and their generated log"))
FITTED_LIFETIME_PLANNER = PlannerConfig(rollouts=2, horizon=60, weights=(2.0, 0.0, 0.5, 1.0, 4.0),
                                        item_term="expected_rating")
"""The planner's settings in the fitted lifetime simulators: policies greedy on ``true utility + w · expected
rating`` (the fitted return model's rating lever), with the weights of ``scripts/bench_lifetime_levers.py``;
its base ``w = 2`` was the best of them in ``ml100k-train-lifetime`` (BENCHMARKS.md), the others as given.
2 rollouts of 60 steps (the myopic oracle's lifetimes there last 74 steps on average), for cost: one decision
for 100 users takes ~0.6 s on this machine, 4 rollouts of 100 steps ~1.7 s."""

# The lifetime contexts: the same data, but the agents train in the lifetime simulator (module docstring).
register_context(ContextSpec("ml-100k-lifetime", load_movielens, train_simulator="ml100k-train-lifetime",
                             description="MovieLens-100K, earlier part for training; agents train over lifetimes"))
register_context(ContextSpec("synthetic-lifetime", load_synthetic, train_simulator="synthetic-lifetime",
                             description="synthetic users and their generated log; agents train over lifetimes"))
register_simulator(SimulatorSpec("ml100k-train", "ml-100k", _movielens_simulator("ml100k-train", "train"),
                                 has_oracle=True,
                                 description="users fitted on the earlier part of ML-100K (agents train here)"))
register_simulator(SimulatorSpec("ml100k-later", "ml-100k", _movielens_simulator("ml100k-later", "later"),
                                 has_oracle=True,
                                 description="users fitted on the later part of ML-100K (never trained against)"))
register_simulator(SimulatorSpec("synthetic", "synthetic", _build_synthetic, has_oracle=True, planner=PlannerConfig(),
                                 description="synthetic users with known ground truth (item quality: the planner's "
                                             "item term)"))
register_simulator(SimulatorSpec("ml100k-train-lifetime", "ml-100k-lifetime",
                                 _movielens_simulator("ml100k-train-lifetime", "train", lifetime=True), default=False,
                                 lifetime=True, has_oracle=True, planner=FITTED_LIFETIME_PLANNER,
                                 description="ml100k-train's users over 60 days of sessions (fitted leave and "
                                             "return; lifetime agents train here)"))
register_simulator(SimulatorSpec("ml100k-later-lifetime", "ml-100k-lifetime",
                                 _movielens_simulator("ml100k-later-lifetime", "later", lifetime=True), default=False,
                                 lifetime=True, has_oracle=True, planner=FITTED_LIFETIME_PLANNER,
                                 description="ml100k-later's users over 60 days of sessions (fitted leave and "
                                             "return; never trained against)"))
register_simulator(SimulatorSpec("synthetic-lifetime", "synthetic-lifetime", _build_synthetic_lifetime,
                                 has_oracle=True, default=False, lifetime=True, planner=PlannerConfig(),
                                 description="synthetic users over 60 days of sessions (known leave and return; "
                                             "lifetime agents train here)"))
