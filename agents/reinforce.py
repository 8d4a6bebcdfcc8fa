"""REINFORCE with the top-K off-policy correction (Chen et al., WSDM 2019).

A softmax policy ``π(i | s)`` over the step's candidates shows ``K`` items sampled from it without
replacement. For each shown item ``a`` with return ``G_a`` (by default, as in the paper, whose actions
are the items the user interacted with: the clicked item's the step's whole discounted return, the
others' nothing; see :attr:`ReinforceConfig.credit`), the gradient is

    ∇ = E[ min(π(a|s) / β(a|s), c) · λ_K(s, a) · (G_a - b) · ∇ log π(a|s) ],  λ_K = K (1 - π(a|s))^(K-1)

where ``λ_K`` corrects for the item entering the slate in any of ``K`` draws (so the policy does not
over-concentrate on one item) and ``β`` is the behaviour policy that logged the data, estimated by
a separate head on the policy's state with the gradient stopped into that state, as in the paper.

``π`` and ``β`` are both *per-draw* probabilities: the softmax that each of the ``K`` draws without
replacement samples from, renormalised over the items not yet drawn. The β head is therefore fitted
by the Plackett-Luce likelihood of the slate in display order (slot ``k``'s item drawn from what
slots ``< k`` left), which is exactly how the agent's own Gumbel top-K sampling draws, so its fit
converges to the logger's per-draw softmax. (Fitting it on every shown item as if each were one
draw converges to ``P(item in slate) / K`` instead: for K=3, C=6, π=(.52,.19,.12,.07,.07,.03) that
read π/β=1.67 for the top item and 0.59 for the last, and undid λ_K.) The correction for
without-replacement sampling is not derived here: λ_K is the paper's, which takes the K draws as
independent.

On-policy training in the simulator (:meth:`ReinforceAgent.update`, through
:func:`agents.training.train`) learns from the agent's own samples, so the importance weight is 1
exactly and only λ_K multiplies the gradient; the steps of an episode that spans updates came from
policies a few updates older, which REINFORCE's usual practice, and this, ignores. Off-policy
training from logged data (:func:`collect_logged` + :meth:`ReinforceAgent.learn_offline`) weights
by the capped ``π/β``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agents.known_users import KnownUsers
from agents.networks import (
    CandidateScorer,
    ItemTower,
    ObservationSpec,
    StateEncoder,
    ValueHead,
    obs_to_tensors,
)
from agents.policy import SlatePolicy
from agents.replay import EpisodeReturns, Episodes, Transition
from agents.training import clicked_slots
from agents.warm_start import Embeddings, apply_to_tower, with_file_width
from recsim_env.env.vector import merge_final_info
from recsim_env.errors import ConfigError

CREDITS = ("shared", "choice")
"""How a step's return is credited to the items of its slate (:attr:`ReinforceConfig.credit`)."""


