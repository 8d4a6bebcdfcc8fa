"""The long-term part of the fidelity report: leaving and coming back, and where every parameter comes from.

* **Leave hazard**: held-out log-loss of the fitted hazard beside a constant and a position-only one
  (fitted on the same training rows); the hazard by position (0..``max_position``) and by rating
  (items at those positions), logged on the held-out log with Wilson 95 % intervals, beside the fitted
  hazard's mean prediction on the same items, and the simulated hazard (reference policy): the mean leave
  probability the simulator applied after the simulated items with each key, with a 95 % interval over
  sessions, and whether it lies in the logged interval; the same interval of the training log beside it
  (the log the hazard was fitted on, whose start states the session env draws). The simulated hazard is
  the applied probability, not the share of simulated items that ended their session: that share (kept
  beside it as ``sim_share``) adds one Bernoulli draw per item, and at 1,000 simulated sessions its noise is
  as large as the logged interval's half-width, so a simulator with the logged hazard would fall outside
  the interval by chance at some of five ratings in most seeds.
* **Return model**: held-out concordance against a covariate-free model, predicted against Kaplan-Meier
  ``P(return within 7 / 30 days)``, gap KS (model CDF against Kaplan-Meier; simulated against logged
  returns at each record's follow-up); and the gaps the simulator draws after its own sessions
  against the Kaplan-Meier curve of the training log's gaps.
* **Provenance**: every dynamics parameter, *fitted* (with its held-out figure), *calibrated* (to what)
  or *assumed* (its default, and why the log cannot inform it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsim_env.data.log import InteractionLog
from recsim_env.fit.calibration import Rollout
from recsim_env.fit.leave import LeaveConfig, hazard_table, validate_leave_hazard, wilson_interval
from recsim_env.fit.returns import ReturnConfig, fit_aft, kaplan_meier, session_records, validate_return_model
from recsim_env.users.fitted import FittedUserModel


def _leave_config(model: FittedUserModel) -> LeaveConfig:
    hazard = model.leave
    return LeaveConfig(gap_seconds=hazard.gap_seconds, like_threshold=hazard.like_threshold,
                       overlap_decay=hazard.overlap_decay, position_bins=hazard.position_bins)


def simulated_items(rollout: Rollout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position, rating, ended) of every consumed item of recorded simulated sessions; as in a log, an
    item ends its session when it is the last one of a session the user left (capped ones are censored).
    The items' session indices are ``np.repeat(arange(n), lengths)``; their applied hazards
    ``np.concatenate(rollout.leave_probabilities)``."""
    lengths = np.array([len(items) for items in rollout.consumed], dtype=np.int64)
    position = np.concatenate([np.arange(length) for length in lengths]) if lengths.size else np.zeros(0, np.int64)
    last = np.zeros(position.size, dtype=bool)
    ends = np.cumsum(lengths) - 1
    last[ends[lengths > 0]] = True
    ended = last & np.repeat(rollout.left, lengths)
    rating = np.concatenate(rollout.ratings) if rollout.ratings else np.zeros(0)
    return position, rating, ended


