"""The return model: the gap from a session's end to the user's next session, right-censored at the log's end.

One record per ended session: the gap to the same user's next session when the log shows one
(*returned*), else the time from the session's end to the log's end (*censored*: the user may still
come back later; counting it as a return at that time would bias gaps short, dropping it would bias
them short too). Sessions are cut at gaps >= ``gap_seconds``, so every gap is at least that long; the
model is for the *excess* ``gap - gap_seconds`` (days), and every sampled gap is a valid session gap.

An accelerated failure time (AFT) model, ``log(excess) = intercept + x · coefficients + scale · ε``,
with ``ε`` standard normal (log-normal), standard minimum-extreme-value (Weibull) or standard logistic
(log-logistic: a hazard that rises, then falls), fitted by censored maximum likelihood (L-BFGS, scipy)
with an L2 penalty on the standardised coefficients. ``distribution="auto"`` picks the family by
*held-out* likelihood: each is fitted on four fifths of the training log's users and scored on the
censored records of the other fifth (:data:`SELECTION_SEED` draws the fifth), and the winner is refitted
on every record; a family with more freedom can only win by predicting users it did not see.
Why parametric: a simulator must *sample* gaps for a whole batch of users at once, and an AFT model
samples in closed form (``exp(μ + σ·ε)``) and has a closed-form survival function; a Cox model would
need a baseline-hazard inversion per draw. The project depends on scipy already, so no survival library
(lifelines) is added: these three families are a few lines each.

Covariates (raw, standardised inside the model): ``log1p_length`` (items in the ended session),
``mean_rating``, ``liked_share`` (ratings >= ``like_threshold``), ``disliked_share`` (<= ``dislike_threshold``)
(the three rating ones only when the log has ratings), ``genre_diversity`` (Gini-Simpson index
``1 - Σ p_g²`` of the session's genre mass), ``log1p_sessions`` (sessions of the user so far, this one
included) and ``log1p_days_since_first`` (days from the user's first interaction to this session's end).

No extrapolation past the data: a fitted model keeps each raw covariate's range on its fitting records and
clamps every design to it (a simulated user with more sessions than any logged one gets the gap of the most
active logged ones). Without the clamp, the model fitted on ML-100K's later split (``log1p_sessions``
-1.52 log-days per SD, logged at most 22 sessions so far) sent simulated users past 300 sessions in 60
days, each gap shorter than the last, and lifetimes ran to the env's step safeguard.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.data.sessions import DAY_SECONDS, DEFAULT_GAP_SECONDS, sessionize
from recsim_env.errors import ArtifactError, ConfigError, DataError
from recsim_env.fit.artifacts import check_kind, load_parts, save_parts
from recsim_env.fit.leave import timestamps_are_row_numbers

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3
"""Bumped whenever the saved arrays or their meaning change; other versions are refused on load.
2: the log-logistic family, and ``auto`` chooses by held-out likelihood (was: training likelihood).
3: each raw covariate's fitted range (``covariate_low`` / ``covariate_high``), to which the model clamps."""

DISTRIBUTIONS = ("lognormal", "weibull", "loglogistic")
SELECTION_SEED = 20261202
"""Seed of the users held out to choose the family (``distribution="auto"``): a fixed fifth of the users."""
SELECTION_SHARE = 0.2
"""Share of the training log's users whose records score the families."""

RATING_COVARIATES = ("mean_rating", "liked_share", "disliked_share")
UNBOUNDED = float(np.finfo(np.float64).max)
"""A hand-set model's covariate range (finite, so its artifact passes the loader's finiteness check): no clamp."""


