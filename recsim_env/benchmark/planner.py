"""A long-horizon reference policy: a rollout planner over the simulated users' *true* model and state.

:class:`RolloutPlanner` is what the myopic ``oracle`` is not: a reference for what trading clicks now for
longer sessions can earn. At every step, for every user of the vector env it is bound to, it scores a
few candidates by Monte-Carlo rollouts in a copy of the env's simulation started from the user's true
current state (the env's documented hidden ``user_state`` and its per-user counters), and shows the
first slate of the best one. In a lifetime env (:class:`~recsim_env.env.lifetime.LifetimeVectorEnv`) the
copy is a lifetime simulation: a rollout runs on through the session's end, the drawn gap and the user's
later sessions, up to the horizon of days, so a score counts the clicks of sessions not yet begun.

1. Candidates are policies (parallel rollout, Chang, Givan & Chong 2004): greedy on
   ``true utility + w · item term`` for each weight ``w`` of :attr:`PlannerConfig.weights` (``w = 0`` is
   the myopic oracle's rule; the item term, by default the synthetic users' ``item_quality``, is an item's
   long-term side: in the fitted lifetime simulators the user's expected rating, which their return model
   rewards with a sooner return), each followed for the whole rollout; plus :attr:`PlannerConfig.random_slates` random
   first slates continued by the base policy (the first weight's).
2. Each candidate runs :attr:`PlannerConfig.rollouts` rollouts of :attr:`PlannerConfig.horizon` steps per
   user; its score is the mean summed reward (an episode that ends, by leaving or the step cap, stops
   adding). Every candidate meets the same streams at each rollout step (common random numbers): the
   same future candidate sets, and the same uniforms behind each choice even after two rollouts'
   responses have differed.

Why policies, not one-step deviations from one base policy: in this module's first version (each
candidate slate shown once, then the greedy ``w = 5`` policy; 50 users of ``synthetic``, tuning seed 1000,
4 rollouts to the end) a one-step deviation changed a rollout's return by a fraction of a click while the
return's Monte-Carlo spread over 100 steps is several clicks, so the scores picked noise: 36.0, below
51.4 for the base policy alone. Whole policies differ by tens of clicks where it matters (greedy
``w = 0``: 13.5, ``w = 4``: 52.5 on those users), and switching among them reaches 55.5
(``scripts/bench_planner.py``; BENCHMARKS.md, "Long-horizon bound").

Improvement: with exact scores, following at each state the candidate of highest value from there is at
least as good as every candidate policy (policy switching); ties keep the base policy, listed first.
With Monte-Carlo scores that holds up to their noise, and with a horizon shorter than the episode up to
what lies beyond it.

What it reads: the true model (user model, reward, step cap, candidate generator; in a lifetime env also
the return model and the lifetime config) and each user's true state now (in a lifetime env also their
clock, session count and days since the last session). What it does not read: the real episode's future
randomness. The copy draws from its own streams, spawned from :attr:`PlannerConfig.seed` and the
decision's count, and the real env's streams and state are never touched (``get_state`` reads them without
a draw), so the real trajectory is the one any policy showing the same slates would meet. No real system
has the true model: the planner is a reference, as the oracle is, and runs only where a simulator gives it
settings (``SimulatorSpec.planner``).

Cost: one decision simulates at most ``candidates · rollouts · horizon`` user-steps per user
(:meth:`RolloutPlanner.cost`), batched: all users' rollouts of one candidate are one simulation of
``num_envs · rollouts`` rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsim_env.errors import ConfigError


@dataclass(frozen=True)
class PlannerConfig:
    """What one decision of :class:`RolloutPlanner` simulates (its cost is their product)."""

    rollouts: int = 4
    """Monte-Carlo rollouts per user and candidate."""
    horizon: int = 100
    """Steps each rollout simulates, the decision's own step included (the step cap or more: to the end)."""
    weights: tuple[float, ...] = (4.0, 0.0, 2.0, 3.0, 6.0)
    """The rolled-out policies: greedy on ``true utility + w · item term``, one per weight (0: the myopic
    oracle's rule). The first is the base policy: ties keep it, and the random slates continue with it."""
    random_slates: int = 0
    """Uniformly random first slates per user and step, each continued by the base policy."""
    item_term: str = "item_quality"
    """The user model's attribute read as each candidate's long-term side, needed when a weight is not 0: an
    ``(n_items,)`` array (the synthetic users' ``item_quality``) or a method ``(user_state, items) -> (n, m)``
    (the fitted users' ``expected_rating``, which their return model rewards with sooner returns)."""
    seed: int = 0
    """Seed of the planning streams (the rollouts' candidates and responses, the random slates)."""

    def __post_init__(self) -> None:
        for name in ("rollouts", "horizon", "random_slates", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"PlannerConfig.{name} must be an integer, got {value!r}")
        for name in ("rollouts", "horizon"):
            if getattr(self, name) < 1:
                raise ConfigError(f"PlannerConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.random_slates < 0:
            raise ConfigError(f"PlannerConfig.random_slates must be >= 0, got {self.random_slates!r}")
        if not isinstance(self.weights, tuple):
            raise ConfigError(f"PlannerConfig.weights must be a tuple of numbers, got {self.weights!r}")
        if not self.weights:
            raise ConfigError("PlannerConfig.weights needs at least one weight (the base policy's)")
        for value in self.weights:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"PlannerConfig.weights must be finite numbers, got {value!r}")
        if len(set(self.weights)) < len(self.weights):
            raise ConfigError(f"PlannerConfig.weights repeats a weight: {self.weights!r}")
        if not isinstance(self.item_term, str) or not self.item_term:
            raise ConfigError(f"PlannerConfig.item_term must be an attribute name, got {self.item_term!r}")

    @property
    def n_candidates(self) -> int:
        """Candidates scored per user and step: the policies, then the random slates."""
        return len(self.weights) + self.random_slates


