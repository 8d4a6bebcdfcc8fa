"""Logs -> a :class:`~recsim_env.users.fitted.FittedUserModel` (PyTorch), cached as a versioned artifact.

``fit_user_model(log, config)`` fits on the whole ``log`` it is given: pass the training part.
The torch parts live in :mod:`recsim_env.fit.learners` (imported only to fit). Stages (each user's
sequence is cut in time into a *head* and the last ``holdout_fraction`` *tail*):

1. **Relevance** (head): ``score(u, i) = p_u·v_i + b_i`` with ``v_i = q_i + W·c_i`` (id embedding plus
   projected content: genres, standardised year and, when ``FitConfig.item_vectors`` names a file, the
   precomputed item vectors: :func:`item_content`), trained as a sampled softmax over the positive and
   ``negatives`` uniformly drawn items shared by the batch; its logits are the choice utilities.
2. **Drift and fatigue** (tail, whose history is known): the interest vector ``h`` is an
   exponential moving average of consumed item vectors with rate ``η``; fatigue ``F`` a decayed sum of
   the genre vectors consumed earlier in the same session. ``η`` is chosen on ``drift_grid`` and, for
   each ``η``, the weights ``γ`` (drift) and ``φ`` (fatigue) and a sharpness ``s`` (the choice
   temperature becomes ``temperature / s``) by L-BFGS, maximising the full-softmax likelihood of the
   next item. A negative ``φ`` (the logs show genre *attraction*, as ML-100K does;
   the drift term already models attraction) is clipped to 0: a default fatigue the data contradicts
   cost ML-100K a third of its held-out HR@10. ``default_fatigue`` is used only when the log has no
   tail events to estimate from; ``meta["fatigue_source"]`` says which.
3. **Ratings** (head; residual std measured on the tail): biased MF with content,
   ``r = μ + b_u + b_i + w·c_i + a_u·(e_i + W'c_i)`` (the same content ``c_i``), MSE. Dwell: per-item
   mean log dwell (shrunk to the global mean) and residual std, only when the log has dwell.
4. **Leave hazard** (the whole log, sessions split at gaps >= ``session_gap``;
   :mod:`recsim_env.fit.leave`): ``P(the session ends after this consumed item)`` by position, rating
   and shortfall, genre overlap with the session so far, item popularity, user activity. A log that
   shows a single outcome (every session one item long, or none ending) gets the smoothed constant
   hazard, said in ``meta["leave_source"]``. Leaving after a step without a click is assumed
   (``no_click_leave``).
5. **Return model** (:mod:`recsim_env.fit.returns`): the censored gap to the user's next session given
   the ended session and the user. A log without timestamps or with one session per user fits none:
   the model is built without it and ``meta["return_model_error"]`` says why (the session env works;
   ``return_gaps`` raises that error).
6. **Calibration** (see :mod:`recsim_env.fit.calibration`): the no-click utility to ``target_ctr``.

:func:`movielens_user_model` fits ML-100K once and caches the artifact (see its docstring).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.item_vectors import load_item_vectors
from recsim_env.data.log import InteractionLog
from recsim_env.data.sessions import DAY_SECONDS, sessionize
from recsim_env.errors import DataError
from recsim_env.fit.calibration import calibrate_ctr
from recsim_env.fit.config import FitConfig, _jsonable
from recsim_env.fit.leave import LeaveConfig, LeaveHazard, fit_leave_hazard, timestamps_are_row_numbers
from recsim_env.fit.returns import ReturnConfig, ReturnModel, fit_return_model
from recsim_env.users.fitted import Dynamics, FittedArrays, FittedUserModel, Scales

logger = logging.getLogger(__name__)

WORKER_MIN_INTERACTIONS = 500_000
"""Logs with at least this many interactions fit the rating model, the leave hazard and the return model
in a forked worker process while this one fits the relevance model and the drift (where two or more
cores are free to the process): the same fitted arrays, each process single-threaded, the rating model
started from the torch RNG state it has in turn. Shorter logs fit them in turn (a fork and the
results' transfer cost more than they save there)."""


# ---------------------------------------------------------------------------- data preparation
def session_table(log: InteractionLog, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """(lengths of all sessions grouped by user, ``(n_users + 1,)`` offsets into them)."""
    inter = log.interactions
    users = inter["user"].to_numpy()
    sid = sessionize(log, gap)
    lengths = np.bincount(sid)
    owner = users[np.searchsorted(sid, np.arange(len(lengths)))]
    offsets = np.searchsorted(owner, np.arange(log.n_users + 1))
    return lengths.astype(np.int64), offsets.astype(np.int64)


def user_feature_matrix(users: pd.DataFrame, max_categories: int) -> tuple[np.ndarray, list[str]]:
    """Standardised numeric and one-hot categorical user columns (``(U, F)`` float32, names)."""
    blocks, names = [], []
    for col in users.columns:
        if col == "user_id":
            continue
        numeric = pd.to_numeric(users[col], errors="coerce")
        if numeric.notna().sum() == users[col].notna().sum() and numeric.notna().any():
            values = numeric.fillna(numeric.mean()).to_numpy(dtype=np.float64)
            blocks.append(((values - values.mean()) / max(values.std(), 1e-9))[:, None])
            names.append(str(col))
            continue
        levels = sorted(users[col].dropna().astype(str).unique())
        if len(levels) > max_categories:
            logger.info("user column %r has %d levels (> max_categories=%d): left out of user features",
                     col, len(levels), max_categories)
            continue
        codes = pd.Categorical(users[col].astype(str), categories=levels).codes
        blocks.append(np.eye(len(levels))[codes] * (codes >= 0)[:, None])
        names.extend(f"{col}={level}" for level in levels)
    if not blocks:
        return np.zeros((len(users), 0), dtype=np.float32), []
    return np.column_stack(blocks).astype(np.float32), names


def tail_mask(users: np.ndarray, fraction: float) -> np.ndarray:
    """True for the last ``fraction`` (rounded down) of each user's rows (rows sorted by user, time)."""
    starts = np.searchsorted(users, users, side="left")
    ends = np.searchsorted(users, users, side="right")
    count = ends - starts
    n_tail = np.floor(count * fraction).astype(np.int64)
    return (np.arange(len(users)) - starts) >= (count - n_tail)


def normalised_genres(catalog: ItemCatalog) -> np.ndarray:
    norm = np.linalg.norm(catalog.genres, axis=1, keepdims=True)
    return (catalog.genres / np.maximum(norm, 1e-9)).astype(np.float32)


def item_content(catalog: ItemCatalog, log: InteractionLog, config: FitConfig) -> np.ndarray:
    """``(n_items, n_genres + 2 [+ d])`` float32: the catalog's content features, then the item vectors
    of ``config.item_vectors`` if any (read and validated by
    :func:`~recsim_env.data.item_vectors.load_item_vectors`), centred and scaled by one factor to mean
    row norm 1: the shared offset says nothing about an item, and one factor keeps their geometry while
    putting them on the scale of the genre rows, whatever units the file's embedding has. The vectors
    are fixed inputs: what is fitted on them is the relevance model's projection ``W`` and the rating
    model's ``W'`` and ``w`` (so an item few users met still gets the utility its vector implies).
    Fatigue and the leave hazard's session overlap stay on genres: they count *kinds* of item."""
    content = catalog.content_features()
    if not config.item_vectors:
        return content
    vectors = load_item_vectors(config.item_vectors, log).astype(np.float64)
    vectors -= vectors.mean(axis=0)
    mean_norm = float(np.linalg.norm(vectors, axis=1).mean())
    if mean_norm > 0:
        vectors /= mean_norm
    return np.column_stack([content, vectors]).astype(np.float32)


def _dwell_model(log: InteractionLog) -> tuple[np.ndarray, float]:
    """Per-item mean log dwell shrunk toward the global mean (prior weight 5), and the residual std."""
    if "dwell" not in log.interactions.columns:
        return np.zeros(0, dtype=np.float32), 0.0
    inter = log.interactions[log.interactions["dwell"] > 0]
    if inter.empty:
        return np.zeros(0, dtype=np.float32), 0.0
    logd = np.log(inter["dwell"].to_numpy(np.float64))
    items = inter["item"].to_numpy()
    total = np.bincount(items, weights=logd, minlength=log.n_items)
    count = np.bincount(items, minlength=log.n_items)
    item_mean = (total + 5 * logd.mean()) / (count + 5)
    return item_mean.astype(np.float32), float(np.std(logd - item_mean[items]))


# ---------------------------------------------------------------------------- sequences
def sequence_states(log: InteractionLog, vectors: np.ndarray, genres: np.ndarray, rate: float,
                    fatigue_decay: float, gap: float,
                    rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every interaction (or only the given ``rows``, in their order), the interest ``h`` and fatigue
    ``F`` *before* it, and each user's final ``h``.

    Vectorised over users: one loop iteration per position in the sequences. Fatigue restarts at
    each session; interest carries across sessions. ``rows`` keeps memory at their count: the full
    tables are ``(n_interactions, d)`` (1.7 GB at 10M interactions).
    """
    inter = log.interactions
    users, items = inter["user"].to_numpy(), inter["item"].to_numpy()
    sid = sessionize(log, gap)
    new_session = np.ones(len(users), dtype=bool)
    new_session[1:] = sid[1:] != sid[:-1]
    starts = np.searchsorted(users, np.arange(log.n_users))
    counts = np.bincount(users, minlength=log.n_users)
    slot = np.arange(len(users)) if rows is None else np.full(len(users), -1, dtype=np.int64)
    if rows is not None:
        slot[rows] = np.arange(len(rows))
    h_before = np.zeros((len(users) if rows is None else len(rows), vectors.shape[1]), dtype=np.float32)
    f_before = np.zeros((len(h_before), genres.shape[1]), dtype=np.float32)
    h = np.zeros((log.n_users, vectors.shape[1]), dtype=np.float32)
    f = np.zeros((log.n_users, genres.shape[1]), dtype=np.float32)
    for t in range(int(counts.max(initial=0))):
        who = np.flatnonzero(counts > t)
        at = starts[who] + t
        f[who[new_session[at]]] = 0.0
        kept = slot[at] >= 0
        h_before[slot[at[kept]]], f_before[slot[at[kept]]] = h[who[kept]], f[who[kept]]
        h[who] += rate * (vectors[items[at]] - h[who])
        f[who] = fatigue_decay * f[who] + genres[items[at]]
    return h_before, f_before, h


@dataclass(frozen=True)
class DriftFit:
    """Result of the drift/fatigue likelihood fit."""

    rate: float
    scale: float
    fatigue: float
    nll: dict[float, float] = field(default_factory=dict)
    """Next-item NLL per candidate drift rate (for the report)."""
    source: str = "fitted"
    """Where the fatigue strength came from: ``fitted`` or ``default``."""
    sharpness: float = 1.0
    """Factor on the utilities that maximises the tail likelihood (choice temperature = 1 / this)."""


def fit_drift(log: InteractionLog, is_tail: np.ndarray, pref: np.ndarray, vectors: np.ndarray, bias: np.ndarray,
              genres: np.ndarray, config: FitConfig, rng: np.random.Generator) -> DriftFit:
    """Choose ``η`` on the grid and fit ``γ``, ``φ`` by next-item likelihood on (a sample of) tail events."""
    rows = np.flatnonzero(is_tail)
    if rows.size == 0:
        logger.warning("no tail interactions to fit interest drift: using drift rate 0")
        return DriftFit(0.0, 0.0, config.default_fatigue, source="default")
    rows = np.sort(rng.choice(rows, size=min(rows.size, config.drift_events), replace=False))
    from recsim_env.fit.learners import fit_drift_weights

    users = log.interactions["user"].to_numpy()[rows]
    pos = log.interactions["item"].to_numpy(np.int64)[rows]
    base = pref[users] @ vectors.T + bias
    results: dict[float, tuple[float, float, float, float]] = {}
    for rate in config.drift_grid:
        h, f, _ = sequence_states(log, vectors, genres, rate, config.fatigue_decay, config.session_gap, rows)
        results[rate] = fit_drift_weights(base, h @ vectors.T, f @ genres.T, pos)
    rate = min(results, key=lambda r: results[r][0])
    if 0.0 in results and results[0.0][0] - results[rate][0] < config.drift_min_gain:
        rate = 0.0  # parsimony: drift must buy likelihood, not noise
    _, scale, phi, sharpness = results[rate]
    return DriftFit(rate, scale if rate > 0 else 0.0, phi, {r: v[0] for r, v in results.items()},
                    sharpness=sharpness)


# ---------------------------------------------------------------------------- the fit
def _check_log(log: InteractionLog) -> None:
    if log.n_interactions < 10:
        raise DataError(f"{log.name}: {log.n_interactions} interactions are too few to fit a user model (need >= 10)")
    if "rating" in log.interactions.columns and not np.isfinite(log.interactions["rating"].to_numpy()).all():
        raise DataError(f"{log.name}: column 'rating' has non-finite values")


def _rating_scale(log: InteractionLog) -> tuple[float, float, float]:
    r = log.interactions["rating"].to_numpy(np.float64)
    step = 1.0 if np.allclose(r, np.round(r)) else (0.5 if np.allclose(2 * r, np.round(2 * r)) else 0.0)
    return float(r.min()), float(r.max()), step


def fit_user_model(log: InteractionLog, config: FitConfig | None = None) -> FittedUserModel:
    """Fit every part of the user model on ``log`` (the training part; see the module docstring).

    Examples:
        >>> import numpy as np, pandas as pd
        >>> from recsim_env import FitConfig, InteractionLog, fit_user_model
        >>> rng = np.random.default_rng(0)
        >>> frame = pd.DataFrame({"user_id": rng.integers(0, 30, 600), "item_id": rng.integers(0, 40, 600),
        ...                       "rating": rng.integers(1, 6, 600), "timestamp": 1_000_000_000 + np.arange(600) * 600})
        >>> model = fit_user_model(InteractionLog.from_frames(frame), FitConfig.fast())
        >>> model.n_items, model.n_logged_users
        (40, 30)
    """
    from recsim_env.fit.learners import fit_relevance, seed_torch

    config = config or FitConfig()
    _check_log(log)
    seed_torch(config.seed)
    rng = np.random.default_rng(config.seed)
    began = time.perf_counter()
    catalog = ItemCatalog.from_log(log)
    content = item_content(catalog, log, config)
    genres = normalised_genres(catalog)
    inter = log.interactions
    is_tail = tail_mask(inter["user"].to_numpy(), config.holdout_fraction)
    head = log.with_interactions(inter[~is_tail], f"{log.name}/head")
    tail = log.with_interactions(inter[is_tail], f"{log.name}/tail")
    bar = tqdm(total=5, desc=f"fitting user model on {log.name}", disable=None)

    def responses_and_sessions() -> tuple[dict[str, np.ndarray], Scales, LeaveHazard, ReturnModel | None, str | None]:
        rating_arrays, scales = _fit_responses(head, tail, content, config, log)
        leave = fit_leave_hazard(log, _leave_config(config), constant_if_degenerate=True)
        return (rating_arrays, scales, leave, *_fit_returns(log, config))

    def in_worker() -> tuple[dict[str, np.ndarray], Scales, LeaveHazard, ReturnModel | None, str | None]:
        from recsim_env.fit.learners import skip_relevance_init

        skip_relevance_init(head.n_users, content, config)  # the rating model's RNG state, as in turn
        return responses_and_sessions()

    worker = _in_worker(in_worker) if _worker_wanted(log.n_interactions) else None
    pref, vectors, bias = fit_relevance(head, content, config)
    cold = np.bincount(head.interactions["user"].to_numpy(), minlength=log.n_users) == 0
    pref[cold] = 0.0  # never trained: their random init would be noise, zero is the population prior
    bar.update()
    drift = fit_drift(log, is_tail, pref, vectors, bias, genres, config, rng)
    _, _, interest0 = sequence_states(log, vectors, genres, drift.rate, config.fatigue_decay, config.session_gap,
                                      rows=np.zeros(0, dtype=np.int64))
    bar.update()
    rating_arrays, scales, leave, returns, return_error = responses_and_sessions() if worker is None else worker()
    rating_arrays["rating_user"][cold] = 0.0
    bar.update(2)
    lengths, offsets = session_table(log, config.session_gap)
    features, feature_names = user_feature_matrix(log.users, config.max_categories)
    dynamics = Dynamics(
        drift_rate=drift.rate, drift_scale=drift.scale,
        fatigue_strength=max(drift.fatigue, 0.0),
        fatigue_decay=config.fatigue_decay, repeat_penalty=config.repeat_penalty,
        temperature=config.temperature / drift.sharpness if config.fit_temperature else config.temperature,
        position_decay=config.position_decay, like_threshold=config.like_threshold)
    arrays = FittedArrays(
        user_pref=pref, user_interest0=interest0, item_vectors=vectors, item_bias=bias, item_genres=genres,
        user_features=features, **rating_arrays, session_lengths=lengths, session_offsets=offsets,
        active_users=np.flatnonzero(np.bincount(inter["user"].to_numpy(), minlength=log.n_users) > 0),
        user_span_days=user_span_days(log))
    meta = {"dataset": log.name, "fingerprint": log.fingerprint(), "config": _jsonable(config),
            "user_feature_names": feature_names, "genre_names": list(catalog.genre_names),
            "fatigue_source": drift.source, "fitted_fatigue": drift.fatigue,
            "drift_nll": {str(k): v for k, v in drift.nll.items()}, "leave_source": leave.meta["source"]}
    if config.item_vectors:
        meta["item_vector_dim"] = int(content.shape[1] - catalog.content_features().shape[1])
    if return_error is not None:
        meta["return_model_error"] = return_error
    model = FittedUserModel(arrays, scales, dynamics, meta, leave, returns)
    model = model.with_dynamics(no_click_utility=calibrate_ctr(model, config.target_ctr, rng))
    bar.update()
    bar.close()
    model.meta["fit_seconds"] = time.perf_counter() - began
    logger.info("fitted %r in %.1f s: drift rate %.2f, fatigue %.2f (%s), no-click utility %.2f, leave hazard %s, "
                "return model %s", log.name, model.meta["fit_seconds"], dynamics.drift_rate,
                dynamics.fatigue_strength, meta["fatigue_source"], model.dynamics.no_click_utility,
                leave.meta["source"], "fitted" if returns is not None else f"none ({return_error})")
    return model


def _worker_wanted(n_interactions: int) -> bool:
    """Fit the responses and sessions in a worker: a long log, and a second core free to this process."""
    return n_interactions >= WORKER_MIN_INTERACTIONS and len(os.sched_getaffinity(0)) >= 2


def _in_worker(task: Callable[[], object]) -> Callable[[], object]:
    """Start ``task`` in a forked process now; the returned call waits for its result (re-raising its error).

    Forked, so the process reads this one's arrays as they are (copy-on-write), not a pickled copy.
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_run_and_send, args=(task, send), name="recsim-fit-worker", daemon=True)
    process.start()
    send.close()

    def result() -> object:
        try:
            status, value = receive.recv()
        except EOFError:
            process.join()
            raise RuntimeError(f"the fit's worker process ended without a result (exit code {process.exitcode}; "
                               f"a signal -9 is usually the out-of-memory killer)") from None
        finally:
            receive.close()
        process.join()
        if status == "error":
            raise value
        return value

    return result


def _run_and_send(task: Callable[[], object], send) -> None:
    try:
        outcome = ("ok", task())
    except Exception as exc:  # sent back and raised in the fitting process
        outcome = ("error", exc)
    try:
        send.send(outcome)
    except Exception as exc:  # an error that does not pickle: its text
        send.send(("error", RuntimeError(f"the fit's worker process failed: {outcome[1]!r} ({exc})")))
    send.close()


def _leave_config(config: FitConfig) -> LeaveConfig:
    """The hazard's sessions, like threshold and genre-profile fade are the user model's."""
    return LeaveConfig(gap_seconds=config.session_gap, like_threshold=config.like_threshold,
                       overlap_decay=config.fatigue_decay, no_click_leave=config.no_click_leave)


def _fit_returns(log: InteractionLog, config: FitConfig) -> tuple[ReturnModel | None, str | None]:
    """(the return model, None), or (None, why not) for a log that cannot show a return."""
    try:
        return_config = ReturnConfig(gap_seconds=config.session_gap, like_threshold=config.like_threshold)
        model = fit_return_model(log, return_config)
    except DataError as exc:
        logger.warning("no return model: %s", exc)
        return None, str(exc)
    return model, None


def user_span_days(log: InteractionLog) -> np.ndarray:
    """``(n_users,)`` days from each user's first to last interaction (0 without timestamps or rows)."""
    inter = log.interactions
    times = inter["timestamp"].to_numpy(np.float64)
    if timestamps_are_row_numbers(inter["timestamp"].to_numpy(np.int64)):
        return np.zeros(log.n_users)
    users = inter["user"].to_numpy(np.int64)
    first = np.full(log.n_users, np.inf)
    last = np.full(log.n_users, -np.inf)
    np.minimum.at(first, users, times)
    np.maximum.at(last, users, times)
    return np.where(np.isfinite(first), (last - first) / DAY_SECONDS, 0.0)


def _fit_responses(head: InteractionLog, tail: InteractionLog, content: np.ndarray, config: FitConfig,
                   log: InteractionLog) -> tuple[dict[str, np.ndarray], Scales]:
    dwell_mean, dwell_std = _dwell_model(log)
    if "rating" not in log.interactions.columns:
        r = config.rating_dim
        zeros = {"rating_user": np.zeros((log.n_users, r), np.float32),
                 "rating_item": np.zeros((log.n_items, r), np.float32),
                 "rating_user_bias": np.zeros(log.n_users, np.float32),
                 "rating_item_bias": np.zeros(log.n_items, np.float32)}
        return zeros | {"dwell_item_log_mean": dwell_mean}, Scales(0.0, 0.0, 0.0, 0.0, 0.0, False, dwell_std)
    from recsim_env.fit.learners import fit_ratings

    arrays, mean, std = fit_ratings(head, tail, content, config)
    low, high, step = _rating_scale(log)
    return arrays | {"dwell_item_log_mean": dwell_mean}, Scales(mean, std, low, high, step, True, dwell_std)