@dataclass(frozen=True)
class ReturnConfig:
    """How sessions are cut, which covariates the return model has and how it is fitted."""

    gap_seconds: float = DEFAULT_GAP_SECONDS
    """Seconds of inactivity (>=) that end a session: the smallest possible gap."""
    like_threshold: float = 4.0
    """A rating >= this is a like."""
    dislike_threshold: float = 2.0
    """A rating <= this is a dislike."""
    distribution: str = "auto"
    """``lognormal``, ``weibull``, ``loglogistic``, or ``auto``: the one with the highest held-out likelihood on
    a fifth of the training log's users (fitted on the others; module docstring)."""
    l2: float = 1e-4
    """L2 penalty on the standardised coefficients, per record of the mean log-likelihood."""
    max_iterations: int = 500
    """L-BFGS iterations at most."""

    def __post_init__(self) -> None:
        for name in ("gap_seconds", "l2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise ConfigError(f"ReturnConfig.{name} must be a finite number >= 0, got {value!r}")
        if not self.gap_seconds > 0:
            raise ConfigError(f"ReturnConfig.gap_seconds must be > 0, got {self.gap_seconds!r}")
        if self.distribution not in DISTRIBUTIONS + ("auto",):
            raise ConfigError(f"ReturnConfig.distribution must be one of {DISTRIBUTIONS + ('auto',)}, "
                              f"got {self.distribution!r}")
        if isinstance(self.max_iterations, bool) or not isinstance(self.max_iterations, int) or self.max_iterations < 1:
            raise ConfigError(f"ReturnConfig.max_iterations must be a positive int, got {self.max_iterations!r}")


@dataclass(frozen=True, eq=False)
class SessionRecords:
    """One entry per ended session: its covariates (raw), its gap and whether the user returned."""

    user: np.ndarray
    """``(n,)`` int64 user index."""
    end_time: np.ndarray
    """``(n,)`` int64 timestamp of the session's last item."""
    columns: dict[str, np.ndarray]
    """Raw covariate columns ``(n,)`` by name (see the module docstring)."""
    gap_days: np.ndarray
    """``(n,)`` days to the next session (returned) or to the log's end (censored)."""
    returned: np.ndarray
    """``(n,)`` bool: the next session is in the log (an event; else censored)."""
    follow_up_days: np.ndarray
    """``(n,)`` days from the session's end to the log's end: the censoring time of this record."""

    def __len__(self) -> int:
        return len(self.user)


def genre_diversity(genre_mass: np.ndarray) -> np.ndarray:
    """Gini-Simpson index ``1 - Σ p_g²`` of each row of summed multi-hot genres (0 for no genres)."""
    total = genre_mass.sum(axis=1, keepdims=True)
    share = genre_mass / np.maximum(total, 1e-12)
    return np.where(total[:, 0] > 0, 1.0 - (share ** 2).sum(axis=1), 0.0)


def _union(log: InteractionLog, history: InteractionLog | None) -> tuple[InteractionLog, np.ndarray]:
    """``log`` after ``history`` (same index spaces) and, per row of the union, whether it is from ``log``."""
    if history is None:
        return log, np.ones(log.n_interactions, dtype=bool)
    if history.n_users != log.n_users or history.n_items != log.n_items:
        raise DataError(f"{log.name}: history {history.name} has {history.n_users} users / {history.n_items} items, "
                        f"the log {log.n_users} / {log.n_items}: pass the other part of the same split")
    both = pd.concat([history.interactions.assign(_from_log=False), log.interactions.assign(_from_log=True)])
    union = log.with_interactions(both, f"{history.name}+{log.name}")
    return union, union.interactions["_from_log"].to_numpy(bool)


def session_records(log: InteractionLog, config: ReturnConfig | None = None, history: InteractionLog | None = None,
                    end_time: float | None = None, item_genres: np.ndarray | None = None) -> SessionRecords:
    """The ended sessions of ``log`` with their gaps, censored at ``end_time`` (default: the last timestamp).

    Args:
        history: an earlier log over the same users and items (the training split, for a held-out
            log): its sessions count toward ``log1p_sessions`` and ``log1p_days_since_first`` but give
            no records. Sessions are those of the two logs together.
        item_genres: ``(n_items, G)`` multi-hot genres; ``None``: the log's item table.
    """
    config = config or ReturnConfig()
    if log.n_interactions == 0:
        raise DataError(f"{log.name}: the return model needs interactions; the log is empty")
    union, from_log = _union(log, history)
    inter = union.interactions
    times = inter["timestamp"].to_numpy(np.int64)
    if timestamps_are_row_numbers(log.interactions["timestamp"].to_numpy(np.int64)):
        raise DataError(f"{log.name}: the return model needs timestamps, and this log's are row numbers "
                        f"0..{log.n_interactions - 1} (loaded without a timestamp column): there are no gaps "
                        f"between sessions to fit; the leave hazard can still be fitted without them")
    end = float(times.max(initial=0)) if end_time is None else float(end_time)
    if end < times.max(initial=end):
        raise ConfigError(f"{log.name}: end_time {end_time!r} is before the log's last timestamp {times.max()}")
    session = sessionize(union, config.gap_seconds)
    first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    last = np.r_[first[1:] - 1, len(session) - 1]
    users = inter["user"].to_numpy(np.int64)[first]
    same_user_next = np.r_[users[1:] == users[:-1], False]
    next_start = np.r_[times[first[1:]], 0]
    gap = np.where(same_user_next, next_start - times[last], end - times[last]).astype(np.float64)
    columns = _covariates(union, session, first, last, users, config, item_genres)
    # Records of log's own sessions whose end the log saw: the user was idle >= gap_seconds after them.
    keep = from_log[first] & (same_user_next | (end - times[last] >= config.gap_seconds))
    return SessionRecords(users[keep], times[last][keep], {k: v[keep] for k, v in columns.items()},
                          gap[keep] / DAY_SECONDS, same_user_next[keep], (end - times[last][keep]) / DAY_SECONDS)


def raw_covariates(length: np.ndarray, mean_rating: np.ndarray | None, liked_share: np.ndarray | None,
                   disliked_share: np.ndarray | None, genre_diversity: np.ndarray, sessions_so_far: np.ndarray,
                   days_since_first: np.ndarray) -> dict[str, np.ndarray]:
    """Each covariate's column by name from the raw ``(n,)`` quantities (rating ones only when given)."""
    columns = {"log1p_length": np.log1p(np.asarray(length, np.float64))}
    if mean_rating is not None:
        columns["mean_rating"] = np.asarray(mean_rating, np.float64)
        columns["liked_share"] = np.asarray(liked_share, np.float64)
        columns["disliked_share"] = np.asarray(disliked_share, np.float64)
    columns["genre_diversity"] = np.asarray(genre_diversity, np.float64)
    columns["log1p_sessions"] = np.log1p(np.asarray(sessions_so_far, np.float64))
    columns["log1p_days_since_first"] = np.log1p(np.asarray(days_since_first, np.float64))
    return columns


def _covariates(log: InteractionLog, session: np.ndarray, first: np.ndarray, last: np.ndarray, users: np.ndarray,
                config: ReturnConfig, item_genres: np.ndarray | None) -> dict[str, np.ndarray]:
    """Raw covariate columns of every session of ``log`` (sessions contiguous, ``first``/``last`` rows)."""
    inter = log.interactions
    times = inter["timestamp"].to_numpy(np.int64)
    length = np.bincount(session).astype(np.float64)
    shares: list[np.ndarray | None] = [None, None, None]
    if "rating" in inter.columns:
        rating = inter["rating"].to_numpy(np.float64)
        shares = [np.add.reduceat(values, first) / length
                  for values in (rating, (rating >= config.like_threshold) * 1.0,
                                 (rating <= config.dislike_threshold) * 1.0)]
    genres = ItemCatalog.from_log(log).genres if item_genres is None else item_genres
    diversity = genre_diversity(np.add.reduceat(genres[inter["item"].to_numpy()], first, axis=0))
    new_user = np.r_[True, users[1:] != users[:-1]]
    session_index = np.arange(len(users)) - np.maximum.accumulate(np.where(new_user, np.arange(len(users)), 0))
    user_first_row = np.maximum.accumulate(np.where(new_user, first, 0))
    days = (times[last] - times[user_first_row]) / DAY_SECONDS
    return raw_covariates(length, *shares, diversity, session_index + 1.0, days)


def covariate_names(has_rating: bool) -> tuple[str, ...]:
    """Every covariate of the full model, in design-column order."""
    rating = RATING_COVARIATES if has_rating else ()
    return ("log1p_length",) + rating + ("genre_diversity", "log1p_sessions", "log1p_days_since_first")


# ---------------------------------------------------------------------------- the model
def _log_density_terms(z: np.ndarray, distribution: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(log f(z), d log f / dz, log S(z), d log S / dz) of the standard error distribution."""
    if distribution == "lognormal":
        log_survival = special.log_ndtr(-z)
        log_pdf = -0.5 * z * z - 0.5 * np.log(2 * np.pi)
        return log_pdf, -z, log_survival, -np.exp(log_pdf - log_survival)
    if distribution == "loglogistic":  # f = σ(z)(1 - σ(z)), S = 1 - σ(z)
        log_survival = -np.logaddexp(0.0, z)
        sigmoid = special.expit(z)
        return z + 2.0 * log_survival, 1.0 - 2.0 * sigmoid, log_survival, -sigmoid
    expz = np.exp(np.minimum(z, 700.0))
    return z - expz, 1.0 - expz, -expz, -expz


def _standard_survival(z: np.ndarray, distribution: str) -> np.ndarray:
    if distribution == "lognormal":
        return special.ndtr(-z)
    if distribution == "loglogistic":
        return special.expit(-z)
    return np.exp(-np.exp(np.minimum(z, 700.0)))


@dataclass(frozen=True, eq=False)
class ReturnModel:
    """A fitted (or hand-set) AFT return model: ``log(gap - gap_seconds) = μ(x) + scale · ε`` (days)."""

    covariate_names: tuple[str, ...]
    """Design columns, in order."""
    distribution: str
    """``lognormal``, ``weibull`` or ``loglogistic``."""
    intercept: float
    """``μ`` (log days of excess gap) at the mean of every covariate."""
    coefficients: np.ndarray
    """``(C,)`` change in ``log`` gap per standard deviation of each covariate (> 0: returns later)."""
    log_scale: float
    """``log σ`` of the error term."""
    covariate_mean: np.ndarray
    """``(C,)`` mean of each raw covariate on the fitting records."""
    covariate_scale: np.ndarray
    """``(C,)`` standard deviation of each raw covariate (1 where constant)."""
    covariance: np.ndarray
    """``(C + 2, C + 2)`` covariance of ``(intercept, coefficients, log_scale)``."""
    covariate_low: np.ndarray
    """``(C,)`` smallest value of each raw covariate on the fitting records (``-UNBOUNDED`` for a hand-set model)."""
    covariate_high: np.ndarray
    """``(C,)`` largest value (:data:`UNBOUNDED` for a hand-set model): designs are clamped to ``[low, high]``."""
    gap_seconds: float = DEFAULT_GAP_SECONDS
    """The session gap: every gap is at least this."""
    like_threshold: float = 4.0
    """As :attr:`ReturnConfig.like_threshold`."""
    dislike_threshold: float = 2.0
    """As :attr:`ReturnConfig.dislike_threshold`."""
    meta: dict = field(default_factory=dict)
    """Provenance: dataset, fingerprint, records, returns, log-likelihoods, fit seconds."""

    @property
    def has_rating(self) -> bool:
        return "mean_rating" in self.covariate_names

    @property
    def scale(self) -> float:
        return float(np.exp(self.log_scale))

    def covariates(self, length: np.ndarray, mean_rating: np.ndarray | None, liked_share: np.ndarray | None,
                   disliked_share: np.ndarray | None, genre_diversity: np.ndarray, sessions_so_far: np.ndarray,
                   days_since_first: np.ndarray) -> np.ndarray:
        """``(n, C)`` standardised design of ``n`` ended sessions from raw ``(n,)`` quantities.

        Args:
            length: items consumed in the session.
            mean_rating, liked_share, disliked_share: of its ratings (``None`` only without ratings).
            genre_diversity: :func:`genre_diversity` of the session's summed multi-hot genres.
            sessions_so_far: the user's sessions up to and including this one (1 for a first session).
            days_since_first: days from the user's first interaction to this session's end.
        """
        if self.has_rating and mean_rating is None:
            raise ConfigError("ReturnModel.covariates: this model was fitted with ratings; pass mean_rating, "
                              "liked_share and disliked_share")
        if not self.has_rating:
            mean_rating = liked_share = disliked_share = None
        columns = raw_covariates(length, mean_rating, liked_share, disliked_share, genre_diversity,
                                 sessions_so_far, days_since_first)
        return self._standardise(columns, len(np.asarray(length)))

    def design(self, records: SessionRecords) -> np.ndarray:
        """The standardised design of logged records (:func:`session_records`)."""
        return self._standardise(records.columns, len(records))

    def _standardise(self, columns: dict[str, np.ndarray], n_rows: int) -> np.ndarray:
        raw = np.column_stack([columns[k] for k in self.covariate_names]) if self.covariate_names \
            else np.zeros((n_rows, 0))
        return (np.clip(raw, self.covariate_low, self.covariate_high) - self.covariate_mean) / self.covariate_scale

    def location(self, design: np.ndarray) -> np.ndarray:
        """``(n,)`` ``μ``: the median excess gap is ``exp(μ)`` days for a log-normal model."""
        return self.intercept + np.asarray(design, np.float64) @ self.coefficients

    def survival(self, days: np.ndarray | float, design: np.ndarray) -> np.ndarray:
        """``P(gap > days)`` per session: ``days`` a scalar or ``(n,)`` gives ``(n,)``; ``(n, m)`` gives ``(n, m)``."""
        days = np.asarray(days, np.float64)
        location = self.location(design)
        if days.ndim == 2:
            location = location[:, None]
        excess = days - self.gap_seconds / DAY_SECONDS
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(excess, 0.0)) - location) / self.scale
        return np.where(excess > 0, _standard_survival(z, self.distribution), 1.0)

    def sample_gaps(self, design: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n,)`` float64 gaps in days (each >= ``gap_seconds``), one draw per session, in closed form."""
        n_rows = len(design)
        if self.distribution == "lognormal":
            noise = rng.standard_normal(n_rows)
        elif self.distribution == "loglogistic":  # the logit of a uniform is a standard logistic draw
            noise = special.logit(rng.random(n_rows))
        else:  # log of a unit exponential is a standard minimum-extreme-value draw
            noise = np.log(rng.standard_exponential(n_rows))
        return self.gap_seconds / DAY_SECONDS + np.exp(self.location(design) + self.scale * noise)

    def raw_coefficients(self) -> tuple[float, dict[str, float], dict[str, float]]:
        """(raw intercept, coefficient per raw covariate unit, standard errors of those and of ``log_scale``)."""
        n_cov = len(self.covariate_names)
        transform = np.eye(n_cov + 2)
        transform[0, 1:n_cov + 1] = -self.covariate_mean / self.covariate_scale
        transform[1:n_cov + 1, 1:n_cov + 1] = np.diag(1.0 / self.covariate_scale)
        params = transform @ np.r_[self.intercept, self.coefficients, self.log_scale]
        errors = np.sqrt(np.maximum(np.diag(transform @ self.covariance @ transform.T), 0.0))
        names = self.covariate_names
        return float(params[0]), dict(zip(names, params[1:n_cov + 1].tolist())), \
            dict(zip(("intercept",) + names + ("log_scale",), errors.tolist()))

    @classmethod
    def from_raw(cls, intercept: float, coefficients: dict[str, float], scale: float,
                 distribution: str = "weibull", config: ReturnConfig | None = None) -> ReturnModel:
        """A hand-set model on raw covariates (ground truth for synthetic logs); unnamed ones get 0."""
        config = config or ReturnConfig()
        names = covariate_names(has_rating=any(k in coefficients for k in RATING_COVARIATES))
        unknown = set(coefficients) - set(names)
        if unknown or distribution not in DISTRIBUTIONS or not scale > 0:
            raise ConfigError(f"ReturnModel.from_raw: unknown covariate(s) {sorted(unknown)} (known: {list(names)}), "
                              f"distribution {distribution!r} or scale {scale!r} (must be > 0)")
        n_cov = len(names)
        return cls(names, distribution, float(intercept), np.array([coefficients.get(k, 0.0) for k in names]),
                   float(np.log(scale)), np.zeros(n_cov), np.ones(n_cov), np.zeros((n_cov + 2, n_cov + 2)),
                   np.full(n_cov, -UNBOUNDED), np.full(n_cov, UNBOUNDED), config.gap_seconds, config.like_threshold,
                   config.dislike_threshold, {"source": "hand-set"})

    # ------------------------------------------------------------------ artifact
    def to_parts(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able header, plain arrays): what :meth:`save` writes, and what a fitted user model's
        artifact embeds (read back with :meth:`from_parts`)."""
        header = {
            "format_version": FORMAT_VERSION,
            "kind": "return_model",
            "covariate_names": list(self.covariate_names),
            "distribution": self.distribution,
            "intercept": self.intercept,
            "log_scale": self.log_scale,
            "gap_seconds": self.gap_seconds,
            "like_threshold": self.like_threshold,
            "dislike_threshold": self.dislike_threshold,
            "meta": self.meta,
        }
        return header, {name: getattr(self, name) for name in ARRAY_FIELDS}

    @classmethod
    def from_parts(cls, header: dict, arrays: dict[str, np.ndarray], where: str) -> ReturnModel:
        """:meth:`to_parts`' output back; :class:`ArtifactError` naming ``where`` on another kind or format."""
        _check_kind(header, where)
        n_cov = len(header["covariate_names"])
        shapes = {"coefficients": (n_cov,), "covariate_mean": (n_cov,), "covariate_scale": (n_cov,),
                  "covariance": (n_cov + 2, n_cov + 2), "covariate_low": (n_cov,), "covariate_high": (n_cov,)}
        for name, shape in shapes.items():
            if arrays[name].shape != shape:
                raise ArtifactError(f"{where}: return model array {name!r} has shape {arrays[name].shape}, expected "
                                    f"{shape} for {n_cov} covariates; the artifact is damaged: refit it")
        return cls(tuple(header["covariate_names"]), header["distribution"], float(header["intercept"]),
                   arrays["coefficients"], float(header["log_scale"]), arrays["covariate_mean"],
                   arrays["covariate_scale"], arrays["covariance"], arrays["covariate_low"], arrays["covariate_high"],
                   header["gap_seconds"], header["like_threshold"],
                   header["dislike_threshold"], header["meta"])

    def save(self, path: str | Path) -> Path:
        """Write plain arrays and a JSON header to ``.npz`` (read back with ``allow_pickle=False``)."""
        header, arrays = self.to_parts()
        return save_parts(path, header, arrays)

    @classmethod
    def load(cls, path: str | Path) -> ReturnModel:
        """Read :meth:`save`'s file; :class:`ArtifactError` on another kind or format version."""
        header, arrays = load_parts(path, "return_model", FORMAT_VERSION, ARRAY_FIELDS, "return model")
        return cls.from_parts(header, arrays, str(path))


def _check_kind(header: dict, where: str) -> None:
    check_kind(header, where, "return_model", FORMAT_VERSION)


ARRAY_FIELDS = ("coefficients", "covariate_mean", "covariate_scale", "covariance", "covariate_low", "covariate_high")
"""The array fields of :class:`ReturnModel`, saved as they are."""


# ---------------------------------------------------------------------------- fitting
def _log_excess(records: SessionRecords, gap_seconds: float) -> np.ndarray:
    """log days beyond the session gap (floored at one second: a gap of exactly ``gap_seconds``)."""
    return np.log(np.maximum(records.gap_days - gap_seconds / DAY_SECONDS, 1.0 / DAY_SECONDS))


def _objective(params: np.ndarray, design: np.ndarray, log_time: np.ndarray, event: np.ndarray,
               distribution: str, l2: float) -> tuple[float, np.ndarray]:
    """Penalised mean negative censored log-likelihood of an AFT model and its gradient."""
    n_cov = design.shape[1]
    sigma = np.exp(params[-1])
    z = (log_time - params[0] - design @ params[1:n_cov + 1]) / sigma
    log_pdf, dlog_pdf, log_surv, dlog_surv = _log_density_terms(z, distribution)
    loglik = np.where(event, log_pdf - params[-1], log_surv)
    dz = np.where(event, dlog_pdf, dlog_surv)  # d loglik / dz; dz/dμ = -1/σ, dz/dlogσ = -z
    coefficients = params[1:n_cov + 1]
    gradient = np.empty_like(params)
    gradient[0] = np.mean(dz) / sigma
    gradient[1:n_cov + 1] = design.T @ dz / (len(z) * sigma) + l2 * coefficients
    gradient[-1] = np.mean(dz * z + event)
    return float(-np.mean(loglik) + 0.5 * l2 * coefficients @ coefficients), gradient


def fit_aft(records: SessionRecords, names: tuple[str, ...], distribution: str, config: ReturnConfig,
            meta: dict | None = None) -> ReturnModel:
    """Fit an AFT model with covariates ``names`` (``()``: covariate-free) on ``records``."""
    raw = np.column_stack([records.columns[k] for k in names]) if names else np.zeros((len(records), 0))
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    design = (raw - mean) / scale
    log_time = _log_excess(records, config.gap_seconds)
    event = records.returned
    start = np.r_[log_time.mean(), np.zeros(len(names)), np.log(max(log_time.std(), 1e-3))]
    args = (design, log_time, event, distribution, config.l2)
    result = optimize.minimize(_objective, start, args=args, jac=True, method="L-BFGS-B",
                               options={"maxiter": config.max_iterations, "gtol": 1e-9})
    if not result.success:
        logger.warning("return model (%s): L-BFGS stopped: %s", distribution, result.message)
    covariance = np.linalg.pinv(_hessian(result.x, args) * len(records))
    n_cov = len(names)
    meta = dict(meta or {}) | {"records": len(records), "returns": int(event.sum()),
                               "train_log_likelihood": -float(result.fun), "converged": bool(result.success)}
    return ReturnModel(tuple(names), distribution, float(result.x[0]), result.x[1:n_cov + 1], float(result.x[-1]),
                       mean, scale, covariance, raw.min(axis=0, initial=np.inf), raw.max(axis=0, initial=-np.inf),
                       config.gap_seconds, config.like_threshold,
                       config.dislike_threshold, meta)


def _hessian(params: np.ndarray, args: tuple) -> np.ndarray:
    """Central differences of the analytic gradient (a handful of parameters: cheap)."""
    step = 1e-5
    columns = []
    for index in range(len(params)):
        shift = np.zeros_like(params)
        shift[index] = step
        columns.append((_objective(params + shift, *args)[1] - _objective(params - shift, *args)[1]) / (2 * step))
    hessian = np.column_stack(columns)
    return 0.5 * (hessian + hessian.T)


def _check_returns(records: SessionRecords, log: InteractionLog, config: ReturnConfig) -> None:
    if records.returned.any():
        excess = _log_excess(records, config.gap_seconds)[records.returned]
        if np.ptp(excess) < 1e-9:
            # One gap shared by every return: the likelihood grows without bound as the scale shrinks.
            raise DataError(f"{log.name}: the return model needs gaps that vary, and all {excess.size} returns "
                            f"come {records.gap_days[records.returned][0] * DAY_SECONDS:g} s after their session's end "
                            f"(a log on a clock, e.g. one interaction an hour); the leave hazard can still be "
                            f"fitted on this log")
        return
    if len(records) == 0:
        raise DataError(f"{log.name}: the return model needs ended sessions; the log has none that ended "
                        f">= {config.gap_seconds:g} s before its last timestamp")
    raise DataError(f"{log.name}: the return model needs users with two or more sessions (a return to fit), "
                    f"and every user here has a single session (sessions split at gaps >= "
                    f"{config.gap_seconds:g} s); the leave hazard can still be fitted on this log")


def fit_return_model(log: InteractionLog, config: ReturnConfig | None = None, names: tuple[str, ...] | None = None,
                     end_time: float | None = None) -> ReturnModel:
    """Fit the return model on ``log`` (pass the training split), censored at ``end_time``.

    :class:`DataError` when the log cannot show a return: no timestamps, or one session per user.
    """
    config = config or ReturnConfig()
    began = time.perf_counter()
    records = session_records(log, config, end_time=end_time)
    _check_returns(records, log, config)
    names = covariate_names("mean_rating" in records.columns) if names is None else tuple(names)
    meta = {"dataset": log.name, "fingerprint": log.fingerprint()}
    families = DISTRIBUTIONS if config.distribution == "auto" else (config.distribution,)
    held_out = choose_distribution(records, names, config) if len(families) > 1 else {}
    family = max(held_out, key=lambda k: np.nan_to_num(held_out[k], nan=-np.inf)) if held_out else families[0]
    model = fit_aft(records, names, family, config, meta)
    if not np.isfinite(model.meta["train_log_likelihood"]):
        raise DataError(f"{log.name}: the return model's fit failed (no finite likelihood for {family}); "
                        f"the leave hazard can still be fitted on this log")
    if held_out:
        model.meta["heldout_log_likelihood_by_distribution"] = held_out
        model.meta["distribution_choice"] = (f"held-out likelihood per record on {SELECTION_SHARE:.0%} of the "
                                             f"training log's users (fitted on the rest)")
    model.meta["fit_seconds"] = time.perf_counter() - began
    return model


def subset(records: SessionRecords, rows: np.ndarray) -> SessionRecords:
    """The records at ``rows`` (a mask or indices)."""
    return SessionRecords(records.user[rows], records.end_time[rows], {k: v[rows] for k, v in records.columns.items()},
                          records.gap_days[rows], records.returned[rows], records.follow_up_days[rows])


def choose_distribution(records: SessionRecords, names: tuple[str, ...], config: ReturnConfig) -> dict[str, float]:
    """Mean censored log-likelihood per record of each family on a held-out fifth of the users' records,
    each fitted on the other users' records; families whose fit or score fails get NaN. With fewer than
    10 users (or no return among the held-out records) every family scores on the training records."""
    users = np.unique(records.user)
    chosen = np.random.default_rng(SELECTION_SEED).random(len(users)) < SELECTION_SHARE
    held = np.isin(records.user, users[chosen])
    if len(users) < 10 or not records.returned[held].any() or not records.returned[~held].any():
        held = np.ones(len(records), dtype=bool)
    fit_on = subset(records, ~held if not held.all() else held)
    scored = subset(records, held)
    out = {}
    for family in DISTRIBUTIONS:
        model = fit_aft(fit_on, names, family, config)
        out[family] = log_likelihood(model, scored) if np.isfinite(model.meta["train_log_likelihood"]) else np.nan
    return out


def log_likelihood(model: ReturnModel, records: SessionRecords) -> float:
    """Mean censored log-likelihood per record of ``model`` on ``records`` (log density of the excess gap
    in log-days for a return, log survival for a censored record)."""
    z = (_log_excess(records, model.gap_seconds) - model.location(model.design(records))) / model.scale
    log_pdf, _, log_surv, _ = _log_density_terms(z, model.distribution)
    return float(np.mean(np.where(records.returned, log_pdf - model.log_scale, log_surv)))


# ---------------------------------------------------------------------------- held-out figures
def kaplan_meier(days: np.ndarray, returned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Product-limit estimate: (distinct return times, ``P(gap > t)`` just after each)."""
    order = np.argsort(days, kind="stable")
    days, returned = np.asarray(days)[order], np.asarray(returned, bool)[order]
    times, first = np.unique(days, return_index=True)
    at_risk = len(days) - first
    events = np.add.reduceat(returned.astype(np.float64), first) if len(days) else np.zeros(0)
    hit = events > 0
    return times[hit], np.cumprod(1.0 - events[hit] / at_risk[hit])


def km_survival_at(days: np.ndarray, returned: np.ndarray, horizon: float) -> float:
    """Kaplan-Meier ``P(gap > horizon)``."""
    times, survival = kaplan_meier(days, returned)
    index = np.searchsorted(times, horizon, side="right")
    return float(survival[index - 1]) if index else 1.0


def concordance_index(days: np.ndarray, returned: np.ndarray, predicted_days: np.ndarray) -> float:
    """Harrell's C: of the pairs whose order is known (the shorter gap was a return), the share the
    prediction orders alike; ties in the prediction count half. A covariate-free model scores 0.5."""
    days = np.asarray(days, np.float64)
    predicted = np.asarray(predicted_days, np.float64)
    concordant = 0.0
    comparable = 0.0
    for start in range(0, len(days), 1024):  # chunks keep the pair matrix small
        rows = slice(start, start + 1024)
        known = returned[rows, None] & (days[rows, None] < days[None, :])
        earlier = predicted[rows, None] < predicted[None, :]
        tied = predicted[rows, None] == predicted[None, :]
        concordant += float((known & earlier).sum() + 0.5 * (known & tied).sum())
        comparable += float(known.sum())
    return concordant / comparable if comparable else float("nan")


def ks_two_sample(first: np.ndarray, second: np.ndarray) -> float:
    """The Kolmogorov-Smirnov statistic of two samples (NaN when one is empty)."""
    if len(first) == 0 or len(second) == 0:
        return float("nan")
    grid = np.sort(np.r_[first, second])
    first_cdf = np.searchsorted(np.sort(first), grid, side="right") / len(first)
    second_cdf = np.searchsorted(np.sort(second), grid, side="right") / len(second)
    return float(np.max(np.abs(first_cdf - second_cdf)))


@dataclass(frozen=True)
class Calibration:
    """Predicted against Kaplan-Meier observed ``P(return within horizon)`` on held-out records."""

    horizon_days: float
    """The horizon."""
    predicted: float
    """Mean model probability over the records."""
    observed: float
    """Kaplan-Meier ``1 - S(horizon)`` of the records."""
    null_predicted: float
    """The covariate-free model's probability."""
    quartiles: tuple[tuple[float, float], ...]
    """(predicted, observed) within each quarter of records ranked by the model's probability."""


@dataclass(frozen=True)
class ReturnValidation:
    """Held-out figures of a return model against a covariate-free one fitted on the same records."""

    concordance: float
    """Harrell's C of the model's median gap (the covariate-free model's is 0.5 by construction)."""
    null_concordance: float
    """Harrell's C of the covariate-free model (every prediction tied: 0.5)."""
    calibration: tuple[Calibration, ...]
    """One per horizon."""
    ks_marginal: float
    """sup |KM CDF - mean model CDF| over held-out return times."""
    null_ks_marginal: float
    """The same for the covariate-free model."""
    ks_simulated: float
    """KS of logged returns' gaps against simulated gaps censored at each record's own follow-up."""
    null_ks_simulated: float
    """The same for the covariate-free model."""
    logged_return_share: float
    """Share of held-out records with a return in the log."""
    simulated_return_share: float
    """Share of simulated gaps within their record's follow-up."""
    records: int
    """Held-out records."""
    returns: int
    """Of those, returns."""


def _ks_marginal(model: ReturnModel, design: np.ndarray, records: SessionRecords) -> float:
    times, survival = kaplan_meier(records.gap_days, records.returned)
    if len(times) == 0:
        return float("nan")
    model_cdf = 1.0 - model.survival(np.broadcast_to(times, (len(design), len(times))), design).mean(axis=0)
    before = 1.0 - np.r_[1.0, survival[:-1]]  # the KM step's left limit
    return float(max(np.abs(1.0 - survival - model_cdf).max(), np.abs(before - model_cdf).max()))


def _ks_simulated(model: ReturnModel, design: np.ndarray, records: SessionRecords, rng: np.random.Generator,
                  draws: int) -> tuple[float, float]:
    """(KS, simulated return share): ``draws`` gaps per record, each observed only within the record's
    own follow-up, as the logged gaps were; many draws keep the simulated side's noise small."""
    simulated = model.sample_gaps(np.tile(design, (draws, 1)), rng)
    seen = simulated <= np.tile(records.follow_up_days, draws)
    return ks_two_sample(records.gap_days[records.returned], simulated[seen]), float(seen.mean())


def _calibration(model: ReturnModel, null: ReturnModel, design: np.ndarray, null_design: np.ndarray,
                 records: SessionRecords, horizon: float) -> Calibration:
    predicted = 1.0 - model.survival(horizon, design)
    quarters = np.array_split(np.argsort(predicted, kind="stable"), 4)
    quartiles = tuple((float(predicted[rows].mean()),
                       1.0 - km_survival_at(records.gap_days[rows], records.returned[rows], horizon))
                      for rows in quarters if len(rows))
    observed = 1.0 - km_survival_at(records.gap_days, records.returned, horizon)
    return Calibration(horizon, float(predicted.mean()), observed,
                       float((1.0 - null.survival(horizon, null_design)).mean()), quartiles)


def validate_return_model(model: ReturnModel, null: ReturnModel, records: SessionRecords, rng: np.random.Generator,
                          horizons: tuple[float, ...] = (7.0, 30.0), draws: int = 20) -> ReturnValidation:
    """Concordance, calibration at ``horizons`` (days) and gap KS of ``model`` and the covariate-free
    ``null`` (both fitted on the training records) on held-out ``records``; ``draws`` simulated gaps
    per record for the simulated KS."""
    if len(records) == 0 or not records.returned.any():
        raise DataError("held-out records have no returns: the return model cannot be validated on them")
    design = model.design(records)
    null_design = null.design(records)
    ks_model, share = _ks_simulated(model, design, records, rng, draws)
    ks_null, _ = _ks_simulated(null, null_design, records, rng, draws)
    return ReturnValidation(
        concordance=concordance_index(records.gap_days, records.returned, model.location(design)),
        null_concordance=concordance_index(records.gap_days, records.returned, null.location(null_design)),
        calibration=tuple(_calibration(model, null, design, null_design, records, h) for h in horizons),
        ks_marginal=_ks_marginal(model, design, records), null_ks_marginal=_ks_marginal(null, null_design, records),
        ks_simulated=ks_model, null_ks_simulated=ks_null, logged_return_share=float(records.returned.mean()),
        simulated_return_share=share, records=len(records), returns=int(records.returned.sum()))
