"""Choice models: how a user picks at most one slot of a slate, given the items' utilities.

Two models implement :class:`~recsim_env.protocols.ChoiceModel`:

* :class:`MultinomialLogit` — the user weighs the whole slate at once:
  ``P(slot j) ∝ exp(u_j / T) * e_j`` with examination ``e_j = 1 / (1 + j) ** position_decay`` and
  ``P(no click) ∝ exp(no_click_utility / T)``.
* :class:`CascadeChoice` — the user scans the slots in order, may abandon before each one, clicks
  slot ``j`` with probability ``sigmoid((u_j - no_click_utility) / T)`` and stops at the first click.

Invalid slots (empty, or duplicates the env blanked) get probability 0 in both. The no-click
utility sets the click-through rate; :func:`calibrate_no_click` finds the value that hits a target
CTR on given utilities, which is the documented way to calibrate either model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from recsim_env.errors import ConfigError


@lru_cache(maxsize=64)
def _log_examination(k: int, position_decay: float) -> np.ndarray:
    """``(k,)`` log examination probability of each slot; cached because every step asks for it."""
    out = -position_decay * np.log1p(np.arange(k, dtype=np.float64))
    out.setflags(write=False)
    return out


# exp(700) ~ 1e304: k + 1 weights up to exp(_EXP_SAFE) ~ 1e260 sum far below float64's max.
_EXP_SAFE = 600.0


@lru_cache(maxsize=64)
def _slot_offsets(k: int, position_decay: float, no_click_logit: float) -> np.ndarray:
    """``(k, 1)`` log examination of each slot minus the no-click logit; cached like the examination."""
    out = (_log_examination(k, position_decay) - no_click_logit)[:, None]
    out.setflags(write=False)
    return out


@lru_cache(maxsize=64)
def _log_examination_tuple(k: int, position_decay: float) -> tuple[float, ...]:
    """:func:`_log_examination` as Python floats, for the one-user path."""
    return tuple(_log_examination(k, position_decay).tolist())


def _check_fields(model: object) -> None:
    """Every field finite and the temperature positive: what both choice models require."""
    for name, value in vars(model).items():
        if not math.isfinite(value):
            raise ConfigError(f"{type(model).__name__}.{name} must be finite, got {value!r}")
    if model.temperature <= 0:  # type: ignore[attr-defined]
        raise ConfigError(f"{type(model).__name__}.temperature must be > 0, got {model.temperature!r}")


def sample_categorical(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``(n, k + 1)`` choice weights -> ``(n,)`` slot, ``-1`` for the last column.

    Rows need not sum to 1. One uniform per row against the running sum (inverse CDF): a single
    ``rng.random`` call, so a batch of users costs the same number of generator calls as one user.
    """
    return sample_columns(np.array(weights, dtype=np.float64).T, rng)