def applied_hazard(keys: np.ndarray, probability: np.ndarray, session: np.ndarray, values: np.ndarray,
                   z: float = 1.96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) of the applied leave ``probability`` of the items with each key in ``values``.

    The mean is the expected share of those items that end their session; the interval is a ratio
    estimator's over sessions (items of one session share a user and a state, so they are not independent
    draws): ``var = m / (m - 1) * sum_s (P_s - mean * N_s)^2 / N^2`` with ``P_s`` and ``N_s`` session ``s``'s sum
    of probabilities and count of items with the key, ``m`` the sessions that have any. NaN where none.
    """
    values = np.asarray(values)
    index = np.minimum(np.searchsorted(values, keys), max(len(values) - 1, 0))
    hit = values[index] == keys if len(values) else np.zeros(len(keys), dtype=bool)
    n_sessions = int(session.max(initial=-1)) + 1
    cell = index[hit] * n_sessions + session[hit]  # one (key, session) cell per pair
    size = len(values) * n_sessions
    mass = np.bincount(cell, weights=probability[hit], minlength=size).reshape(len(values), n_sessions)
    count = np.bincount(cell, minlength=size).reshape(len(values), n_sessions).astype(np.float64)
    total = count.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = mass.sum(axis=1) / total
        clusters = (count > 0).sum(axis=1)
        spread = ((mass - mean[:, None] * count) ** 2).sum(axis=1) / total ** 2
        half = z * np.sqrt(spread * clusters / np.maximum(clusters - 1, 1))
    return mean, mean - half, mean + half


def leave_fidelity(model: FittedUserModel, train: InteractionLog, heldout: InteractionLog, rollout: Rollout,
                   max_position: int = 20) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Held-out log-losses, and the logged / fitted / simulated hazard by position and by rating."""
    result = validate_leave_hazard(model.leave, train, heldout, _leave_config(model), max_position)
    metrics = {f"leave_log_loss_{name}": value for name, value in result.log_loss.items()}
    metrics |= {"leave_heldout_items": float(result.rows), "leave_heldout_ends": float(result.events)}
    position, rating, ended = simulated_items(rollout)
    lengths = np.array([len(items) for items in rollout.consumed], dtype=np.int64)
    session = np.repeat(np.arange(len(lengths)), lengths)
    applied = np.concatenate(rollout.leave_probabilities) if lengths.size else np.zeros(0)
    simulated_keys = {"position": position, "rating": rating}
    early = position <= max_position
    tables = {}
    for key, logged in result.tables.items():
        rows = slice(None) if key == "position" else early
        keys, outcome = simulated_keys[key][rows], ended[rows]
        sim = hazard_table(key, keys, outcome, outcome.astype(np.float64), logged.values)
        frame = pd.DataFrame(logged.rows()).rename(columns={"predicted": "fitted"})
        frame["sim_at_risk"] = sim.at_risk
        frame["simulated"], frame["sim_low"], frame["sim_high"] = applied_hazard(keys, applied[rows], session[rows],
                                                                                logged.values)
        frame["sim_share"] = sim.logged
        frame["sim_share_low"], frame["sim_share_high"] = wilson_interval(sim.leaves, sim.at_risk)
        frame["within"] = (frame["simulated"] >= frame["low"]) & (frame["simulated"] <= frame["high"])
        train = result.train_tables.get(key)
        for column in ("at_risk", "logged", "low", "high"):
            frame[f"train_{column}"] = getattr(train, column) if train is not None else np.nan
        frame["within_train"] = (frame["simulated"] >= frame["train_low"]) & (frame["simulated"] <= frame["train_high"])
        tables[key] = frame
        simulated = frame["sim_at_risk"] > 0
        metrics[f"hazard_by_{key}_within_share"] = float(frame["within"][simulated].mean())
        metrics[f"hazard_by_{key}_within_train_share"] = float(frame["within_train"][simulated].mean())
    return metrics, tables


def return_fidelity(model: FittedUserModel, train: InteractionLog, heldout: InteractionLog, rollout: Rollout,
                    rng: np.random.Generator) -> dict[str, float]:
    """Held-out concordance, 7/30-day calibration and gap KS of the return model, and the simulator's gaps."""
    returns = model.returns
    config = ReturnConfig(gap_seconds=returns.gap_seconds, like_threshold=returns.like_threshold,
                          dislike_threshold=returns.dislike_threshold)
    training = session_records(train, config)
    null = fit_aft(training, (), returns.distribution, config)
    result = validate_return_model(returns, null, session_records(heldout, config, history=train), rng)
    metrics = {"return_concordance": result.concordance, "return_null_concordance": result.null_concordance,
               "return_ks_marginal": result.ks_marginal, "return_null_ks_marginal": result.null_ks_marginal,
               "return_ks_simulated": result.ks_simulated, "return_null_ks_simulated": result.null_ks_simulated,
               "return_heldout_records": float(result.records), "return_heldout_returns": float(result.returns)}
    for calibration in result.calibration:
        horizon = f"{calibration.horizon_days:g}d"
        metrics[f"return_within_{horizon}_predicted"] = calibration.predicted
        metrics[f"return_within_{horizon}_observed"] = calibration.observed
        metrics[f"return_within_{horizon}_null"] = calibration.null_predicted
    return metrics | _simulated_gaps(rollout.gap_days, training.gap_days, training.returned)


