"""The fidelity report: how closely a fitted simulator reproduces held-out (temporally later) behaviour.

Measured on the held-out log, each user's simulated state built from their own earlier history:

* **Next item**: each held-out interaction's item is ranked by the simulator's choice utility against
  ``n_negatives`` items the user never interacted with (HR@k, NDCG@k; popularity beside it), and the
  AUC of those scores (per event, averaged).
* **Ratings**: RMSE / MAE of the rating model's mean against held-out ratings (global mean beside it).
* **Choice calibration**: slates of the positive and ``slate_size - 1`` of its negatives in random
  order; the simulator's probability of each slot *given a click* against whether it was the logged
  item: reliability curve and expected calibration error.
* **Sessions**: clicks per simulated session (reference policy, see
  :mod:`recsim_env.fit.calibration`) against logged session lengths (KS statistic), and the share
  of consecutive consumed items sharing a genre, simulated against logged; and the same KS with the
  one assumed leave parameter (no-click leave) at the constant hazard instead of its default.
* **Leaving, returning, provenance** (:mod:`recsim_env.evaluation.fidelity_longterm`): the leave hazard
  by position and rating, logged against fitted and simulated with 95 % intervals; the return model's
  concordance, 7/30-day calibration and gap KS; where every dynamics parameter comes from.
* **Long-horizon headroom**: clicks per episode in the default env of greedy-on-click slates against
  a rating-aware slate heuristic (both with oracle access to the user state).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.data.sessions import session_lengths, sessionize
from recsim_env.data.splits import sample_negatives, seen_items
from recsim_env.errors import ConfigError, DataError
from recsim_env.evaluation.fidelity_longterm import leave_fidelity, provenance, return_fidelity
from recsim_env.evaluation.fidelity_report import FidelityReport
from recsim_env.evaluation.metrics import (
    auc,
    expected_calibration_error,
    hit_rate_at_k,
    ks_statistic,
    ndcg_at_k,
)
from recsim_env.fit.calibration import Rollout, simulate_sessions
from recsim_env.fit.pipeline import sequence_states
from recsim_env.users.fitted import FittedState, FittedUserModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FidelityConfig:
    """Sizes and seed of the fidelity report."""

    k: int = 10
    """Cut-off of HR@k / NDCG@k."""
    n_negatives: int = 99
    """Sampled negatives per held-out interaction."""
    max_events: int = 5000
    """Held-out interactions evaluated at most (a seeded sample)."""
    slate_size: int = 10
    """Slate size of the calibration slates."""
    n_sim_users: int = 1000
    """Simulated sessions compared with logged ones."""
    step_cap: int = 300
    """Step cap of simulated sessions; both length distributions are capped at it."""
    headroom_episodes: int = 1000
    """Episodes per policy in the long-horizon headroom check (0: skip it)."""
    max_position: int = 20
    """Last session position of the leave-hazard tables (by position; by rating over positions up to it)."""
    seed: int = 0
    """Seeds every draw of the report."""

    def __post_init__(self) -> None:
        for name in ("k", "n_negatives", "max_events", "slate_size", "n_sim_users", "step_cap", "max_position"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"FidelityConfig.{name} must be a positive int, got {value!r}")
        if self.headroom_episodes < 0:
            raise ConfigError(f"FidelityConfig.headroom_episodes must be >= 0, got {self.headroom_episodes!r}")
        if self.slate_size > self.n_negatives + 1:
            raise ConfigError(f"FidelityConfig.slate_size ({self.slate_size}) must be <= n_negatives + 1")


def _event_states(model: FittedUserModel, train: InteractionLog, heldout: InteractionLog, rows: np.ndarray,
                  gap: float) -> tuple[FittedState, np.ndarray]:
    """Simulator state just before each sampled held-out interaction (history: training + earlier held-out)."""
    both = train.with_interactions(pd.concat([train.interactions.assign(_held=False),
                                              heldout.interactions.assign(_held=True)]))
    held = np.flatnonzero(both.interactions["_held"].to_numpy())[rows]
    h, f, _ = sequence_states(both, model.arrays.item_vectors, model.arrays.item_genres, model.dynamics.drift_rate,
                              model.dynamics.fatigue_decay, gap)
    users = both.interactions["user"].to_numpy(np.int64)[held]
    state = FittedState.for_scoring(users, h[held], f[held], model.dynamics.recent_len)
    return state, both.interactions["item"].to_numpy(np.int64)[held]


def next_item_metrics(scores: np.ndarray, k: int) -> dict[str, float]:
    """``scores[:, 0]`` is the positive, the rest negatives: HR@k, NDCG@k and the mean per-event AUC."""
    pos, neg = scores[:, :1], scores[:, 1:]
    ranks = (neg > pos).sum(axis=1) + 0.5 * (neg == pos).sum(axis=1)  # ties share the rank
    ranks = np.floor(ranks).astype(np.int64)
    per_event_auc = np.array([auc(s[:1], s[1:]) for s in scores])
    return {f"hr@{k}": hit_rate_at_k(ranks, k), f"ndcg@{k}": ndcg_at_k(ranks, k), "auc": float(per_event_auc.mean())}


def genre_repetition(sequences: list[np.ndarray], genres: np.ndarray) -> float:
    """Share of consecutive pairs in the sequences whose items share at least one genre."""
    pairs = [(s[:-1], s[1:]) for s in sequences if len(s) > 1]
    if not pairs:
        return float("nan")
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    return float(((genres[a] * genres[b]).sum(axis=1) > 0).mean())


def logged_sessions(log: InteractionLog, gap: float) -> list[np.ndarray]:
    """Item sequences of each logged session."""
    sid = sessionize(log, gap)
    items = log.interactions["item"].to_numpy(np.int64)
    bounds = np.flatnonzero(np.diff(sid)) + 1
    return np.split(items, bounds)


def fidelity_report(model: FittedUserModel, train: InteractionLog, heldout: InteractionLog,
                    config: FidelityConfig | None = None) -> FidelityReport:
    """Score ``model`` (fitted on ``train``) against ``heldout`` (the later interactions)."""
    config = config or FidelityConfig()
    if heldout.n_interactions == 0:
        raise DataError(f"{heldout.name}: the held-out log is empty")
    if heldout.n_items != model.n_items or heldout.n_users != model.n_logged_users:
        raise DataError(f"{heldout.name}: {heldout.n_users} users x {heldout.n_items} items, but the model has "
                        f"{model.n_logged_users} x {model.n_items}: use a split of the log it was fitted on")
    rng = np.random.default_rng(config.seed)
    gap = float(model.meta.get("config", {}).get("session_gap", 1800.0))
    rows = np.sort(rng.choice(heldout.n_interactions, size=min(config.max_events, heldout.n_interactions),
                              replace=False))
    state, positives = _event_states(model, train, heldout, rows, gap)
    full = train.with_interactions(pd.concat([train.interactions, heldout.interactions]))
    negatives = sample_negatives(state.logged, seen_items(full), model.n_items, config.n_negatives, rng)
    items = np.column_stack([positives, negatives])
    scores = model.utilities(state, items)
    metrics = {"events": float(len(rows))} | next_item_metrics(scores, config.k)
    warm = np.bincount(train.interactions["user"].to_numpy(), minlength=model.n_logged_users)[state.logged] > 0
    metrics["warm_share"] = float(warm.mean())
    if warm.any():
        metrics |= {f"warm_{k}": v for k, v in next_item_metrics(scores[warm], config.k).items()}
    popularity = np.log1p(np.bincount(train.interactions["item"].to_numpy(), minlength=model.n_items))
    metrics |= {f"popularity_{k}": v for k, v in next_item_metrics(popularity[items], config.k).items()}
    metrics |= _rating_metrics(model, state, positives, heldout, rows, train)
    ece, bins = _choice_calibration(model, state, items, config, rng)
    metrics["ece"] = ece
    catalog = ItemCatalog.from_log(train)
    rollout, simulated, session_metrics = _session_metrics(model, train, heldout, catalog, config, gap, rng)
    metrics |= session_metrics
    leave_metrics, hazard = leave_fidelity(model, train, heldout, rollout, config.max_position)
    metrics |= leave_metrics
    if model.returns is not None:
        metrics |= return_fidelity(model, train, heldout, rollout, rng)
    if config.headroom_episodes:
        metrics |= long_horizon_headroom(model, catalog, config.headroom_episodes, config.seed)
    logged = session_lengths(heldout, gap)
    return FidelityReport(metrics, bins, simulated, logged,
                          {"model": repr(model), "heldout": heldout.name, "config": asdict(config),
                           "return_model_error": model.meta.get("return_model_error")},
                          hazard, provenance(model, metrics))


def _rating_metrics(model: FittedUserModel, state: FittedState, positives: np.ndarray, heldout: InteractionLog,
                    rows: np.ndarray, train: InteractionLog) -> dict[str, float]:
    if not model.scales.has_rating or "rating" not in heldout.interactions.columns:
        return {k: float("nan") for k in ("rating_rmse", "rating_mae", "global_mean_rmse", "global_mean_mae")}
    truth = heldout.interactions["rating"].to_numpy(np.float64)[rows]
    pred = np.clip(model.expected_rating(state, positives[:, None])[:, 0], model.scales.rating_min,
                   model.scales.rating_max)
    mean = float(train.interactions["rating"].mean())
    return {
        "rating_rmse": float(np.sqrt(np.mean((pred - truth) ** 2))),
        "rating_mae": float(np.mean(np.abs(pred - truth))),
        "global_mean_rmse": float(np.sqrt(np.mean((mean - truth) ** 2))),
        "global_mean_mae": float(np.mean(np.abs(mean - truth))),
    }


def _choice_calibration(model: FittedUserModel, state: FittedState, items: np.ndarray, config: FidelityConfig,
                        rng: np.random.Generator) -> tuple[float, pd.DataFrame]:
    """ECE of P(slot | slate, click) on slates of the positive and negatives in random order."""
    slate = items[:, : config.slate_size].copy()
    order = rng.permuted(np.tile(np.arange(config.slate_size), (len(slate), 1)), axis=1)
    slate = np.take_along_axis(slate, order, axis=1)
    outcome = (order == 0).astype(np.float64)  # column 0 of ``items`` is the logged positive
    probs = model.choice_probabilities(state, slate, np.ones_like(slate, dtype=bool))
    given_click = probs[:, :-1] / np.maximum(1.0 - probs[:, -1:], 1e-12)
    return expected_calibration_error(np.clip(given_click, 0.0, 1.0), outcome, n_bins=10)


def _session_metrics(model: FittedUserModel, train: InteractionLog, heldout: InteractionLog, catalog: ItemCatalog,
                     config: FidelityConfig, gap: float,
                     rng: np.random.Generator) -> tuple[Rollout, np.ndarray, dict[str, float]]:
    rollout = simulate_sessions(model, config.n_sim_users, rng, step_cap=config.step_cap, record=True,
                                gaps=model.returns is not None)
    simulated = rollout.clicks[rollout.clicks > 0]
    cap = config.step_cap
    logged = np.minimum(session_lengths(heldout, gap), cap)
    if simulated.size == 0:
        raise DataError("no simulated session had a click: the model's no-click utility is too high")
    binary = (catalog.genres > 0).astype(np.float32)
    metrics = {
        "session_ks": ks_statistic(simulated, logged),
        "session_ks_train": ks_statistic(simulated, np.minimum(session_lengths(train, gap), cap)),
        "sim_median_length": float(np.median(simulated)), "logged_median_length": float(np.median(logged)),
        "sim_capped_share": float(1.0 - rollout.left.mean()),
        "sim_genre_repetition": genre_repetition(rollout.consumed, binary),
        "logged_genre_repetition": genre_repetition(logged_sessions(heldout, gap), binary),
    }
    # How much the session lengths lean on the one assumed leave parameter: ignored slates as likely to
    # end a session as an average consumed item (the constant hazard), instead of the default.
    constant = float(model.leave.meta.get("constant_hazard", 0.0))
    if constant > 0 and constant != model.leave.no_click_probability:
        other = simulate_sessions(model.with_no_click_leave(constant), config.n_sim_users,
                                  np.random.default_rng(config.seed), step_cap=cap)
        metrics["session_ks_no_click_at_constant_hazard"] = ks_statistic(other.clicks[other.clicks > 0], logged)
        metrics["no_click_leave_alternative"] = constant
    return rollout, simulated, metrics


def rating_aware_scores(model: FittedUserModel, state: FittedState, candidates: np.ndarray,
                        weight: float = 2.0) -> np.ndarray:
    """The non-myopic heuristic: utility plus ``weight`` x (expected rating - like threshold)."""
    bonus = model.expected_rating(state, candidates) - model.dynamics.like_threshold
    return model.utilities(state, candidates) + np.float32(weight) * bonus


def long_horizon_headroom(model: FittedUserModel, catalog: ItemCatalog, episodes: int, seed: int,
                          num_envs: int = 500) -> dict[str, float]:
    """Clicks per episode of greedy-on-click vs the rating-aware heuristic in the default vector env."""
    greedy = _episode_returns(model, catalog, episodes, seed, num_envs, model.utilities)
    heuristic = _episode_returns(model, catalog, episodes, seed, num_envs,
                                 lambda s, c: rating_aware_scores(model, s, c))
    return {"greedy_return": greedy[0], "greedy_length": greedy[1], "heuristic_return": heuristic[0],
            "heuristic_length": heuristic[1], "headroom": heuristic[0] / max(greedy[0], 1e-12) - 1.0}


def _episode_returns(model: FittedUserModel, catalog: ItemCatalog, episodes: int, seed: int, num_envs: int,
                     score) -> tuple[float, float]:
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv

    default = EnvConfig()
    n_candidates = min(default.n_candidates, model.n_items)  # small catalogs: every item is a candidate
    config = EnvConfig(n_candidates=n_candidates, slate_size=min(default.slate_size, n_candidates))
    env = RecVectorEnv(model, catalog, config, num_envs=num_envs)
    obs, _ = env.reset(seed=seed)
    slate_size = env.config.slate_size
    running, length = np.zeros(num_envs), np.zeros(num_envs)
    returns: list[float] = []
    lengths: list[float] = []
    while len(returns) < episodes:
        values = score(env.user_state, obs["candidates"])
        action = np.argsort(-values, axis=1, kind="stable")[:, :slate_size]
        obs, reward, terminated, truncated, _ = env.step(action)
        running += reward
        length += 1
        ended = terminated | truncated
        returns.extend(running[ended])
        lengths.extend(length[ended])
        running[ended], length[ended] = 0.0, 0.0
    return float(np.mean(returns)), float(np.mean(lengths))
