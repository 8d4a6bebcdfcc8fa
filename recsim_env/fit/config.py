"""`FitConfig`: hyperparameters of the fit and the documented defaults (assumptions) of the user dynamics.

Its own module because both the fit pipeline and its torch learners read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from recsim_env.errors import ConfigError
from recsim_env.users.fitted import Dynamics


@dataclass(frozen=True)
class FitConfig:
    """Hyperparameters of :func:`fit_user_model` and the documented defaults of the user dynamics."""

    embedding_dim: int = 32
    """Dimension ``d`` of user preferences and item vectors."""
    rating_dim: int = 8
    """Dimension of the rating model's factors."""
    epochs: int = 8
    """Passes over the head interactions for the relevance model (the rating model uses the same)."""
    lr: float = 0.01
    """Adam learning rate."""
    batch_size: int = 1024
    """Interactions per gradient step (grown past this on a log too long for ``sgd_step_budget``)."""
    sgd_step_budget: int = 8192
    """Most SGD steps one learner's fit takes (the relevance and the rating model each); ``0``: no budget.
    A log whose ``epochs`` passes at ``batch_size`` take more steps is fitted with fewer, larger batches
    at the same learning rate (:meth:`sgd_schedule`): a step's cost is mostly fixed (dense Adam over every
    user's and item's row), so at 10M interactions the steps, not the interactions, are the fit's time.
    The default bites only above ~1.05M head interactions (8 epochs at batch 1,024): ML-100K and a 1M log
    are fitted exactly as without a budget; a 10M log in 7.9 min instead of 23.4 on 2 cores, with no
    held-out cost measured there (BENCHMARKS.md "Fitting at scale"). A budget that grows the batch 7x
    on a 1M log (816) cost a third of the relevance model's held-out gain: ``0`` fits every log at
    ``batch_size``."""
    negatives: int = 128
    """Uniformly drawn negative items per batch (shared by its positives) in the sampled softmax."""
    l2: float = 0.1
    """L2 penalty on the embeddings used in a batch (strong: next-item likelihood on held-out tails is
    best here on ML-100K; weaker penalties overfit the user vectors within a few epochs)."""
    rating_l2: float = 0.05
    """L2 penalty of the rating model's factors and item biases."""
    seed: int = 0
    """Seeds torch and every numpy draw of the fit and its calibration."""
    holdout_fraction: float = 0.1
    """Last share of each user's sequence held out to fit drift/fatigue and measure rating noise."""
    like_threshold: float = 4.0
    """A rating >= this is a like."""
    session_gap: float = 1800.0
    """Seconds of inactivity (>=) that split a user's interactions into sessions."""
    target_ctr: float = 0.35
    """Click-through rate of the reference policy's slates that the no-click utility is calibrated to."""
    temperature: float = 1.0
    """Choice temperature (1: the softmax scale the utilities were fitted on); multiplied by the
    fitted correction when ``fit_temperature``."""
    fit_temperature: bool = True
    """Rescale the temperature so that choice probabilities fit the held-out tail events (the
    relevance logits are overconfident on interactions they were not trained on)."""
    position_decay: float = 0.5
    """Position bias: slot ``j`` is examined with weight ``1/(1+j)**position_decay``."""
    drift_grid: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5)
    """Candidate interest drift rates ``η``."""
    drift_events: int = 2000
    """Tail events (at most) in the drift/fatigue likelihood."""
    drift_min_gain: float = 0.002
    """Mean next-item log-likelihood gain (nats) over no drift that a drift rate must bring to be chosen."""
    fatigue_decay: float = 0.7
    """Per-step decay of fatigue (documented default; not fitted)."""
    default_fatigue: float = 0.5
    """Fatigue strength used when the log has no sequences to estimate it from."""
    repeat_penalty: float = 5.0
    """Utility penalty for re-showing a recently consumed item (logs never repeat, so not fitted)."""
    no_click_leave: float = 0.0
    """*Assumed* probability of leaving after a step without a click (the log has no impressions, so it
    cannot show it). 0: the fitted hazard of a consumed item already is the whole probability that no
    other item follows, ignored slates in between included; a positive value adds leaves the log did
    not show (``recsim fidelity`` reports it as assumed)."""
    max_categories: int = 32
    """Categorical user columns with more levels than this are left out of the user features."""
    item_vectors: str = ""
    """A file of precomputed item vectors (image, audio, any embedding made elsewhere; the layouts of
    :mod:`recsim_env.data.item_vectors`), every item of the fitted log needs one; ``""``: none. They
    join the genres and year as item content: the relevance and rating models fit a linear map from
    them (see :func:`~recsim_env.fit.pipeline.fit_user_model`)."""

    def __post_init__(self) -> None:
        positive_ints = ("embedding_dim", "rating_dim", "epochs", "batch_size", "negatives", "drift_events",
                         "max_categories")
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"FitConfig.{name} must be a positive int, got {value!r}")
        if isinstance(self.sgd_step_budget, bool) or not isinstance(self.sgd_step_budget, int) or not (
                self.sgd_step_budget == 0 or self.sgd_step_budget >= self.epochs):
            raise ConfigError(f"FitConfig.sgd_step_budget must be an int, 0 (no budget) or >= epochs "
                              f"({self.epochs}: one step an epoch), got {self.sgd_step_budget!r}")
        for name in ("lr", "session_gap"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"FitConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 < self.target_ctr < 1.0:
            raise ConfigError(f"FitConfig.target_ctr must be in (0, 1), got {self.target_ctr!r}")
        if not 0.0 < self.holdout_fraction < 0.5:
            raise ConfigError(f"FitConfig.holdout_fraction must be in (0, 0.5), got {self.holdout_fraction!r}")
        if not self.drift_grid or any(not 0.0 <= r <= 1.0 for r in self.drift_grid):
            raise ConfigError(f"FitConfig.drift_grid must be non-empty rates in [0, 1], got {self.drift_grid!r}")
        for name in ("l2", "rating_l2", "drift_min_gain"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"FitConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if not isinstance(self.item_vectors, str):
            raise ConfigError(f"FitConfig.item_vectors must be a file path (str, '' for none), "
                              f"got {self.item_vectors!r}")
        if isinstance(self.no_click_leave, bool) or not 0.0 <= self.no_click_leave <= 1.0:
            raise ConfigError(f"FitConfig.no_click_leave must be a probability in [0, 1], got {self.no_click_leave!r}")
        # The dynamics defaults are validated where they are used.
        Dynamics(fatigue_decay=self.fatigue_decay, fatigue_strength=self.default_fatigue,
                 repeat_penalty=self.repeat_penalty, temperature=self.temperature,
                 position_decay=self.position_decay, like_threshold=self.like_threshold)

    def sgd_schedule(self, n_interactions: int) -> tuple[int, float]:
        """(batch size, learning rate) of an SGD fit over ``n_interactions`` rows.

        Within ``sgd_step_budget`` (``epochs * ceil(n / batch_size)`` steps or fewer) they are
        ``batch_size`` and ``lr``. Above it the batch grows to the smallest that keeps every epoch within
        ``sgd_step_budget // epochs`` steps, and the learning rate stays ``lr``: Adam's step ``m / sqrt(v)``
        does not shrink with a batch's mean gradient, and at 1M interactions (7x the batch) the square-root
        scaling rule (Malladi et al. 2022, ``lr * sqrt(growth)``) fitted the relevance model no better
        held out and the rating model worse (RMSE 0.830 against 0.768).

        Examples:
            >>> FitConfig(sgd_step_budget=8192).sgd_schedule(72_000)  # ML-100K's head: within it
            (1024, 0.01)
            >>> FitConfig(sgd_step_budget=800).sgd_schedule(409_600)  # 3,200 steps -> 100 an epoch
            (4096, 0.01)
        """
        batch = self.batch_size
        if self.sgd_step_budget and self.epochs * math.ceil(n_interactions / batch) > self.sgd_step_budget:
            batch = math.ceil(n_interactions / (self.sgd_step_budget // self.epochs))
        return batch, self.lr

    @classmethod
    def fast(cls, **changes: object) -> "FitConfig":
        """A fit of a few seconds on small logs (tests, examples, smoke runs); ``changes`` override fields."""
        base = dict(
            embedding_dim=8,
            rating_dim=4,
            epochs=5,
            batch_size=64,
            l2=0.01,
            negatives=32,
            drift_grid=(0.0, 0.2, 0.5),
            drift_events=300,
        )
        return cls(**(base | changes))  # type: ignore[arg-type]


def _jsonable(config: FitConfig) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()}


def config_from_meta(meta: dict) -> FitConfig:
    """The :class:`FitConfig` an artifact was fitted with."""
    raw = dict(meta["config"])
    names = {f.name for f in fields(FitConfig)}
    raw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in names}
    return FitConfig(**raw)