def _simulated_gaps(simulated: np.ndarray, days: np.ndarray, returned: np.ndarray) -> dict[str, float]:
    """The simulator's gaps after its own sessions against the Kaplan-Meier curve of logged gaps: KS over
    the logged return times, and ``P(return within 7 / 30 days)`` side by side."""
    simulated = np.sort(simulated[np.isfinite(simulated)])
    times, survival = kaplan_meier(days, returned)
    if simulated.size == 0 or times.size == 0:
        return {}
    simulated_cdf = np.searchsorted(simulated, times, side="right") / simulated.size
    before = np.searchsorted(simulated, times, side="left") / simulated.size
    left_limit = 1.0 - np.r_[1.0, survival[:-1]]
    ks = max(np.abs(simulated_cdf - (1.0 - survival)).max(), np.abs(before - left_limit).max())
    figures = {"sim_gap_ks_vs_train_km": float(ks), "sim_gap_median_days": float(np.median(simulated))}
    for horizon in (7.0, 30.0):
        index = np.searchsorted(times, horizon, side="right")
        figures[f"sim_return_within_{horizon:g}d"] = float(np.searchsorted(simulated, horizon, side="right")
                                                           / simulated.size)
        figures[f"train_km_return_within_{horizon:g}d"] = float(1.0 - survival[index - 1]) if index else 0.0
    return figures


# ---------------------------------------------------------------------------- provenance
def _row(parameter: str, value: object, source: str, detail: str) -> dict[str, str]:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return {"parameter": parameter, "value": text, "source": source, "detail": detail}


def provenance(model: FittedUserModel, metrics: dict[str, float]) -> list[dict[str, str]]:
    """Every dynamics parameter of ``model``: fitted (held-out figure), calibrated (to what) or assumed (why)."""
    rows = _choice_rows(model, metrics) + _leave_rows(model, metrics) + _return_rows(model, metrics)
    return rows + [_start_row(model)]


def _choice_rows(model: FittedUserModel, metrics: dict[str, float]) -> list[dict[str, str]]:
    d, meta = model.dynamics, model.meta
    config = meta.get("config", {})
    nll = meta.get("drift_nll", {})
    drift_detail = "next-item NLL on the training tails: " + ", ".join(f"η={k}: {v:.4f}" for k, v in nll.items())
    fatigue = ("fitted on the training tails" if meta.get("fatigue_source") == "fitted" else "default (no tail events)")
    if meta.get("fitted_fatigue", 0.0) < 0:
        fatigue += f"; fitted {meta['fitted_fatigue']:.3f} < 0 (genre attraction, which drift models) clipped to 0"
    return [
        _row("relevance p_u, v_i, b_i", "embeddings", "fitted",
             f"held-out HR@10 {metrics.get('hr@10', float('nan')):.4f} vs popularity "
             f"{metrics.get('popularity_hr@10', float('nan')):.4f}"),
        _row("drift_rate η", d.drift_rate, "fitted", drift_detail),
        _row("drift_scale γ", d.drift_scale, "fitted", "jointly with η, next-item likelihood on the tails"),
        _row("fatigue_strength φ", d.fatigue_strength, "fitted" if meta.get("fatigue_source") == "fitted"
             else "assumed", fatigue),
        _row("temperature", d.temperature, "fitted", f"sharpness on the tails; held-out choice ECE "
             f"{metrics.get('ece', float('nan')):.4f}"),
        _row("rating model", "MF + content", "fitted", f"held-out RMSE {metrics.get('rating_rmse', float('nan')):.4f} "
             f"vs global mean {metrics.get('global_mean_rmse', float('nan')):.4f}"),
        _row("rating noise std", model.scales.rating_std, "fitted", "residual std on the training tails"),
        _row("no_click_utility", d.no_click_utility, "calibrated",
             f"reference-policy CTR = target_ctr {config.get('target_ctr')} (the log has no impressions)"),
        _row("fatigue_decay", d.fatigue_decay, "assumed", "default; the tails are too short to separate it from φ"),
        _row("repeat_penalty ρ", d.repeat_penalty, "assumed", "the log never shows an item consumed twice"),
        _row("recent_len", d.recent_len, "assumed", "memory of the repeat penalty; as ρ"),
        _row("position_decay", d.position_decay, "assumed", "the log has no slates or positions"),
        _row("like_threshold", d.like_threshold, "assumed", "convention: rating >= 4 is a like"),
        _row("session_gap", f"{config.get('session_gap', 1800.0):g} s", "assumed",
             "convention: 30 min of inactivity cuts a session"),
    ]


