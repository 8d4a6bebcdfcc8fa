"""The PyTorch parts of :func:`recsim_env.fit.pipeline.fit_user_model`: the relevance model (sampled
softmax), the explicit-rating model, the one epoch loop, and the drift/fatigue likelihood fit.

Kept apart so that loading or stepping a fitted model never imports torch.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from recsim_env.data.log import InteractionLog

if TYPE_CHECKING:
    from recsim_env.fit.config import FitConfig

logger = logging.getLogger(__name__)


class _Relevance(torch.nn.Module):
    def __init__(self, n_users: int, content: torch.Tensor, dim: int) -> None:
        super().__init__()
        self.content = content
        self.user = torch.nn.Embedding(n_users, dim)
        self.item = torch.nn.Embedding(content.shape[0], dim)
        self.proj = torch.nn.Linear(content.shape[1], dim, bias=False)
        self.bias = torch.nn.Embedding(content.shape[0], 1)
        for emb in (self.user, self.item):
            torch.nn.init.normal_(emb.weight, std=0.1)
        torch.nn.init.zeros_(self.bias.weight)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        return self.item(items) + self.proj(self.content[items])

    def loss(self, users: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor, l2: float) -> torch.Tensor:
        p = self.user(users)
        v_pos = self.item_vectors(items)
        v_neg = self.item_vectors(negatives)
        pos = (p * v_pos).sum(1) + self.bias(items)[:, 0]
        neg = p @ v_neg.T + self.bias(negatives)[:, 0]
        neg = neg.masked_fill(negatives[None, :] == items[:, None], float("-inf"))  # accidental hits
        logits = torch.cat([pos[:, None], neg], dim=1)
        nll = torch.logsumexp(logits, dim=1) - pos
        return nll.mean() + l2 * (p.pow(2).sum(1) + v_pos.pow(2).sum(1)).mean()


class _Rating(torch.nn.Module):
    def __init__(self, n_users: int, content: torch.Tensor, dim: int, mean: float) -> None:
        super().__init__()
        self.content = content
        self.mean = mean
        self.user = torch.nn.Embedding(n_users, dim)
        self.item = torch.nn.Embedding(content.shape[0], dim)
        self.proj = torch.nn.Linear(content.shape[1], dim, bias=False)
        self.user_bias = torch.nn.Embedding(n_users, 1)
        self.item_bias = torch.nn.Embedding(content.shape[0], 1)
        self.item_content_bias = torch.nn.Linear(content.shape[1], 1, bias=False)
        for emb in (self.user, self.item):
            torch.nn.init.normal_(emb.weight, std=0.05)
        for emb in (self.user_bias, self.item_bias):
            torch.nn.init.zeros_(emb.weight)

    def item_factors(self, items: torch.Tensor) -> torch.Tensor:
        return self.item(items) + self.proj(self.content[items])

    def item_biases(self, items: torch.Tensor) -> torch.Tensor:
        return self.item_bias(items)[:, 0] + self.item_content_bias(self.content[items])[:, 0]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user(users) * self.item_factors(items)).sum(1)
        return self.mean + self.user_bias(users)[:, 0] + self.item_biases(items) + dot

    def loss(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor, l2: float) -> torch.Tensor:
        err = (self(users, items) - ratings).pow(2).mean()
        reg = self.user(users).pow(2).sum(1) + self.item(items).pow(2).sum(1) + self.item_bias(items)[:, 0] ** 2
        return err + l2 * reg.mean()


def _train(model: torch.nn.Module, tensors: tuple[torch.Tensor, ...], config: FitConfig, step,
           desc: str) -> None:
    """The one epoch loop: shuffled minibatches, Adam, a progress bar over epochs.

    Adam is the fused kernel: the same update in one pass over each parameter instead of about ten, which
    matters because dense Adam touches every user's and item's row at every step (at 100k users it was
    two thirds of a step). The tensors are permuted once per epoch and the batches are slices of that.
    The batch size and learning rate are :meth:`FitConfig.sgd_schedule`'s for the rows: a long log's
    fit takes at most ``sgd_step_budget`` steps.
    """
    n = tensors[0].shape[0]
    batch_size, lr = config.sgd_schedule(n)
    if batch_size != config.batch_size:
        logger.info("%s: %d rows x %d epochs over the budget of %d steps: batch %d, learning rate %.4g",
                    desc, n, config.epochs, config.sgd_step_budget, batch_size, lr)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    gen = torch.Generator().manual_seed(config.seed)
    for _ in tqdm(range(config.epochs), desc=desc, leave=False, disable=None):
        order = torch.randperm(n, generator=gen)
        shuffled = [t[order] for t in tensors]
        for start in range(0, n, batch_size):
            batch = [t[start:start + batch_size] for t in shuffled]
            opt.zero_grad()
            loss = step(model, batch, gen)
            loss.backward()
            opt.step()


def fit_relevance(log: InteractionLog, content: np.ndarray, config: FitConfig) -> tuple[np.ndarray, ...]:
    """(user preferences ``(U, d)``, item vectors ``(I, d)``, item biases ``(I,)``) from ``log``."""
    inter = log.interactions
    model = _Relevance(log.n_users, torch.from_numpy(content), config.embedding_dim)
    users = torch.from_numpy(inter["user"].to_numpy(np.int64))
    items = torch.from_numpy(inter["item"].to_numpy(np.int64))
    k = min(config.negatives, log.n_items)

    def step(m: _Relevance, batch: list[torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        negatives = torch.randint(0, log.n_items, (k,), generator=gen)
        return m.loss(batch[0], batch[1], negatives, config.l2)

    _train(model, (users, items), config, step, "relevance")
    with torch.no_grad():
        all_items = torch.arange(log.n_items)
        return (model.user.weight.numpy().copy(), model.item_vectors(all_items).numpy().copy(),
                model.bias.weight[:, 0].numpy().copy())


def skip_relevance_init(n_users: int, content: np.ndarray, config: FitConfig) -> None:
    """Draw from torch's global RNG what :func:`fit_relevance`'s initialisation draws (and nothing else):
    a process that fits only the rating model starts it from the state it has after the relevance fit."""
    _Relevance(n_users, torch.from_numpy(content), config.embedding_dim)


def fit_ratings(head: InteractionLog, tail: InteractionLog, content: np.ndarray,
                config: FitConfig) -> tuple[dict[str, np.ndarray], float, float]:
    """Rating-model arrays, global mean and residual std (measured on ``tail``) fitted on ``head``."""
    ratings = head.interactions["rating"].to_numpy(np.float32).copy()
    mean = float(ratings.mean())
    model = _Rating(head.n_users, torch.from_numpy(content), config.rating_dim, mean)
    users = torch.from_numpy(head.interactions["user"].to_numpy(np.int64))
    items = torch.from_numpy(head.interactions["item"].to_numpy(np.int64))
    _train(model, (users, items, torch.from_numpy(ratings)), config,
           lambda m, b, _g: m.loss(b[0], b[1], b[2], config.rating_l2), "ratings")
    with torch.no_grad():
        all_items = torch.arange(head.n_items)
        arrays = {"rating_user": model.user.weight.numpy().copy(),
                  "rating_item": model.item_factors(all_items).numpy().copy(),
                  "rating_user_bias": model.user_bias.weight[:, 0].numpy().copy(),
                  "rating_item_bias": model.item_biases(all_items).numpy().copy()}
        check = tail if tail.n_interactions else head
        pred = model(torch.from_numpy(check.interactions["user"].to_numpy(np.int64)),
                     torch.from_numpy(check.interactions["item"].to_numpy(np.int64))).numpy()
    resid = check.interactions["rating"].to_numpy(np.float32) - pred
    return arrays, mean, float(np.sqrt(np.mean(resid**2)))


def seed_torch(seed: int) -> None:
    """One thread (small models on shared cores run several times faster) and the fit's seed."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)