class RolloutPlanner:
    """Rollout (policy-improvement) planner over the true user model; see the module docstring.

    :meth:`bind_env` attaches it to the :class:`~recsim_env.env.vector.RecVectorEnv` whose users it plans
    for (the benchmark calls it before each evaluation); ``predict`` then takes that env's observation.
    After each ``predict``, :attr:`last_scores` holds the ``(num_envs, n_candidates)`` mean rollout returns.

    Examples:
        >>> import numpy as np
        >>> from recsim_env import EnvConfig, RecVectorEnv, SyntheticUserModel
        >>> model = SyntheticUserModel()
        >>> env = RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=4)
        >>> obs, _ = env.reset(seed=0)
        >>> planner = RolloutPlanner(3, PlannerConfig(rollouts=2, horizon=5)).bind_env(env)
        >>> action, _ = planner.predict(obs)
        >>> action.shape, planner.last_scores.shape
        ((4, 3), (4, 5))
    """

    def __init__(self, slate_size: int, config: PlannerConfig | None = None) -> None:
        self.slate_size = slate_size
        self.config = config or PlannerConfig()
        self.env: Any = None
        self.last_scores: np.ndarray | None = None
        self._copy: Any = None
        self._decisions = 0

    def bind_env(self, env: Any) -> "RolloutPlanner":
        """Plan for ``env``'s users from now on: a ``RecVectorEnv`` (sessions) or a ``LifetimeVectorEnv``
        (lifetimes: its rollouts run on through gaps and later sessions) over a model with true utilities."""
        from recsim_env.env.lifetime import LifetimeVectorEnv
        from recsim_env.env.vector import RecVectorEnv

        env = env.unwrapped if hasattr(env, "unwrapped") else env
        if type(env) not in (RecVectorEnv, LifetimeVectorEnv):  # a subclass has dynamics the copy would not
            raise ConfigError(f"RolloutPlanner plans in a RecVectorEnv or a LifetimeVectorEnv, "
                              f"got {type(env).__name__}")
        if not callable(getattr(env.user_model, "true_utilities", None)):
            raise ConfigError(f"RolloutPlanner needs a user model with true_utilities (the true model); "
                              f"{type(env.user_model).__name__} has none")
        if any(self.config.weights) and not self._has_term(env.user_model):
            raise ConfigError(f"PlannerConfig.item_term={self.config.item_term!r} is neither an (n_items,) array nor "
                              f"a method (user_state, items) of {type(env.user_model).__name__}; set every weight "
                              f"to 0 for such a model")
        self.env = env
        self._copy = None
        self._decisions = 0  # each evaluation plans from the same seeds, whatever ran before it
        return self

    def cost(self) -> int:
        """Most user-steps one decision simulates per user: candidates x rollouts x horizon."""
        c = self.config
        return c.n_candidates * c.rollouts * c.horizon

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        if self.env is None:
            raise ConfigError("RolloutPlanner needs bind_env(vector_env) before predict")
        candidates = np.asarray(observation["candidates"], dtype=np.int64)
        real = self.env.get_state()["simulation"]  # copies; reads the real streams' states, draws nothing
        seed = np.random.SeedSequence([self.config.seed, self._decisions])
        self._decisions += 1
        slate_seed, rollout_seed = seed.spawn(2)
        slates = self.candidate_slates(self.env.user_state, candidates, np.random.default_rng(slate_seed))
        # One set of streams per rollout step, the same for every candidate: common random numbers that a
        # response drawn differently at one step (a click in one rollout, none in the other) cannot shift.
        steps = self.rollout_streams(rollout_seed)
        weights = self.config.weights
        continuations = (*weights, *(weights[0],) * self.config.random_slates)
        scores = np.stack([self._score(real, slates[:, j], w, steps) for j, w in enumerate(continuations)], axis=1)
        self.last_scores = scores
        best = np.argmax(scores, axis=1)  # the first maximum: a tie keeps the base policy
        return slates[np.arange(len(best)), best], state

    # --- candidates -----------------------------------------------------------------------------
    def candidate_slates(self, user_state: Any, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n, n_candidates, slate_size)`` first slates: each policy's, then the random ones."""
        greedy = [self._greedy(user_state, candidates, w) for w in self.config.weights]
        n, n_positions = candidates.shape
        uniform = [np.argsort(rng.random((n, n_positions)), axis=1)[:, : self.slate_size]
                   for _ in range(self.config.random_slates)]
        return np.stack(greedy + uniform, axis=1)

    def _greedy(self, user_state: Any, candidates: np.ndarray, weight: float) -> np.ndarray:
        """The slate of the policy greedy on ``true utility + weight · item term``."""
        model = self.env.user_model
        scores = model.true_utilities(user_state, candidates)
        if weight:
            scores += weight * self._term(model, user_state, candidates)
        return greedy_slates(scores, self.slate_size)

    def _has_term(self, model: Any) -> bool:
        term = getattr(model, self.config.item_term, None)
        return callable(term) or (isinstance(term, np.ndarray) and term.shape == (model.n_items,))

    def _term(self, model: Any, user_state: Any, candidates: np.ndarray) -> np.ndarray:
        """``(n, m)`` item term of ``candidates``: the model's per-item array indexed, or its method called."""
        term = getattr(model, self.config.item_term)
        return term(user_state, candidates) if callable(term) else term[candidates]

    # --- rollouts -------------------------------------------------------------------------------
    def rollout_streams(self, seed: np.random.SeedSequence) -> list[dict[str, Any]]:
        """The streams of each rollout step (:attr:`PlannerConfig.horizon` of them), spawned from ``seed``:
        bit-generator states of the users', candidates' and responses' streams and (read by a lifetime
        simulation only) the gaps' and new sessions' ``returns`` stream."""
        return [_stream_states(child) for child in seed.spawn(self.config.horizon)]

    def _score(self, real: dict[str, Any], first: np.ndarray, weight: float,
               steps: list[dict[str, Any]]) -> np.ndarray:
        """``(n,)`` mean return of showing ``first`` (``(n, slate_size)`` positions), then following the
        policy greedy with ``weight``; ``steps[t]`` are the streams of rollout step ``t``."""
        n, rollouts = len(first), self.config.rollouts
        sim = self._simulation(n * rollouts)
        sim.set_state(_tiled_state(real, rollouts, steps[0]))
        total = np.zeros(n * rollouts)
        active = np.ones(n * rollouts, dtype=bool)
        for step, streams in enumerate(steps):
            sim.set_streams(streams)
            # Row r * n + i is rollout r of user i.
            action = np.tile(first, (rollouts, 1)) if step == 0 else self._greedy(sim.state, sim.candidates, weight)
            reward, terminated, truncated, _ = sim.step(action)
            total += np.where(active, reward, 0.0)
            active &= ~(terminated | truncated)
            if not active.any():
                break
        return total.reshape(rollouts, n).mean(axis=0)

    def _simulation(self, rows: int) -> Any:
        """The bound env's simulation core with ``rows`` users (built once per size): same class, model, config,
        reward (and lifetime config). Its users are never replaced: a rollout whose user left for good stops
        counting, as its episode ended."""
        from recsim_env.env.lifetime import LifetimeSimulation, LifetimeVectorEnv
        from recsim_env.env.simulation import SlateSimulation

        if self._copy is None or self._copy.n != rows:
            env = self.env
            if isinstance(env, LifetimeVectorEnv):
                self._copy = LifetimeSimulation(env.user_model, env.catalog, env.config, env.reward_fn, rows,
                                                env.lifetime)
            else:
                self._copy = SlateSimulation(env.user_model, env.catalog, env.config, env.reward_fn, n=rows)
        return self._copy