def sample_columns(weights_t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:func:`sample_categorical` on transposed ``(k + 1, n)`` weights, which it overwrites.

    Users along the last axis make every pass a contiguous row operation over all users: numpy's
    reductions and running sums along a short last axis cost several times more.
    """
    k, n = weights_t.shape[0] - 1, weights_t.shape[1]
    if n >= 64:
        for j in range(1, k + 1):  # k contiguous row adds beat cumsum's strided inner loop
            weights_t[j] += weights_t[j - 1]
    else:
        np.cumsum(weights_t, axis=0, out=weights_t)  # one call: fewest calls for a few users
    u = rng.random(n)
    u *= weights_t[k]
    below = weights_t <= u
    # Counted in the narrowest integer that holds k + 1 (np.count_nonzero(axis=) has a slow Python
    # wrapper; a wider accumulator costs a wider pass).
    slot = np.add.reduce(below, axis=0, dtype=np.int8 if k < 127 else np.int64).astype(np.int64)
    # u == total (rounding) would count k + 1 columns; both that and k mean the no-click column.
    slot[slot >= k] = -1
    return slot


@dataclass(frozen=True)
class MultinomialLogit:
    """Multinomial logit over the slate with a no-click option and position bias."""

    temperature: float = 1.0
    """Softmax temperature ``T`` (> 0): larger means choices depend less on utility."""
    no_click_utility: float = 0.0
    """Utility of not clicking; raising it lowers the click-through rate."""
    position_decay: float = 0.0
    """Examination of slot ``j`` is ``1 / (1 + j) ** position_decay`` (0: no position bias)."""

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.position_decay < 0:
            raise ConfigError(f"MultinomialLogit.position_decay must be >= 0, got {self.position_decay!r}")

    def probabilities(self, utilities: np.ndarray, valid: np.ndarray) -> np.ndarray:
        weights = self.weights_t(utilities, valid)
        weights /= weights.sum(axis=0)
        return np.ascontiguousarray(weights.T)

    def weights_t(self, utilities: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``(k + 1, n)`` unnormalised choice weights (users along the last axis), the no-click weight 1."""
        n, k = utilities.shape
        logits = np.empty((k + 1, n), dtype=np.float64)
        slots = logits[:k]
        np.multiply(utilities.T, 1.0 / self.temperature, out=slots)
        # Logits relative to no-click's, so its weight is exp(0) = 1 with no pass over it; the
        # examination term rides along in the same (k, 1) add.
        slots += _slot_offsets(k, self.position_decay, self.no_click_utility / self.temperature)
        if not valid.all():  # the common case, a slate without empty slots, skips a masked pass
            np.copyto(slots, -np.inf, where=~valid.T)
        if slots.max() > _EXP_SAFE:
            # Some slot towers over not clicking: shift each column by its max so exp() stays finite.
            logits[k] = 0.0
            logits -= logits.max(axis=0)
            np.exp(logits, out=logits)
            return logits
        np.exp(slots, out=slots)
        logits[k] = 1.0
        return logits

    def sample(self, utilities: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if utilities.shape[0] == 1:
            return np.array([self._sample_one(utilities[0].tolist(), valid[0].tolist(), rng)], dtype=np.int64)
        # Unnormalised weights suffice for inverse-CDF sampling: saves a division pass per step.
        return sample_columns(self.weights_t(utilities, valid), rng)

    def _sample_one(self, utilities: list[float], valid: list[bool], rng: np.random.Generator) -> int:
        """One user's draw in plain Python: for ``k`` ~ 10 slots, a dozen numpy calls cost more than the maths.

        The same inverse-CDF draw as :func:`sample_columns` (one uniform against the running sum).
        """
        scale = 1.0 / self.temperature
        exam = _log_examination_tuple(len(utilities), self.position_decay)
        logits = [u * scale + e for u, e in zip(utilities, exam)]
        no_click = self.no_click_utility * scale
        top = max([no_click, *(x for x, ok in zip(logits, valid) if ok)])
        running, cumulative = 0.0, []
        for x, ok in zip(logits, valid):
            if ok:
                running += math.exp(x - top)
            cumulative.append(running)
        draw = rng.random() * (running + math.exp(no_click - top))
        for slot, edge in enumerate(cumulative):
            if draw < edge:
                return slot
        return -1


@dataclass(frozen=True)
class CascadeChoice:
    """Cascade model: scan slots in order, click the first attractive one, maybe abandon on the way."""

    temperature: float = 1.0
    """Sigmoid temperature ``T`` (> 0) of each slot's click probability."""
    no_click_utility: float = 0.0
    """Offset of the click sigmoid: slot ``j`` is clicked w.p. ``sigmoid((u_j - no_click_utility) / T)``."""
    abandon_probability: float = 0.0
    """Probability, before examining each slot, that the user stops scanning (in ``[0, 1)``)."""

    def __post_init__(self) -> None:
        _check_fields(self)
        if not 0.0 <= self.abandon_probability < 1.0:
            raise ConfigError(f"CascadeChoice.abandon_probability must be in [0, 1), "
                              f"got {self.abandon_probability!r}")

    def probabilities(self, utilities: np.ndarray, valid: np.ndarray) -> np.ndarray:
        n, k = utilities.shape
        z = (np.asarray(utilities, dtype=np.float64) - self.no_click_utility) / self.temperature
        # Stable sigmoid: exp of a non-positive number only.
        ez = np.exp(-np.abs(z))
        click = np.where(z >= 0, 1.0 / (1.0 + ez), ez / (1.0 + ez)) * valid
        keep = 1.0 - self.abandon_probability
        # Probability the user reaches (and examines) slot j: kept going and skipped all slots before it.
        passed = np.cumprod(keep * (1.0 - click), axis=1)
        reach = np.empty((n, k), dtype=np.float64)
        reach[:, 0] = keep
        reach[:, 1:] = passed[:, :-1] * keep
        out = np.empty((n, k + 1), dtype=np.float64)
        out[:, :k] = reach * click
        out[:, k] = np.clip(1.0 - out[:, :k].sum(axis=1), 0.0, 1.0)
        return out

    def sample(self, utilities: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Drawing from the closed-form slot distribution is the cascade in distribution, in one rng call.
        return sample_columns(self.probabilities(utilities, valid).T.copy(), rng)


ChoiceWithNoClick = MultinomialLogit | CascadeChoice


def click_through_rate(utilities: np.ndarray, valid: np.ndarray, choice: ChoiceWithNoClick) -> float:
    """Mean probability over the rows that the user clicks something."""
    return float(1.0 - choice.probabilities(utilities, valid)[:, -1].mean())


def calibrate_no_click(
    utilities: np.ndarray,
    valid: np.ndarray,
    target_ctr: float,
    choice: ChoiceWithNoClick,
    tol: float = 1e-6,
    max_iter: int = 200,
) -> float:
    """The ``no_click_utility`` at which ``choice`` (other fields unchanged) has mean CTR ``target_ctr``.

    CTR falls monotonically as the no-click utility rises, so bisection on a bracket that is widened
    until it contains the target converges; raises :class:`ConfigError` when the target cannot be
    reached (e.g. rows with no valid slot, or abandonment capping the CTR).
    Use: ``choice = dataclasses.replace(choice, no_click_utility=calibrate_no_click(u, v, 0.3, choice))``.
    """
    if not (0.0 < target_ctr < 1.0):
        raise ConfigError(f"target_ctr must be in (0, 1), got {target_ctr!r}")
    utilities = np.asarray(utilities, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if utilities.ndim != 2 or utilities.shape != valid.shape or utilities.size == 0:
        raise ConfigError(f"utilities and valid must be equal non-empty (n, k) arrays, got {utilities.shape} "
                          f"and {valid.shape}")

    def ctr(b: float) -> float:
        return click_through_rate(utilities, valid, dataclasses.replace(choice, no_click_utility=b))

    finite = utilities[valid & np.isfinite(utilities)]
    centre = float(finite.mean()) if finite.size else 0.0
    span = 10.0 * choice.temperature
    lo, hi = centre - span, centre + span
    for _ in range(60):
        if ctr(lo) >= target_ctr:
            break
        lo -= span
        span *= 2.0
    else:
        raise ConfigError(f"target_ctr={target_ctr} is above the highest click-through rate this choice "
                          f"model reaches on these utilities ({ctr(lo):.4f})")
    span = 10.0 * choice.temperature
    while ctr(hi) > target_ctr:
        hi += span
        span *= 2.0
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        value = ctr(mid)
        if abs(value - target_ctr) < tol:
            return mid
        lo, hi = (mid, hi) if value > target_ctr else (lo, mid)
    return 0.5 * (lo + hi)
