"""Rollouts of a fitted user model under a reference policy, and the calibration that uses them.

The **reference policy** stands in for the unknown logging policy: each step it draws
``n_candidates`` items uniformly and shows the ``slate_size`` of highest utility (a competent myopic
recommender). One quantity is calibrated under it: the no-click utility, so that the click-through
rate equals the target CTR the user gives (the log has no impressions, so no CTR to fit). Session
lengths are not calibrated: sessions end by the fitted leave hazard, and ``recsim fidelity`` compares
the rollouts' lengths and per-item hazard with the logged ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np

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
    left: np.ndarray
    """``(n,)`` bool: the user left (else the session reached the step cap: its end is unseen, censored)."""
    consumed: list[np.ndarray]
    """Consumed items of each session in order (only when asked for)."""
    ratings: list[np.ndarray]
    """Ratings of those items, in the same order (only when asked for)."""
    leave_probabilities: list[np.ndarray]
    """The leave hazard the simulator applied after each of those items, in the same order (only when asked
    for): the expected share of them that end their session, known exactly where the realised share is one
    Bernoulli draw per item (``recsim fidelity`` compares the hazard by rating and position by it)."""
    gap_days: np.ndarray
    """``(n,)`` days to each user's next session, drawn by ``return_gaps`` where the session ended (left
    or capped); empty unless asked for."""


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
                      n_candidates: int = 20, slate_size: int = 10, record: bool = False,
                      gaps: bool = False) -> Rollout:
    """Run ``n_users`` sessions of the reference policy until every user left or ``step_cap`` steps;
    ``record``: keep each session's items, ratings and the leave hazard applied after each; ``gaps``: draw each
    user's return gap where the session ends (the model must have a return model)."""
    state = model.sample(n_users, rng)
    gap_days = np.full(n_users if gaps else 0, np.nan)
    alive = np.arange(n_users)
    clicks = np.zeros(n_users, dtype=np.int64)
    steps = np.zeros(n_users, dtype=np.int64)
    left = np.zeros(n_users, dtype=bool)
    consumed: list[list[int]] = [[] for _ in range(n_users)] if record else []
    ratings: list[list[float]] = [[] for _ in range(n_users)] if record else []
    hazards: list[list[float]] = [[] for _ in range(n_users)] if record else []
    slate_size = min(slate_size, n_candidates)
    valid = np.ones((n_users, slate_size), dtype=bool)
    for _ in range(step_cap):
        slates = reference_slates(model, state, rng, n_candidates, slate_size)
        responses = model.respond(state, slates, valid[: len(alive)], rng)
        clock = state.patience.copy() if record else None
        model.update(state, slates, responses, rng)
        steps[alive] += 1
        hit = responses.choice >= 0
        clicks[alive[hit]] += 1
        if record:
            rows = hit.nonzero()[0]
            applied = spent_probability(clock[rows], state.patience[rows])
            for user, item, rating, hazard in zip(alive[rows], slates[rows, responses.choice[rows]],
                                                  responses.rating[rows, responses.choice[rows]], applied):
                consumed[user].append(int(item))
                ratings[user].append(float(rating))
                hazards[user].append(float(hazard))
        gone = model.left(state)
        left[alive[gone]] = True
        if gaps and gone.any():
            gap_days[alive[gone]] = model.return_gaps(state, gone.nonzero()[0], rng)
        if gone.any():  # compact: departed users cost nothing in later steps
            state, alive = _subset(state, ~gone), alive[~gone]
        if alive.size == 0:
            break
    if gaps and alive.size:  # sessions that reached the cap end there, and a gap follows them too
        gap_days[alive] = model.return_gaps(state, np.arange(alive.size), rng)
    return Rollout(clicks, steps, left, [np.asarray(c, dtype=np.int64) for c in consumed],
                   [np.asarray(r, dtype=np.float64) for r in ratings],
                   [np.asarray(h, dtype=np.float64) for h in hazards], gap_days)


def spent_probability(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``(n,)`` float64 leave probability a step applied, from the leave clock before and after it: the step
    spent ``-log(1 - p)`` of it (:mod:`recsim_env.users.fitted_longterm`), so ``p = 1 - exp(-spent)``. The
    clock is float32: the difference is exact in float64, the step's own rounding is below 1e-7."""
    spent = np.asarray(before, np.float64) - np.asarray(after, np.float64)
    return -np.expm1(-np.maximum(spent, 0.0))


def calibrate_ctr(model: FittedUserModel, target_ctr: float, rng: np.random.Generator,
                  n_users: int = 2000) -> float:
    """The no-click utility giving ``target_ctr`` on first-step reference slates of sampled users."""
    state = model.sample(n_users, rng)
    slates = reference_slates(model, state, rng)
    util = model.utilities(state, slates)
    return calibrate_no_click(util, np.ones_like(util, dtype=bool), target_ctr, model.choice)