def greedy_slates(scores: np.ndarray, slate_size: int) -> np.ndarray:
    """``(n, slate_size)`` positions of each row's highest ``scores``, best first (ties: lower position first).

    Examples:
        >>> greedy_slates(np.array([[0.1, 0.9, 0.5, 0.9]]), 2)
        array([[1, 3]])
    """
    if slate_size < scores.shape[1]:  # a partition first: sorting all C candidates per row costs far more
        top = np.argpartition(-scores, slate_size - 1, axis=1)[:, :slate_size]
        top.sort(axis=1)  # ascending positions, so that the stable sort below breaks ties by position
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1).astype(np.int64)
    return np.argsort(-scores, axis=1, kind="stable").astype(np.int64)


def _stream_states(seed: np.random.SeedSequence) -> dict[str, Any]:
    """Bit-generator states of the planning streams spawned from ``seed``: the session simulation's (users,
    candidates, responses), then the lifetime simulation's ``returns`` (spawned last, so that the first three
    are the same whether or not it is)."""
    from recsim_env.env.simulation import RandomStreams

    names = (*RandomStreams._fields, "returns")
    children = seed.spawn(len(names))
    return {name: np.random.default_rng(child).bit_generator.state for name, child in zip(names, children)}


def _tiled_state(real: dict[str, Any], rollouts: int, streams: dict[str, Any]) -> dict[str, Any]:
    """``real`` (a simulation's ``get_state``) with every per-user array repeated ``rollouts`` times along its
    rows (row ``r * n + i`` is user ``i``) and the planning ``streams`` in place of the real ones."""
    def tile(array: np.ndarray | None) -> np.ndarray | None:
        return None if array is None else np.tile(array, (rollouts,) + (1,) * (array.ndim - 1))

    tiled = {"arrays": {name: tile(a) for name, a in real["arrays"].items()},
             "user_state": {name: tile(a) for name, a in real["user_state"].items()},
             "streams": {name: streams[name] for name in real["streams"]}}
    if "lifetime" in real:
        tiled["lifetime"] = {name: tile(a) for name, a in real["lifetime"].items()}
        tiled["returns_stream"] = streams["returns"]
    return tiled
