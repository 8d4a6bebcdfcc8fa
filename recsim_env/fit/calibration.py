"""Rollouts of a fitted user model under a reference policy, and the calibrations that use them.

The **reference policy** stands in for the unknown logging policy: each step it draws
``n_candidates`` items uniformly and shows the ``slate_size`` of highest utility (a competent myopic
recommender). Two quantities are calibrated under it:

* the no-click utility, so that the click-through rate equals the target CTR the user gives;
* the patience budget scale, so that simulated sessions (clicks per session, sessions with >= 1
  click, both sides capped at ``max_clicks``) match the logged session-length distribution in the
  Kolmogorov-Smirnov sense (a log-spaced grid, then a finer grid around the best point).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np

from recsim_env.evaluation.metrics import ks_statistic
from recsim_env.users.choice import calibrate_no_click
from recsim_env.users.fitted import FittedState, FittedUserModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rollout:
    """What a batch of simulated sessions did."""

    clicks: np.ndarray
    """``(n,)`` items consumed per session."""
    steps: np.ndarray
    """``(n,)`` steps per session (capped at the step cap)."""
    consumed: list[np.ndarray]
    """Consumed items of each session in order (only when asked for)."""


def reference_slates(model: FittedUserModel, state: FittedState, rng: np.random.Generator,
                     n_candidates: int = 20, slate_size: int = 10) -> np.ndarray:
    """``(n, slate_size)`` items: the top-utility ones among uniformly drawn candidates, best first."""
    n = len(state.logged)
    candidates = rng.integers(0, model.n_items, size=(n, n_candidates))
    util = model.utilities(state, candidates)
    top = np.argpartition(-util, slate_size - 1, axis=1)[:, :slate_size]
    order = np.argsort(-np.take_along_axis(util, top, axis=1), axis=1)
    return np.take_along_axis(candidates, np.take_along_axis(top, order, axis=1), axis=1)


def _subset(state: FittedState, keep: np.ndarray) -> FittedState:
    return FittedState(**{f.name: getattr(state, f.name)[keep] for f in fields(FittedState)})


def simulate_sessions(model: FittedUserModel, n_users: int, rng: np.random.Generator, step_cap: int = 300,
                      n_candidates: int = 20, slate_size: int = 10, record: bool = False) -> Rollout:
    """Run ``n_users`` sessions of the reference policy until every user left or ``step_cap`` steps."""
    state = model.sample(n_users, rng)
    alive = np.arange(n_users)
    clicks = np.zeros(n_users, dtype=np.int64)
    steps = np.zeros(n_users, dtype=np.int64)
    consumed: list[list[int]] = [[] for _ in range(n_users)] if record else []
    slate_size = min(slate_size, n_candidates)
    valid = np.ones((n_users, slate_size), dtype=bool)
    for _ in range(step_cap):
        slates = reference_slates(model, state, rng, n_candidates, slate_size)
        responses = model.respond(state, slates, valid[: len(alive)], rng)
        model.update(state, slates, responses, rng)
        steps[alive] += 1
        hit = responses.choice >= 0
        clicks[alive[hit]] += 1
        if record:
            for user, item in zip(alive[hit], slates[hit, responses.choice[hit]]):
                consumed[user].append(int(item))
        stay = ~model.left(state)
        if not stay.all():  # compact: departed users cost nothing in later steps
            state, alive = _subset(state, stay), alive[stay]
        if alive.size == 0:
            break
    return Rollout(clicks, steps, [np.asarray(c, dtype=np.int64) for c in consumed])


def calibrate_ctr(model: FittedUserModel, target_ctr: float, rng: np.random.Generator,
                  n_users: int = 2000) -> float:
    """The no-click utility giving ``target_ctr`` on first-step reference slates of sampled users."""
    state = model.sample(n_users, rng)
    slates = reference_slates(model, state, rng)
    util = model.utilities(state, slates)
    return calibrate_no_click(util, np.ones_like(util, dtype=bool), target_ctr, model.choice)


def session_fit(model: FittedUserModel, logged_lengths: np.ndarray, rng: np.random.Generator,
                n_users: int, step_cap: int) -> float:
    """KS distance between simulated clicks per session and logged session lengths (both capped)."""
    rollout = simulate_sessions(model, n_users, rng, step_cap=step_cap)
    simulated = rollout.clicks[rollout.clicks > 0]
    if simulated.size == 0:
        return 1.0
    return ks_statistic(np.minimum(simulated, step_cap), np.minimum(logged_lengths, step_cap))


def calibrate_budget(model: FittedUserModel, logged_lengths: np.ndarray, seed: int, n_users: int = 1000,
                     step_cap: int = 300) -> tuple[float, float]:
    """(budget scale, KS) minimising the session-length KS; each grid point uses the same seed (CRN)."""

    def ks(scale: float) -> float:
        return session_fit(model.with_dynamics(budget_scale=scale), logged_lengths,
                           np.random.default_rng(seed), n_users, step_cap)

    coarse = np.geomspace(0.25, 8.0, 6)
    scores = [ks(s) for s in coarse]
    best = int(np.argmin(scores))
    lo, hi = coarse[max(best - 1, 0)], coarse[min(best + 1, len(coarse) - 1)]
    fine = np.geomspace(lo, hi, 5)
    fine_scores = [ks(s) for s in fine]
    candidates = list(zip(scores, coarse)) + list(zip(fine_scores, fine))
    score, scale = min(candidates)
    log.info("patience budget scale %.3f (session-length KS %.3f)", scale, score)
    return float(scale), float(score)
