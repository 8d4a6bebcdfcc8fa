"""`RecEnv`: a Gymnasium slate-recommendation env over any `UserModel` — glue, the spec sheet is its docstring."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.env.config import EnvConfig, observation_space
from recsim_env.env.rewards import WeightedReward
from recsim_env.env.simulation import SingleUserSimulation, UserStateView
from recsim_env.errors import ConfigError
from recsim_env.protocols import RewardFn, UserModel


class RecEnv(UserStateView, gym.Env):
    """Slate recommendation to one simulated user at a time.

    ## Description
    Each step the env offers ``n_candidates`` items; the policy orders ``slate_size`` of them into a
    slate; the simulated user (any :class:`~recsim_env.protocols.UserModel`: fitted from logs, the
    synthetic ground-truth model, or your own) clicks at most one, rates it, and their state moves on
    (interest drift, fatigue, patience). The env is glue over the user model, the item catalog, a
    candidate generator and a reward function; it calls the user model exactly as the vector env does,
    with a batch of one user, and keeps its own bookkeeping in plain Python numbers (one user's
    numpy calls would cost more than their arithmetic).

    ## Action Space
    ``MultiDiscrete([n_candidates] * slate_size)``: positions in ``observation["candidates"]``, in
    display order (slot 0 first). A repeated item is shown once: later repeats are empty slots
    (``duplicates="blank"``, the default) or an ``ActionError`` (``duplicates="error"``). An action of
    the wrong shape, a float/NaN, or a position outside ``[0, n_candidates)`` raises ``ActionError``
    naming the slot.

    ## Observation Space
    ``Dict`` of fixed-shape Boxes (``F`` user features, ``H`` history length, ``C`` candidates):

    | key                  | shape    | dtype   | meaning                                                     |
    |----------------------|----------|---------|-------------------------------------------------------------|
    | user_index           | (1,)     | int64   | logged user the simulated user was drawn from (-1: none)    |
    | user_features        | (F,)     | float32 | the user model's observable features                        |
    | history_items        | (H,)     | int64   | last H clicked items, oldest first, left-padded with -1     |
    | history_responses    | (H, 3)   | float32 | [rating, like, dwell] of those items, 0 for padding         |
    | candidates           | (C,)     | int64   | this step's candidate item indices                          |
    | context              | (4,)     | float32 | [step/step_cap, click rate, clicked last step, last rating/max] |
    | candidate_features   | (C, D)   | float32 | only with ``include_candidate_features``: catalog content features |

    ## Rewards
    ``reward_fn(responses)``; by default ``WeightedReward(config.reward)``: the weighted sum over the
    slate of click, like, rating and dwell (default: 1 per click).

    ## Starting State
    ``user_model.sample(1, rng)``: a new user (for fitted models, a logged user at the state before one
    of its training sessions, drawn uniformly over all of them: ``FittedUserModel.start_activity``); empty
    history; fresh candidates. All randomness comes from ``reset(seed=...)``, split with
    ``np.random.SeedSequence(seed).spawn(3)`` into independent streams for users, candidates and
    responses (:class:`~recsim_env.env.simulation.RandomStreams`); ``reset()`` without a seed continues
    them. So two policies run with the same seed meet the same user and the same candidate sets at
    every step until one of the episodes ends (common random numbers); only the responses' stream
    depends on what was shown. ``env.np_random`` (Gymnasium's generator) drives none of the dynamics.

    ## Episode End
    ``terminated``: the user left (``user_model.left``). ``truncated``: ``step_cap`` steps were taken.

    ## Info
    ``step``: per-slot ``click``, ``rating``, ``like``, ``dwell`` (``(slate_size,)`` float32), the
    shown ``slate`` (item indices, ``-1`` for an empty slot) and ``choice`` (slot clicked, ``-1``:
    none). ``reset``: empty.

    ## Arguments
    ``RecEnv(user_model, catalog=None, config=EnvConfig(), reward_fn=None)``, or keyword overrides of
    any :class:`EnvConfig` field. ``gym.make("recsim_env:RecSim/Synthetic-v0", slate_size=5)``;
    :func:`make_env` builds one from an ``InteractionLog`` (fitting a user model) or a ``UserModel``.

    ## Version History
    * v0: initial version.
    * v0, revised (no new id): the reset seed is split into separate user / candidate / response
      streams. Dynamics are unchanged in distribution, so results stay comparable and the id stays
      v0 — Gymnasium likewise kept its ids when it moved seeding to ``reset(seed=)`` and
      ``np.random.Generator`` (0.26) — but a given seed yields a different rollout than in builds
      before the split. The uniform candidate generator keeps fewer fixed item orders (a table of
      ~64K indices, at least 8 orders) so the batched step's gather stays in cache: each item is still
      a candidate with probability ``n_candidates / n_items``; fewer distinct windows share items.

    ## Examples
    >>> from recsim_env import RecEnv, SyntheticUserModel
    >>> model = SyntheticUserModel()
    >>> env = RecEnv(model, model.catalog(), slate_size=3, n_candidates=10)
    >>> obs, info = env.reset(seed=0)
    >>> obs["candidates"].shape, env.action_space
    ((10,), MultiDiscrete([10 10 10]))
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> info["slate"].shape
    (3,)
    """

    metadata = {"render_modes": []}

    def __init__(self, user_model: UserModel, catalog: ItemCatalog | None = None, config: EnvConfig | None = None,
                 reward_fn: RewardFn | None = None, **overrides: Any) -> None:
        config = (config or EnvConfig()).with_overrides(**overrides)
        self.user_model = user_model
        self.catalog = catalog
        self.config = config
        self.reward_fn = reward_fn or WeightedReward(config.reward)
        self._sim = SingleUserSimulation(user_model, catalog, config, self.reward_fn)
        n_features = None if self._sim.item_features is None else self._sim.item_features.shape[1]
        self.observation_space = observation_space(user_model, config, n_features)
        self.action_space = spaces.MultiDiscrete(np.full(config.slate_size, config.n_candidates, dtype=np.int64))
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._sim.reset(seed)
        self._needs_reset = False
        return self._sim.observe_one(), {}

    def step(self, action: Any):
        if self._needs_reset:
            raise gym.error.ResetNeeded("call reset() before step(), and again after the episode ended")
        reward, terminated, truncated, info = self._sim.step(action)
        self._needs_reset = terminated or truncated
        return self._sim.observe_one(), reward, terminated, truncated, info


def make_env(source: InteractionLog | UserModel, catalog: ItemCatalog | None = None,
             reward_fn: RewardFn | None = None, fit_config: Any = None, **config: Any) -> RecEnv:
    """A :class:`RecEnv` over a ``UserModel``, or over one fitted to an ``InteractionLog`` first.

    ``config`` holds :class:`EnvConfig` fields (``slate_size=5, reward={"click": 1, "like": 1}``...).
    A log is fitted with :func:`recsim_env.fit.pipeline.fit_user_model` (``fit_config`` passed through) and
    its items become the catalog.

    Examples:
        >>> from recsim_env import SyntheticUserModel, make_env
        >>> env = make_env(SyntheticUserModel(), slate_size=3, n_candidates=10)  # the model's own catalog
        >>> env.action_space
        MultiDiscrete([10 10 10])
    """
    env_config = EnvConfig.from_kwargs(**config)
    if isinstance(source, InteractionLog):
        # Imported on use: fitting pulls in torch, which a pure simulation run does not need.
        from recsim_env.fit.pipeline import fit_user_model

        model = fit_user_model(source, fit_config) if fit_config is not None else fit_user_model(source)
        catalog = catalog or ItemCatalog.from_log(source)
    elif isinstance(source, UserModel):
        model = source
        if catalog is None and hasattr(source, "catalog") and callable(source.catalog):
            catalog = source.catalog()
    else:
        raise ConfigError(f"make_env needs an InteractionLog or a UserModel, got {type(source).__name__}")
    return RecEnv(model, catalog, env_config, reward_fn)