def fit_drift_weights(base_logits: np.ndarray, drift_logits: np.ndarray, fatigue_logits: np.ndarray,
                      positives: np.ndarray) -> tuple[float, float, float, float]:
    """Minimise the next-item NLL of ``s·(base + γ·drift - φ·fatigue)`` (``(events, items)`` each) over
    ``γ >= 0``, ``φ`` and the sharpness ``s > 0`` by L-BFGS; returns (nll, γ, φ, s).

    ``s`` corrects the scale of logits fitted on other interactions (``s < 1``: they were overconfident);
    the choice temperature is ``1 / s``."""
    base, drift, fatigue = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
                            for a in (base_logits, drift_logits, fatigue_logits))
    pos = torch.from_numpy(np.asarray(positives, dtype=np.int64))
    log_gamma = torch.zeros((), requires_grad=True)
    phi = torch.zeros((), requires_grad=True)
    log_sharpness = torch.zeros((), requires_grad=True)
    params = (log_gamma, phi, log_sharpness)
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        loss, gradient = _drift_nll(base, drift, fatigue, pos, *(float(p.detach()) for p in params))
        for param, value in zip(params, gradient):
            param.grad = torch.tensor(value, dtype=torch.float32)
        return torch.tensor(loss, dtype=torch.float32)

    opt.step(closure)
    loss, _ = _drift_nll(base, drift, fatigue, pos, *(float(p.detach()) for p in params))
    return loss, float(torch.exp(log_gamma.detach())), float(phi.detach()), float(torch.exp(log_sharpness.detach()))


