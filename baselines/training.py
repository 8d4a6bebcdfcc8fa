"""The one training loop shared by every torch model (MF-BPR, GMF, MLP, NeuMF, content).

A model is a ``torch.nn.Module`` with ``forward(users, items) -> scores`` for ``(B,)`` users and
``(B, m)`` items; it names its loss (``"bce"``: pointwise with sampled negatives as in NCF;
``"bpr"``: pairwise). The loop owns everything else: per-epoch negative sampling from one seed,
mini-batches, Adam, a tqdm bar, TensorBoard scalars, early stopping on validation NDCG@10 and
restoring the best weights. Optional recency weighting (``recency_half_life``) weighs each user's
later positives up; the refit (``refit_epochs``, run by
:class:`~baselines.torch_model.TorchRecommender`) continues on training + validation interactions.

History-aware modules (a ``history_length > 0`` attribute, e.g. :class:`~baselines.ncf.NCFModule`) get
each training pair's causal history (the user's items before it) as ``forward(users, items, history)``,
and their scoring history set to each user's latest items of the log being trained on.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from baselines.history import causal_histories, latest_histories
from recsim_env.data.log import InteractionLog
from recsim_env.errors import ConfigError
from recsim_env.evaluation.offline import SampledRanking

log = logging.getLogger(__name__)

LOSSES = ("bce", "bpr")


@dataclass(frozen=True)
class LoopConfig:
    """How a torch model is trained. The defaults are the recipe tuned on ML-100K (BENCHMARKS.md);
    ``recency_half_life=None, refit_epochs=0`` gives the plain NCF / BPR training."""

    epochs: int = 30
    """Upper bound on epochs (early stopping usually ends sooner)."""
    batch_size: int = 1024
    """Positives per mini-batch (each carries ``n_negatives`` sampled negatives)."""
    lr: float = 4e-3
    """Adam learning rate."""
    weight_decay: float = 1e-3
    """L2 penalty on the parameters touched in a batch (applied in the loss, not by Adam)."""
    n_negatives: int = 4
    """Sampled negatives per positive (NCF uses 4 with BCE)."""
    patience: int = 1
    """Epochs without a better validation NDCG@10 before stopping."""
    seed: int = 0
    """Seeds initialisation, negative sampling and batch order."""
    log_dir: str | None = None
    """TensorBoard directory; ``None`` writes no event files."""
    progress: bool = False
    """Show a tqdm bar per epoch."""
    max_seconds: float | None = None
    """Stop after this much wall time (the best weights so far are kept)."""
    refit_epochs: int = 3
    """After early stopping, further epochs on training + validation interactions (test stays unseen), so
    that each user's latest known interaction informs the final model. Used only when fitting a Split."""
    refit_lr_scale: float = 0.5
    """Learning rate of the refit epochs relative to ``lr`` (small: the early-stopped weights are kept close)."""
    recency_half_life: float | None = 10.0
    """Time-decayed training: a positive's loss weight halves every this many of the user's own later
    interactions (weights rescaled to mean 1). ``None`` weighs every positive equally (plain NCF/BPR)."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "n_negatives"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LoopConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.refit_epochs < 0 or self.refit_lr_scale <= 0:
            raise ConfigError(f"LoopConfig needs refit_epochs >= 0 and refit_lr_scale > 0, got "
                              f"{self.refit_epochs}, {self.refit_lr_scale}")
        if self.lr <= 0 or self.weight_decay < 0 or self.patience < 0:
            raise ConfigError(f"LoopConfig needs lr > 0, weight_decay >= 0, patience >= 0; got lr={self.lr}, "
                              f"weight_decay={self.weight_decay}, patience={self.patience}")
        if self.recency_half_life is not None and self.recency_half_life <= 0:
            raise ConfigError(f"LoopConfig.recency_half_life must be > 0 or None, got {self.recency_half_life}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"LoopConfig.max_seconds must be > 0, got {self.max_seconds}")


@dataclass
class TrainReport:
    """What a fit did: epochs run, the best epoch and its score, and timings."""

    epochs: int = 0
    best_epoch: int = 0
    best_ndcg: float = float("nan")
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    cpu_seconds: float = 0.0
    """Process CPU time: what the wall time would be on an idle machine (training is one thread)."""
    cpu_seconds_to_best: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


class NegativeSampler:
    """Uniform negatives outside each user's training items, vectorised with rejection rounds.

    Membership is a dense user x item bitmap when it fits in ``bitmap_limit`` bytes (one gather per
    draw), else a sorted key array (binary search, ~10x slower on ML-100K).
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int,
                 bitmap_limit: int = 200_000_000):
        self.n_items = n_items
        self.bitmap: np.ndarray | None = None
        self.keys: np.ndarray | None = None
        if n_users * n_items <= bitmap_limit:
            self.bitmap = np.zeros((n_users, n_items), dtype=bool)
            self.bitmap[users, items] = True
        else:
            self.keys = np.unique(users.astype(np.int64) * n_items + items)

    def _seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.bitmap is not None:
            return self.bitmap[users, items]
        keys = users.astype(np.int64) * self.n_items + items
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[pos] == keys

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        out = rng.integers(0, self.n_items, size=(len(users), n))
        rows = np.broadcast_to(users[:, None], out.shape)
        bad = self._seen(rows, out)
        for _ in range(50):  # each round keeps only the colliding draws; density^50 is nil
            if not bad.any():
                break
            out[bad] = rng.integers(0, self.n_items, size=int(bad.sum()))
            bad[bad] = self._seen(rows[bad], out[bad])
        return out