def _leave_rows(model: FittedUserModel, metrics: dict[str, float]) -> list[dict[str, str]]:
    hazard = model.leave
    figure = (f"held-out log-loss {metrics.get('leave_log_loss_full', float('nan')):.4f} vs position-only "
              f"{metrics.get('leave_log_loss_position', float('nan')):.4f} vs constant "
              f"{metrics.get('leave_log_loss_constant', float('nan')):.4f}")
    source = hazard.meta.get("source", "fitted")
    rows = [_row("leave hazard intercept", hazard.intercept, "fitted" if source == "fitted" else "assumed",
                 figure if source == "fitted" else source)]
    errors = np.sqrt(np.maximum(np.diag(hazard.covariance)[1:], 0.0))
    for name, coefficient, error in zip(hazard.feature_names, hazard.coefficients, errors):
        rows.append(_row(f"leave hazard: {name}", f"{coefficient:+.3f} ± {error:.3f} per SD", "fitted", figure))
    rows.append(_row("leave hazard overlap_decay", hazard.overlap_decay, "assumed", "= fatigue_decay"))
    rows.append(_row("no-click leave probability", hazard.no_click_probability, "assumed",
                     f"{hazard.meta.get('no_click_source', 'assumed')}; the log has no impressions, so a step "
                     f"without a click is never seen"))
    return rows


def _return_rows(model: FittedUserModel, metrics: dict[str, float]) -> list[dict[str, str]]:
    returns = model.returns
    if returns is None:
        return [_row("return model", "none", "not fitted", model.meta.get("return_model_error", ""))]
    figure = (f"held-out concordance {metrics.get('return_concordance', float('nan')):.3f} vs covariate-free "
              f"{metrics.get('return_null_concordance', float('nan')):.3f}; P(≤7 d) "
              f"{metrics.get('return_within_7d_predicted', float('nan')):.3f} vs KM "
              f"{metrics.get('return_within_7d_observed', float('nan')):.3f}")
    held_out = returns.meta.get("heldout_log_likelihood_by_distribution")
    family = figure + ("; family by held-out likelihood per record (" + ", ".join(
        f"{name} {value:.4f}" for name, value in held_out.items()) + ")" if held_out else "")
    rows = [_row("return model", f"{returns.distribution} AFT, scale {returns.scale:.3f}", "fitted", family)]
    errors = np.sqrt(np.maximum(np.diag(returns.covariance)[1:-1], 0.0))
    for name, coefficient, error in zip(returns.covariate_names, returns.coefficients, errors):
        rows.append(_row(f"return gap: {name}", f"{coefficient:+.3f} ± {error:.3f} log-days per SD", "fitted", figure))
    return rows


START_ROWS = {
    "sessions": ("a uniform training session's start state", "fitted",
                 "empirical: a new simulated user is a training session drawn uniformly (users weigh by their "
                 "session count): its user, interactions before it (the leave hazard's activity), sessions so "
                 "far and days since the first (the return model's); interest at the end of the user's history "
                 "(start_activity='sessions'; a lifetime env continues the logged user, 'total'); time within "
                 "sessions is not counted"),
    "drawn": ("a uniform user at one of its own session starts", "fitted",
              "empirical: the leave hazard's activity when a session starts: one of the logged user's training session "
              "starts, each equally likely; sessions so far and days since the first continue the logged user "
              "(start_activity='drawn')"),
    "total": ("continues the logged user", "assumed",
              "activity, sessions so far and days since the first start from the logged user's whole history "
              "(start_activity='total', the lifetime env's); time within sessions is not counted"),
}
"""The provenance row of each :attr:`~recsim_env.users.fitted.FittedUserModel.start_activity`."""


def _start_row(model: FittedUserModel) -> dict[str, str]:
    value, source, detail = START_ROWS[model.start_activity]
    return _row("simulated session's start state", value, source, detail)