def _drift_nll(base: torch.Tensor, drift: torch.Tensor, fatigue: torch.Tensor, pos: torch.Tensor, log_gamma: float,
               phi: float, log_sharpness: float) -> tuple[float, tuple[float, float, float]]:
    """Mean NLL of ``fit_drift_weights``' model and its gradient in (log γ, φ, log s), by the softmax's
    expectations, over blocks of events: autograd kept four ``(events, items)`` tables per evaluation
    (160 MB each at 2,000 events x 20k items) and the fit spent most of its time allocating them.

    One exponential per logit, and the expectations as row dot products (no product table): the
    expected utility is ``E[base] + γ E[drift] - φ E[fatigue]``, and the chosen items' terms are read
    once (this is called ~25 times per drift rate, and was a third of a 1M fit)."""
    gamma, sharpness = math.exp(log_gamma), math.exp(log_sharpness)
    block = max(1, (1 << 20) // max(base.shape[1], 1))
    chosen = pos[:, None]
    base_chosen, drift_chosen, fatigue_chosen = (table.gather(1, chosen)[:, 0].double() for table in
                                                 (base, drift, fatigue))
    expected = torch.zeros(3, base.shape[0], dtype=torch.float64)
    log_mass = torch.zeros(base.shape[0], dtype=torch.float64)
    logits_buffer, product_buffer = torch.empty(2, min(block, base.shape[0]), base.shape[1])  # reused: no page faults
    with torch.no_grad():
        for start in range(0, base.shape[0], block):
            rows = slice(start, start + block)
            logits = logits_buffer[: base[rows].shape[0]]
            torch.add(base[rows], drift[rows], alpha=gamma, out=logits).sub_(fatigue[rows], alpha=phi).mul_(sharpness)
            top = logits.amax(1, keepdim=True)
            weights = logits.sub_(top).exp_()
            mass = weights.sum(1)
            log_mass[rows] = (top[:, 0] + mass.log()).double()
            product = product_buffer[: len(weights)]
            for k, table in enumerate((base, drift, fatigue)):
                expected[k, rows] = (torch.mul(weights, table[rows], out=product).sum(1) / mass).double()
    d_base, d_drift, d_fatigue = (expected[0] - base_chosen, expected[1] - drift_chosen,
                                  expected[2] - fatigue_chosen)
    n = base.shape[0]
    loss = float((log_mass - sharpness * (base_chosen + gamma * drift_chosen - phi * fatigue_chosen)).sum()) / n
    d_sharpness = float((d_base + gamma * d_drift - phi * d_fatigue).sum())
    return loss, (sharpness * gamma * float(d_drift.sum()) / n, -sharpness * float(d_fatigue.sum()) / n,
                  sharpness * d_sharpness / n)