@dataclass(frozen=True)
class ReinforceConfig:
    """Hyperparameters of :class:`ReinforceAgent`."""

    gamma: float = 0.9
    """Discount of the returns-to-go. Synthetic sessions run 15-75 steps and what clickbait costs is
    the budget the rest of the session would have had: seed-0 probes in the synthetic simulator
    (100k steps, ``credit="choice"``, greedy return over 256 episodes; random 14.7) gave 27.3 at 0.9,
    32.7 at 0.95, 39.7 at 0.99 (35.6 on seed 1); in ``ml100k-train`` (same probe; random 9.3) 20.7 at
    0.5, 18.1 at 0.9, 12.1 at 0.99. The benchmark has one agent config for every context, so the
    default is the discount whose worse share of the best probe over the two *training* simulators is
    largest: 0.9 (0.69 of synthetic's best, 0.88 of ML-100K's) against 0.99 (1.0, 0.59) and 0.5
    (ML-100K's best, myopic in synthetic). At full budgets, 5 seeds, 0.9 gives 23.58 in synthetic
    (random 14.81, paired +8.77 [7.36, 10.18]) without ``user_baseline`` and 19.73 (+4.92 [2.76, 7.07])
    with it; 0.99 gave 39.82 there (BENCHMARKS.md, issue #12)."""
    embedding_dim: int = 32
    """Item / user embedding width (a warm start's file sets it)."""
    hidden: int = 64
    """Hidden width."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 512
    """Finished-episode steps gathered before a policy update."""
    weight_cap: float = 10.0
    """Cap ``c`` on the importance weight π/β (variance control)."""
    topk_correction: bool = True
    """Multiply by λ_K (off: plain importance-weighted REINFORCE)."""
    baseline: bool = True
    """Subtract the batch's mean return from ``R`` and divide by its spread (keeps the step size
    independent of the reward scale)."""
    entropy_coef: float = 0.0
    """Entropy bonus on π."""
    value_baseline: bool = False
    """Subtract a learned state value ``V(s_t)`` from every credited return before the batch
    normalisation of ``baseline``: a critic with its own encoder and item tower (so its regression
    cannot pull the policy's state around), fitted to the returns-to-go. It removes what the state
    already predicts of the future (how far into the session the user is, what they consumed).

    Off by default, measured: seed 0, 100k steps, gamma 0.99, choice credit: synthetic 28.8 with the
    critic against 39.7 without, ``ml100k-train`` 12.7 against 12.1."""
    value_coef: float = 0.5
    """Weight of the critic's squared error in the loss (with ``value_baseline``). The critic's parameters
    are its own and Adam normalises each parameter's step, so this scale barely changes its updates: in
    ``ml100k-train`` (24k steps, seed 0) 0.5 and 10 gave the same learning curve to two decimals."""
    user_baseline: bool = True
    """Subtract from every credited return the mean return-to-go of the same user's steps in the batch
    (:func:`user_mean`; users read as -1 share one mean), before the batch normalisation of ``baseline``:
    a state baseline that needs no fitting. With ``credit="choice"`` a return level that belongs to the
    user rather than the slate (a user whose sessions run long) reaches the items through *which* item
    the user clicked, so a batch-wide mean does not cancel it: in ``ml100k-train`` the users who click
    obscure items are those with long futures (random slates: corr(R_t, log popularity of the clicked
    item) -0.62; -0.29 within a user), and without it the agent learned to show items nobody clicks
    (24k steps: 6.78 / 7.43 against random's 9.98). It is not unbiased (a user's mean includes the step's
    own future). On by default by the rule of ``gamma`` (the worse share of the two *training*
    simulators' best probe; 100k steps, 3 seeds): on, ``ml100k-train`` 19.31 and synthetic 19.56 (shares
    1.0, 0.90); off, 8.77 and 21.67 (0.45, 1.0). BENCHMARKS.md ("REINFORCE below random in ML-100K")."""
    credit: str = "choice"
    """Which shown items a step's return credits. ``"shared"``: every shown item gets the step's
    future, and the clicked one the click too (``G_j = click_j · r_t + (R_t - r_t)``), so the only
    difference *within* a slate is the click, and the future cost of a click (a drained time budget)
    is borne by the nine items that were not clicked as much as by the one that was. ``"choice"``: the
    step's outcome is credited to what caused it, as in Chen et al., whose actions are the items the
    user interacted with — the clicked item gets the whole return ``R_t`` (its click and the future it
    led to) and the other shown items nothing; on a step without a click every shown item gets ``R_t``
    (none was taken), each with weight ``1 / K`` so that every step weighs the same. In the synthetic
    simulator (seed 0; random 14.7, 46 % of its shown items clickbait) shared credit learned the
    clickbait at gamma 0.5 (11.5 at 48k steps, 97 %) and stayed near random at 0.99 (13.8, 50 %);
    choice credit at 0.99 avoided it (39.7 at 100k steps, 3 %)."""
    user_dropout: float = 0.1
    """Share of training steps shown as "no user" (``user_index`` -1), so that row learns to serve
    users the agent never trained on, who are always read as -1 (:mod:`agents.known_users`)."""
    user_feature_start: bool = False
    """``True``: a user the agent never trained on, whose observation has user features, starts from the row a
    ridge map of the features predicts from the trained users' rows (also for the dropped-out training
    rows: :mod:`agents.known_users`); ``False`` (default): the one "no user" row for all of them. Off by
    default as SlateQ's (not measured for REINFORCE): in ``ml100k-later`` it moved warm SlateQ's return by
    +0.39 ± 1.0 (5 seeds) at ~28 % more training time (BENCHMARKS.md, new users)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"ReinforceConfig.gamma must lie in [0, 1), got {self.gamma}")
        for name in ("embedding_dim", "hidden", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ReinforceConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.user_dropout < 1.0:
            raise ConfigError(f"ReinforceConfig.user_dropout must lie in [0, 1), got {self.user_dropout}")
        if self.value_coef < 0:
            raise ConfigError(f"ReinforceConfig.value_coef must be >= 0, got {self.value_coef}")
        if self.user_baseline and self.value_baseline:
            raise ConfigError("ReinforceConfig.value_baseline=True needs user_baseline=False (on by default): "
                              "they are two baselines; choose one")
        if self.credit not in CREDITS:
            raise ConfigError(f"ReinforceConfig.credit must be one of {list(CREDITS)}, got {self.credit!r}")
        if self.lr <= 0 or self.weight_cap <= 0 or self.entropy_coef < 0:
            raise ConfigError("ReinforceConfig.lr and weight_cap must be > 0 and entropy_coef >= 0, got "
                              f"{self.lr}, {self.weight_cap}, {self.entropy_coef}")


def topk_correction(pi: torch.Tensor, k: int) -> torch.Tensor:
    """``λ_K = K (1 - π)^(K-1)``: d/dπ of ``1 - (1 - π)^K``, the chance the item is in a K-draw slate."""
    return k * (1.0 - pi).pow(k - 1)


def importance_weight(pi: torch.Tensor, beta: torch.Tensor, cap: float) -> torch.Tensor:
    """``min(π / β, cap)``."""
    return torch.clamp(pi / beta.clamp(min=1e-8), max=cap)


def plackett_luce_log_prob(logits: torch.Tensor, slate: torch.Tensor) -> torch.Tensor:
    """``(n,)`` log-probability of drawing ``slate``'s ``(n, K)`` positions in order, without
    replacement, from ``softmax(logits)``: each slot's item against the candidates still undrawn."""
    drawn = torch.zeros_like(logits, dtype=torch.bool)
    total = logits.new_zeros(len(logits))
    for slot in range(slate.shape[1]):
        item = slate[:, slot : slot + 1]
        remaining = logits.masked_fill(drawn, float("-inf"))
        total = total + remaining.gather(1, item).squeeze(1) - torch.logsumexp(remaining, 1)
        drawn = drawn.scatter(1, item, True)
    return total


def user_mean(values: np.ndarray, users: np.ndarray) -> np.ndarray:
    """``(n,)`` mean of ``values`` over the rows of the same user (``users``: ``(n,)`` or ``(n, 1)`` ids)."""
    users = np.asarray(users).reshape(len(values), -1)[:, 0]
    _, group = np.unique(users, return_inverse=True)
    values = np.asarray(values, dtype=np.float64)
    totals = np.bincount(group, weights=values)
    return (totals / np.bincount(group))[group]


def item_credit(choice: np.ndarray, reward: np.ndarray, ret: np.ndarray, k: int,
                credit: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, K)`` return credited to each shown item and its weight in the update, from each step's
    clicked slot ``choice`` (-1: none), reward ``r_t`` and return-to-go ``R_t``
    (:attr:`ReinforceConfig.credit`): ``"shared"``, ``(click_j · r_t + R_t - r_t, 1)``; ``"choice"``,
    ``(R_t, click_j)`` on a step with a click and ``(R_t, 1 / K)`` on one without."""
    choice = np.asarray(choice)
    click = torch.zeros((len(choice), k))
    rows = np.flatnonzero(choice >= 0)
    click[rows, choice[rows]] = 1.0
    r = torch.as_tensor(np.asarray(reward, dtype=np.float32))[:, None]
    big_r = torch.as_tensor(np.asarray(ret, dtype=np.float32))[:, None]
    if credit == "shared":
        return click * r + (big_r - r), torch.ones_like(click)
    no_click = torch.as_tensor(choice < 0)[:, None]
    return big_r.expand_as(click).clone(), torch.where(no_click, torch.full_like(click, 1.0 / k), click)


class PolicyNet(nn.Module):
    """Policy logits over candidates and, on the gradient-stopped state, behaviour logits."""

    def __init__(self, spec: ObservationSpec, dim: int, hidden: int) -> None:
        super().__init__()
        self.tower = ItemTower(spec.n_items, spec.n_users, dim)
        self.encoder = StateEncoder(spec, self.tower, hidden, hidden)
        self.policy = CandidateScorer(hidden, self.tower, hidden)
        self.behaviour = CandidateScorer(hidden, ItemTower(spec.n_items, spec.n_users, dim), hidden)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        state = self.encoder(obs)
        cands = obs["candidates"]
        return self.policy(state, cands), self.behaviour(state.detach(), cands)


class Critic(nn.Module):
    """``V(s)``: its own item tower, state encoder and value head."""

    def __init__(self, spec: ObservationSpec, dim: int, hidden: int) -> None:
        super().__init__()
        self.encoder = StateEncoder(spec, ItemTower(spec.n_items, spec.n_users, dim), hidden, hidden)
        self.value = ValueHead(hidden, hidden)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.value(self.encoder(obs))


class ReinforceAgent(SlatePolicy):
    """Top-K off-policy-corrected REINFORCE; trains through :func:`agents.training.train` (on-policy)
    or :meth:`learn_offline` (logged data).

    :param spec: sizes of the env's observation.
    :param slate_size: ``K``, slots per slate (and the K of the correction).
    :param config: hyperparameters.
    :param seed: seeds initialisation, slate sampling and minibatch order.
    :param warm_start: pretrained embeddings for the policy's and behaviour head's item towers.
    """

    name = "ReinforceAgent"
    format_version = 4  # 2: the known-users table; 3: the config's credit and value baseline, the critic;
    # 4: user_baseline, on by default (a format-3 config rebuilt with it would train another agent on resume)

    def __init__(self, spec: ObservationSpec, slate_size: int, config: ReinforceConfig | None = None, seed: int = 0,
                 warm_start: Embeddings | None = None) -> None:
        if slate_size > spec.n_candidates:
            raise ConfigError(f"slate_size {slate_size} exceeds the env's {spec.n_candidates} candidates")
        self.spec = spec
        self.slate_size = slate_size
        self.config = config = with_file_width(config or ReinforceConfig(), warm_start)
        net_seed, rng_seed = np.random.SeedSequence(seed).generate_state(2)
        torch.manual_seed(int(net_seed))
        self.net = PolicyNet(spec, config.embedding_dim, config.hidden)
        if warm_start is not None:
            apply_to_tower(self.net.tower, warm_start)
            apply_to_tower(self.net.behaviour.tower, warm_start)
        self.critic = Critic(spec, config.embedding_dim, config.hidden) if config.value_baseline else None
        params = list(self.net.parameters()) + ([] if self.critic is None else list(self.critic.parameters()))
        self.opt = torch.optim.Adam(params, lr=config.lr)
        self.rng = np.random.default_rng(int(rng_seed))
        self.returns: EpisodeReturns | None = None
        self.n_updates = 0
        self.users = KnownUsers(spec.n_users)
        if config.user_feature_start:
            self.users.attach(self.net.tower, self.net.behaviour.tower)

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], explore: bool) -> np.ndarray:
        logits = self.net(self.users.mask(obs_to_tensors(obs)))[0].numpy()
        if explore:  # Gumbel top-K: K draws from softmax(logits) without replacement
            logits = logits - np.log(-np.log(self.rng.random(logits.shape).clip(1e-12, 1.0)))
        order = np.argsort(-logits, axis=1, kind="stable")
        return order[:, : self.slate_size].astype(np.int64)

    @torch.no_grad()
    def probabilities(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(π, β)``: ``(n, C)`` policy and estimated behaviour probabilities over the candidates."""
        logits, beh = self.net(self.users.mask(obs_to_tensors(obs)))
        return torch.softmax(logits, 1).numpy(), torch.softmax(beh, 1).numpy()

    def observe(self, t: Transition) -> None:
        if self.returns is None:
            self.returns = EpisodeReturns(len(t.reward), self.config.gamma)
        self.returns.add(t.obs, t.slate, t.choice, t.reward, np.logical_or(t.terminated, t.truncated))

    def discard_unfinished_episodes(self) -> int:
        """Forget the steps of episodes still under way (a resume onto fresh users cut them); returns how many."""
        if self.returns is None:
            return 0
        dropped = sum(len(steps) for steps in self.returns.pending)
        self.returns.pending = [[] for _ in self.returns.pending]
        return dropped

    def update(self, progress: float) -> dict[str, float]:
        if self.returns is None or len(self.returns) < self.config.batch_size:
            return {}
        return self.learn(self.returns.pop(), off_policy=False)

    def learn(self, data: Episodes, off_policy: bool = True) -> dict[str, float]:
        """One gradient step on finished-episode steps. Every shown item is an action, credited with
        a return and weighted as :func:`item_credit` says for ``config.credit``, less the critic's
        ``V(s_t)`` with ``config.value_baseline``. ``off_policy=False``
        for the agent's own samples: importance weight 1 (the β head is still fitted)."""
        self.users.add(data.obs["user_index"], data.obs["user_features"])  # online or logged: the users it learns from
        drop = KnownUsers.draw_drop(len(data.reward), self.config.user_dropout, self.rng)
        obs = self.users.mask(obs_to_tensors(data.obs), drop)
        logits, beh_logits = self.net(obs)
        log_pi = F.log_softmax(logits, 1)
        log_beta = F.log_softmax(beh_logits, 1)
        slate = torch.as_tensor(data.slate)
        lp = log_pi.gather(1, slate)
        lb = log_beta.gather(1, slate)
        behaviour_loss = -plackett_luce_log_prob(log_beta, slate).mean()
        item_return, share = item_credit(data.choice, data.reward, data.ret, slate.shape[1], self.config.credit)
        adv = item_return
        if self.config.user_baseline:
            adv = adv - torch.as_tensor(user_mean(data.ret, data.obs["user_index"]), dtype=adv.dtype)[:, None]
        value_loss = torch.zeros(())
        if self.critic is not None:
            value = self.critic(obs)
            value_loss = F.mse_loss(value, torch.as_tensor(data.ret))
            adv = item_return - value.detach()[:, None]
        if self.config.baseline and self.config.credit == "shared":
            adv = (adv - adv.mean()) / (adv.std() + 1e-6)
        elif self.config.baseline:  # moments over the credited items, as they are weighted
            mean = (share * adv).sum() / share.sum()
            std = ((share * (adv - mean) ** 2).sum() / share.sum()).sqrt()
            adv = (adv - mean) / (std + 1e-6)
        pi = lp.detach().exp()
        beta = lb.detach().exp() if off_policy else None
        weight = self.weights(pi, beta)
        pg_loss = -(share * weight * adv * lp).sum() / share.sum()
        entropy = -(log_pi.exp() * log_pi).sum(1).mean()
        loss = pg_loss + behaviour_loss + self.config.value_coef * value_loss - self.config.entropy_coef * entropy
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.n_updates += 1
        return {"train/loss": pg_loss.item(), "train/behaviour_loss": behaviour_loss.item(),
                "train/value_loss": value_loss.item(),
                "train/entropy": entropy.item(), "train/weight_mean": weight.mean().item(),
                "train/importance_weight_mean": self.importance(pi, beta).mean().item()}

    def importance(self, pi: torch.Tensor, beta: torch.Tensor | None) -> torch.Tensor:
        """Capped π/β, or 1 without ``beta`` (on-policy: the samples are the policy's own)."""
        return torch.ones_like(pi) if beta is None else importance_weight(pi, beta, self.config.weight_cap)

    def weights(self, pi: torch.Tensor, beta: torch.Tensor | None) -> torch.Tensor:
        """Per-sample multiplier of ``(R - b) ∇ log π``: :meth:`importance` times λ_K."""
        ratio = self.importance(pi, beta)
        return ratio * topk_correction(pi, self.slate_size) if self.config.topk_correction else ratio

    def learn_offline(self, data: Episodes, epochs: int = 5, batch_size: int | None = None) -> list[dict[str, float]]:
        """Off-policy training from logged steps (e.g. :func:`collect_logged`); β is estimated, not given."""
        size = batch_size or self.config.batch_size
        history = []
        for _ in range(epochs):
            order = self.rng.permutation(len(data))
            for start in range(0, len(order), size):
                history.append(self.learn(data.take(order[start:start + size])))
        return history

    def state_dict(self) -> dict[str, Any]:
        return {"spec": asdict(self.spec), "slate_size": self.slate_size, "config": self.config,
                "net": self.net.state_dict(), "opt": self.opt.state_dict(), "rng": self.rng.bit_generator.state,
                "returns": None if self.returns is None else self.returns.state_dict(), "n_updates": self.n_updates,
                "users": self.users.state_dict(), "critic": None if self.critic is None else self.critic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["opt"])
        self.rng.bit_generator.state = state["rng"]
        self.n_updates = state["n_updates"]
        self.users.load_state_dict(state["users"])
        self.returns = None
        if state["returns"] is not None:
            self.returns = EpisodeReturns(len(state["returns"]["pending"]), self.config.gamma)
            self.returns.load_state_dict(state["returns"])

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ReinforceAgent":
        agent = cls(ObservationSpec(**state["spec"]), state["slate_size"], state["config"])
        agent.load_state_dict(state)
        return agent


def collect_logged(env: Any, policy: Any, steps: int, gamma: float, seed: int) -> Episodes:
    """Roll ``policy`` (anything with ``predict``) in the batched ``env`` for ``steps`` user-steps and
    return the finished episodes' steps: a log of a behaviour policy whose probabilities are unknown."""
    obs, _ = env.reset(seed=seed)
    n = int(env.num_envs)
    returns = EpisodeReturns(n, gamma)
    for _ in range(max(1, steps // n)):
        slate, _ = policy.predict(obs, deterministic=False)
        next_obs, reward, terminated, truncated, info = env.step(slate)
        done = np.logical_or(terminated, truncated)
        returns.add(
            obs, np.asarray(slate), clicked_slots(merge_final_info(info, done), n), np.asarray(reward, np.float32), done
        )
        obs = next_obs
    return returns.pop()