def recency_weights(users: np.ndarray, half_life: float | None) -> np.ndarray:
    """Per-row weight ``0.5 ** (later interactions of the same user / half_life)``, mean 1.

    ``users`` must be grouped and time-ordered within a user (an InteractionLog's order)."""
    if half_life is None:
        return np.ones(len(users))
    ends = np.searchsorted(users, users, side="right")
    weights = 0.5 ** ((ends - 1 - np.arange(len(users))) / half_life)
    return weights / weights.mean()


def batch_loss(module: torch.nn.Module, loss: str, users: torch.Tensor, pos: torch.Tensor,
               neg: torch.Tensor, weights: torch.Tensor | None = None,
               history: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean loss of a batch: BPR over (positive, negative) pairs, or BCE with label 1 for column 0."""
    items = torch.cat([pos[:, None], neg], dim=1)
    scores = module(users, items) if history is None else module(users, items, history)
    if loss == "bpr":
        per_row = -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean(dim=1)
    else:
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1.0
        per_row = F.binary_cross_entropy_with_logits(scores, labels, reduction="none").mean(dim=1)
    return per_row.mean() if weights is None else (per_row * weights).mean()


class _ModuleScorer:
    """Adapts a module to the ``score(users, items)`` protocol for validation."""

    def __init__(self, module: torch.nn.Module):
        self.module = module

    @torch.no_grad()
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.module(torch.as_tensor(users), torch.as_tensor(np.ascontiguousarray(items))).numpy()


def _writer(log_dir: str | None):
    if log_dir is None:
        return None
    from torch.utils.tensorboard import (
        SummaryWriter,  # imported lazily: tensorboard is slow to import
    )

    return SummaryWriter(log_dir)


def _l2(module: torch.nn.Module, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Squared norm of the parameters this batch touches (``module.l2(users, items)`` when defined)."""
    if hasattr(module, "l2"):
        return module.l2(users, items)
    return sum((p ** 2).sum() for p in module.parameters()) / max(1, len(users))


def train_module(module: torch.nn.Module, loss: str, train: InteractionLog, validation: SampledRanking | None,
                 config: LoopConfig, name: str = "model") -> TrainReport:
    """Train ``module`` in place; with ``validation``, stop early and restore the best epoch's weights."""
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {LOSSES}, got {loss!r}")
    torch.set_num_threads(1)  # the machine's cores are shared; one thread is also fastest for small models
    rng = np.random.default_rng([config.seed, 7])
    users = train.interactions["user"].to_numpy(np.int64)
    items = train.interactions["item"].to_numpy(np.int64)
    sampler = NegativeSampler(users, items, train.n_users, train.n_items)
    weights = recency_weights(users, config.recency_half_life)
    history = _histories(module, users, items, train.n_users)
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=config.lr)
    writer = _writer(config.log_dir)
    report = TrainReport()
    best_state = None
    start = time.perf_counter()
    bad_epochs = 0
    cpu_start = time.process_time()
    for epoch in range(1, config.epochs + 1):
        module.train()
        mean_loss = _epoch(module, loss, users, items, weights, history, sampler, opt, config, rng,
                           f"{name} epoch {epoch}")
        row = {"epoch": float(epoch), "loss": mean_loss, "seconds": time.perf_counter() - start,
               "cpu_seconds": time.process_time() - cpu_start}
        if validation is not None:
            module.eval()
            row.update({k.lower(): v for k, v in validation.evaluate(_ModuleScorer(module), 10).items()})
        report.history.append(row)
        report.epochs = epoch
        if writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    writer.add_scalar(f"{name}/{key}", value, epoch)
        log.debug("%s epoch %d: %s", name, epoch, {k: round(v, 4) for k, v in row.items()})
        score = row.get("ndcg@10", float(epoch))  # without validation the last epoch is the best
        if validation is None or score > report.best_ndcg or np.isnan(report.best_ndcg):
            report.best_epoch = epoch
            report.best_ndcg = score
            report.seconds_to_best = row["seconds"]
            report.cpu_seconds_to_best = row["cpu_seconds"]
            best_state = copy.deepcopy(module.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
        if bad_epochs > config.patience or (config.max_seconds and row["seconds"] > config.max_seconds):
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    report.seconds = time.perf_counter() - start
    report.cpu_seconds = time.process_time() - cpu_start
    if validation is None:
        report.best_ndcg = float("nan")
    if writer is not None:
        writer.close()
    return report


def _histories(module: torch.nn.Module, users: np.ndarray, items: np.ndarray,
               n_users: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A history-aware module's per-pair training histories; also sets its scoring histories."""
    length = getattr(module, "history_length", 0)
    if not length:
        return None
    module.set_user_history(*latest_histories(users, items, n_users, length, module.history_halflife))
    idx, w = causal_histories(users, items, length, module.history_halflife)
    return torch.from_numpy(idx), torch.from_numpy(w)


def _epoch(module: torch.nn.Module, loss: str, users: np.ndarray, items: np.ndarray, weights: np.ndarray,
           history: tuple[torch.Tensor, torch.Tensor] | None, sampler: NegativeSampler,
           opt: torch.optim.Optimizer, config: LoopConfig, rng: np.random.Generator, desc: str) -> float:
    order = rng.permutation(len(users))
    u_all = torch.from_numpy(users[order])
    p_all = torch.from_numpy(items[order])
    n_all = torch.from_numpy(sampler.sample(users[order], config.n_negatives, rng))
    w_all = None if config.recency_half_life is None else torch.from_numpy(weights[order].astype(np.float32))
    h_all = None if history is None else (history[0][torch.from_numpy(order)], history[1][torch.from_numpy(order)])
    total = 0.0
    batches = range(0, len(order), config.batch_size)
    for lo in tqdm(batches, desc=desc, disable=not config.progress, leave=False):
        u = u_all[lo:lo + config.batch_size]
        p = p_all[lo:lo + config.batch_size]
        n = n_all[lo:lo + config.batch_size]
        w = None if w_all is None else w_all[lo:lo + config.batch_size]
        h = None if h_all is None else (h_all[0][lo:lo + config.batch_size], h_all[1][lo:lo + config.batch_size])
        value = batch_loss(module, loss, u, p, n, w, h)
        if config.weight_decay:
            value = value + config.weight_decay * _l2(module, u, torch.cat([p[:, None], n], dim=1))
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        total += float(value.detach()) * len(u)
    return total / len(order)
