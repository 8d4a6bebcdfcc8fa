"""SlateQ (Ie et al., IJCAI 2019): slate values decomposed into per-item long-term values.

The value of showing slate ``A`` in state ``s`` is the choice-weighted value of what the user takes:

    Q(s, A) = Σ_{i∈A} P(i | s, A) Q(s, i) + P(∅ | s, A) Q(s, ∅)

``Q(s, i)`` (a :class:`CandidateScorer` over a :class:`StateEncoder`) is learned with double DQN, a
target network and a replay buffer: the item the user clicked (or the no-click outcome ∅, which
RecSim's reference drops although sessions here continue after it) is regressed on

    y = r + γ (1 - terminated) Σ_j P(j | s', A*) Q_target(s', j),  A* = argmax_A Q_online(s', A)

— built from the NEXT state through the TARGET network (RecSim's reference read the current state;
its issue #26). The simulator's utilities are hidden, so ``P(i | s, A)`` comes from a learned
multinomial-logit click model over the logged slates (item logits, a no-click logit and a per-slot
bias, the same family as the env's choice model). Slates: ``"greedy"`` adds, slot by slot, the item
that most raises ``Q(s, A)``; ``"topk"`` is the paper's top-K on ``v(s, i) Q(s, i)``.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agents.exploration import LinearSchedule, epsilon_mix
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
from agents.replay import NStepReturns, ReplayBuffer, SlateBatch, Transition
from agents.warm_start import Embeddings, apply_to_tower, with_file_width
from recsim_env.errors import ConfigError


@dataclass(frozen=True)
class SlateQConfig:
    """Hyperparameters of :class:`SlateQAgent`."""

    gamma: float = 0.9
    """Discount per step."""
    embedding_dim: int = 32
    """Item / user embedding width (a warm start's file sets it)."""
    hidden: int = 64
    """Hidden width of every MLP."""
    lr: float = 1e-3
    """Adam learning rate (value and click model)."""
    batch_size: int = 512
    """Transitions per gradient step."""
    replay_capacity: int = 100_000
    """Transitions kept in the replay buffer."""
    learning_starts: int = 2_000
    """Transitions collected before the first update."""
    updates_per_step: int = 1
    """Gradient steps per update round."""
    train_interval: int = 128
    """User-steps between update rounds (0: a round after every batched env step). A round every
    ``train_interval`` user-steps of ``updates_per_step`` steps on ``batch_size`` transitions keeps
    the samples drawn per env step (``updates_per_step * batch_size / train_interval``) while paying
    the per-gradient-step overhead, which dominates small batches on CPU, far less often."""
    n_step: int = 1
    """Rewards summed before bootstrapping: the target of step ``t`` is ``r_t + … + γ^{m-1} r_{t+m-1}
    + γ^m Q_target(s_{t+m}, A*)``, ``m = n_step`` or fewer where the episode ended
    (:class:`agents.replay.NStepReturns`). A value then travels ``n_step`` steps back per target-network
    copy instead of one."""
    day_discount: float = 1.0
    """Discount per day a user is away between two sessions of a lifetime episode (a semi-MDP discount):
    the step that ends a session bootstraps from the next session's first state with
    ``gamma * day_discount ** gap_days``, so a user back tomorrow is worth more than one back in 50 days.
    1.0: a gap counts as one step whatever its length; no effect in session envs (no gaps). Needs
    ``n_step`` 1."""
    click_interval: int = 1
    """Q gradient steps per click-model gradient step (1: both every step). The click model is a
    supervised fit of the logged choice, the Q network a bootstrapped one; a larger interval spends
    fewer of the run's gradient seconds on the former."""
    target_update_interval: int = 125
    """Gradient steps between copies of the online into the target network."""
    max_grad_norm: float = 10.0
    """Gradient-norm clip."""
    huber: bool = False
    """Huber instead of squared TD error. Off by default: with random departures the TD target is
    bimodal and Huber's fit drifts toward the median, overestimating Q (the mean is what we want)."""
    slate_builder: str = "greedy"
    """``"greedy"`` (adds the item that most raises Q(s, A), slot by slot) or ``"topk"`` (v(s,i)·Q(s,i))."""
    double_q: bool = True
    """Pick the next slate with the online network and value it with the target network."""
    user_dropout: float = 0.1
    """Share of training transitions shown as "no user" (``user_index`` -1), so that row learns to
    serve users the agent never trained on, who are always read as -1 (:mod:`agents.known_users`)."""
    user_feature_start: bool = False
    """``True``: a user the agent never trained on, whose observation has user features, starts from the row a
    ridge map of the features predicts from the trained users' rows (also for the dropped-out training
    rows: :mod:`agents.known_users`); ``False`` (default): the one "no user" row for all of them. Off by
    default: in ``ml100k-later`` it moved warm SlateQ's return by +0.39 ± 1.0 (5 seeds) at ~28 % more
    training time (BENCHMARKS.md, new users)."""
    exploration: LinearSchedule = field(default_factory=LinearSchedule)
    """Epsilon-random slates over the run."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"SlateQConfig.gamma must lie in [0, 1), got {self.gamma}")
        if self.slate_builder not in ("greedy", "topk"):
            raise ConfigError(f"SlateQConfig.slate_builder must be 'greedy' or 'topk', got {self.slate_builder!r}")
        for name in ("embedding_dim", "hidden", "batch_size", "replay_capacity", "updates_per_step",
                     "target_update_interval", "n_step", "click_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SlateQConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.train_interval < 0:
            raise ConfigError(f"SlateQConfig.train_interval must be >= 0, got {self.train_interval}")
        if not 0.0 < self.day_discount <= 1.0:
            raise ConfigError(f"SlateQConfig.day_discount must lie in (0, 1], got {self.day_discount}")
        if self.day_discount < 1.0 and self.n_step > 1:
            raise ConfigError(f"SlateQConfig.day_discount {self.day_discount} needs n_step 1 (the n-step sums do "
                              f"not discount gaps), got n_step {self.n_step}")
        if not 0.0 <= self.user_dropout < 1.0:
            raise ConfigError(f"SlateQConfig.user_dropout must lie in [0, 1), got {self.user_dropout}")
        if self.lr <= 0 or self.learning_starts < 0:
            raise ConfigError(
                f"SlateQConfig.lr must be > 0 and learning_starts >= 0, got {self.lr}, {self.learning_starts}"
            )


class ItemValueNet(nn.Module):
    """``Q(s, i)`` for candidates and ``Q(s, ∅)`` for the no-click outcome."""

    def __init__(self, spec: ObservationSpec, dim: int, hidden: int) -> None:
        super().__init__()
        self.tower = ItemTower(spec.n_items, spec.n_users, dim)
        self.encoder = StateEncoder(spec, self.tower, hidden, hidden)
        self.item = CandidateScorer(hidden, self.tower, hidden)
        self.null = ValueHead(hidden, hidden)

    def forward(self, obs: dict[str, torch.Tensor], items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state = self.encoder(obs)
        return self.item(state, items), self.null(state)


class ClickModel(nn.Module):
    """Multinomial logit over a slate: item logits, a no-click logit, a bias per slot."""

    def __init__(self, spec: ObservationSpec, slate_size: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.tower = ItemTower(spec.n_items, spec.n_users, dim)
        self.encoder = StateEncoder(spec, self.tower, hidden, hidden)
        self.item = CandidateScorer(hidden, self.tower, hidden)
        self.null = ValueHead(hidden, hidden)
        self.slot_bias = nn.Parameter(torch.zeros(slate_size))

    def forward(self, obs: dict[str, torch.Tensor], items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state = self.encoder(obs)
        return self.item(state, items), self.null(state)


def choice_probabilities(item_logits: torch.Tensor, null_logit: torch.Tensor, slot_bias: torch.Tensor,
                         slate: torch.Tensor) -> torch.Tensor:
    """``(b, k + 1)`` choice probabilities of the slots of ``slate`` (positions into the logits'
    candidate axis), last column no click."""
    util = item_logits.gather(1, slate) + slot_bias[: slate.shape[1]]
    return torch.softmax(torch.cat([util, null_logit[:, None]], 1), 1)


def slate_value(q: torch.Tensor, q_null: torch.Tensor, probs: torch.Tensor, slate: torch.Tensor) -> torch.Tensor:
    """``Σ_i P(i|s,A) Q(s,i) + P(∅|s,A) Q(s,∅)`` per row."""
    return (probs[:, :-1] * q.gather(1, slate)).sum(1) + probs[:, -1] * q_null


def build_slates(q: torch.Tensor, q_null: torch.Tensor, item_logits: torch.Tensor, null_logit: torch.Tensor,
                 slot_bias: torch.Tensor, slate_size: int, method: str) -> torch.Tensor:
    """``(b, k)`` candidate positions maximising the decomposed slate value (approximately)."""
    shift = torch.maximum(item_logits.max(1).values, null_logit)[:, None]
    v = torch.exp(item_logits - shift)
    if method == "topk":
        return torch.topk(v * q, slate_size, dim=1).indices
    v_null = torch.exp(null_logit - shift.squeeze(1))
    return torch.from_numpy(greedy_search((v * q).numpy(), v.numpy(), (v_null * q_null).numpy(), v_null.numpy(),
                                          torch.exp(slot_bias[:slate_size]).numpy()))


def greedy_search(vq: np.ndarray, v: np.ndarray, num: np.ndarray, den: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(b, k)`` picks: per slot, the candidate that most raises ``(num + c·v_i·q_i) / (den + c·v_i)``,
    ``c = scale[slot]``, among those not yet picked (ties to the lowest position).

    In numpy with buffers reused across slots: on these (b, 100) float32 arrays its elementwise ops
    and argmax cost a fraction of torch's per-call overhead, and IEEE float32 ``*``, ``+``, ``/`` round
    the same in both, so the picks are torch's loop's exactly."""
    rows = np.arange(len(vq))
    picks = np.empty((len(vq), len(scale)), dtype=np.int64)
    gain, denom, blocked = np.empty_like(vq), np.empty_like(v), np.zeros_like(vq)
    for slot, c in enumerate(scale):
        np.multiply(vq, c, out=gain)
        gain += num[:, None]
        np.multiply(v, c, out=denom)
        denom += den[:, None]
        gain /= denom
        gain += blocked
        pick = picks[:, slot] = gain.argmax(1)
        blocked[rows, pick] = -np.inf
        num = num + c * vq[rows, pick]
        den = den + c * v[rows, pick]
    return picks


class SlateQAgent(SlatePolicy):
    """SlateQ with a learned click model; trains through :func:`agents.training.train`.

    :param spec: sizes of the env's observation (``ObservationSpec.from_space``).
    :param slate_size: ``k``, slots per slate.
    :param config: hyperparameters.
    :param seed: seeds network initialisation, exploration and replay sampling.
    :param warm_start: pretrained embeddings loaded into both item towers.
    """

    name = "SlateQAgent"
    format_version = 4  # 2: the known-users table; 3: the user-steps since the last update round; 4: n-step

    def __init__(self, spec: ObservationSpec, slate_size: int, config: SlateQConfig | None = None, seed: int = 0,
                 warm_start: Embeddings | None = None) -> None:
        self.spec, self.slate_size = spec, slate_size
        if slate_size > spec.n_candidates:
            raise ConfigError(f"slate_size {slate_size} exceeds the env's {spec.n_candidates} candidates")
        self.config = config = with_file_width(config or SlateQConfig(), warm_start)
        dim = config.embedding_dim
        net_seed, rng_seed = np.random.SeedSequence(seed).generate_state(2)
        torch.manual_seed(int(net_seed))
        self.q = ItemValueNet(spec, dim, config.hidden)
        self.click = ClickModel(spec, slate_size, dim, config.hidden)
        if warm_start is not None:
            apply_to_tower(self.q.tower, warm_start)
            apply_to_tower(self.click.tower, warm_start)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        # fused: one kernel per step over all parameters instead of a dozen ops per tensor (2.2 -> ms per step)
        self.q_opt = torch.optim.Adam(self.q.parameters(), lr=config.lr, fused=True)
        self.click_opt = torch.optim.Adam(self.click.parameters(), lr=config.lr, fused=True)
        self.rng = np.random.default_rng(int(rng_seed))
        self.replay = ReplayBuffer(config.replay_capacity, self.rng)
        self.n_step = NStepReturns(config.n_step, config.gamma) if config.n_step > 1 else None
        self.users = KnownUsers(spec.n_users)
        if config.user_feature_start:
            self.users.attach(self.q.tower, self.click.tower, self.q_target.tower)
        self.n_updates = 0
        self.progress = 0.0
        self.steps_since_update = 0

    # -- acting ------------------------------------------------------------------------------
    @torch.no_grad()
    def greedy_slates(self, obs_t: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(b, k)`` slates the online network and the click model pick (the TD target builds its own)."""
        cands = obs_t["candidates"]
        q, q_null = self.q(obs_t, cands)
        logits, null_logit = self.click(obs_t, cands)
        return build_slates(q, q_null, logits, null_logit, self.click.slot_bias, self.slate_size,
                            self.config.slate_builder)

    def act(self, obs: dict[str, np.ndarray], explore: bool) -> np.ndarray:
        with torch.inference_mode():  # straight to numpy: no autograd bookkeeping at all
            slates = self.greedy_slates(self.users.mask(obs_to_tensors(obs))).numpy()
        if not explore:
            return slates
        return epsilon_mix(slates, self.epsilon, self.spec.n_candidates, self.rng)

    @property
    def epsilon(self) -> float:
        return self.config.exploration(self.progress, 1.0)

    @torch.inference_mode()
    def item_values(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """``(n, C)`` learned long-term values ``Q(s, i)`` of each user's candidates."""
        obs_t = self.users.mask(obs_to_tensors(obs))
        return self.q(obs_t, obs_t["candidates"])[0].numpy()

    # -- learning ----------------------------------------------------------------------------
    def observe(self, t: Transition) -> None:
        self.users.add(t.obs["user_index"], t.obs["user_features"])
        self.steps_since_update += len(t.reward)
        gaps = None  # stored only for a day discount, whose config keeps n_step 1: each step is its transition
        if self.config.day_discount < 1.0:
            gaps = np.zeros(len(t.reward), np.float32) if t.gap_days is None else t.gap_days
        for done in [t] if self.n_step is None else self.n_step.add(t):
            self.replay.add(done.obs, done.slate, done.choice, done.reward, done.next_obs,
                            done.terminated.astype(np.float32), done.horizon, gap_days=gaps)

    def discard_unfinished_episodes(self) -> int:
        """Forget the steps still summing n-step rewards (a resume onto fresh users cut them)."""
        return 0 if self.n_step is None else self.n_step.discard()

    def update(self, progress: float) -> dict[str, float]:
        self.progress = progress
        if len(self.replay) < max(self.config.learning_starts, self.config.batch_size):
            return {}
        if self.steps_since_update < self.config.train_interval:
            return {}
        self.steps_since_update = 0
        out: dict[str, float] = {}
        for _ in range(self.config.updates_per_step):  # the round's last value of each metric (the click
            out.update(self.learn(self.replay.sample(self.config.batch_size)))  # loss: of its last click step)
        return {**out, "train/epsilon": self.epsilon}

    def td_target(self, batch: SlateBatch, nxt: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``r + γ δ^gap (1 - terminated) Q_target(s', A*)`` (``δ`` the config's ``day_discount``, ``gap``
        the days away before ``s'``, 0 within a session), everything read from the NEXT observation
        (``nxt``: its tensors, already user-masked, when the caller has them)."""
        # inference_mode, not no_grad: no version counters or views tracked for autograd in these
        # forward passes (three; two without double Q); the result is cloned out of it because the loss
        # saves it for backward.
        with torch.inference_mode():
            if nxt is None:
                nxt = self.users.mask(obs_to_tensors(batch.next_obs))
            cands = nxt["candidates"]
            logits, null_logit = self.click(nxt, cands)
            q_t, q_null_t = self.q_target(nxt, cands)
            # double Q picks with the online network; otherwise the target network's values pick too
            q_pick, q_null_pick = self.q(nxt, cands) if self.config.double_q else (q_t, q_null_t)
            best = build_slates(q_pick, q_null_pick, logits, null_logit, self.click.slot_bias, self.slate_size,
                                self.config.slate_builder)
            probs = choice_probabilities(logits, null_logit, self.click.slot_bias, best)
            future = slate_value(q_t, q_null_t, probs, best)
            horizon = 1 if batch.horizon is None else torch.as_tensor(batch.horizon)
            discount = self.config.gamma**horizon * (1.0 - torch.as_tensor(batch.terminated))
            if batch.gap_days is not None:
                discount = discount * self.config.day_discount ** torch.as_tensor(batch.gap_days)
            target = torch.as_tensor(batch.reward) + discount * future
        return target.clone()

    def learn(self, batch: SlateBatch) -> dict[str, float]:
        drop = KnownUsers.draw_drop(len(batch.reward), self.config.user_dropout, self.rng)
        obs = self.users.mask(obs_to_tensors(batch.obs), drop)
        slate, choice = torch.as_tensor(batch.slate), torch.as_tensor(batch.choice)
        click_loss = None
        if self.n_updates % self.config.click_interval == 0:
            click_loss = self._learn_clicks(obs, slate, choice)
        target = self.td_target(batch, self.users.mask(obs_to_tensors(batch.next_obs), drop))
        clicked = choice >= 0
        items = obs["candidates"].gather(1, slate.gather(1, choice.clamp(min=0)[:, None]))
        q_item, q_null = self.q(obs, items)
        pred = torch.where(clicked, q_item.squeeze(1), q_null)
        loss = F.smooth_l1_loss(pred, target) if self.config.huber else F.mse_loss(pred, target)
        self.q_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), self.config.max_grad_norm)
        self.q_opt.step()
        self.n_updates += 1
        if self.n_updates % self.config.target_update_interval == 0:
            self.q_target.load_state_dict(self.q.state_dict())
        out = {"train/loss": loss.item(), "train/q_mean": pred.mean().item()}
        return out if click_loss is None else {**out, "train/click_loss": click_loss}

    def _learn_clicks(self, obs: dict[str, torch.Tensor], slate: torch.Tensor, choice: torch.Tensor) -> float:
        shown = obs["candidates"].gather(1, slate)
        logits, null_logit = self.click(obs, shown)
        util = logits + self.click.slot_bias[: slate.shape[1]]
        label = torch.where(choice >= 0, choice, torch.full_like(choice, slate.shape[1]))
        loss = F.cross_entropy(torch.cat([util, null_logit[:, None]], 1), label)
        self.click_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.click.parameters(), self.config.max_grad_norm)
        self.click_opt.step()
        return loss.item()

    # -- persistence -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "slate_size": self.slate_size,
            "config": self.config,
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "click": self.click.state_dict(),
            "q_opt": self.q_opt.state_dict(),
            "click_opt": self.click_opt.state_dict(),
            "replay": self.replay.state_dict(),
            "users": self.users.state_dict(),
            "rng": self.rng.bit_generator.state,
            "n_updates": self.n_updates,
            "progress": self.progress,
            "steps_since_update": self.steps_since_update,
            "n_step": None if self.n_step is None else self.n_step.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("q", "q_target", "click", "q_opt", "click_opt", "replay", "users"):
            getattr(self, key).load_state_dict(state[key])
        self.rng.bit_generator.state = state["rng"]
        self.n_updates, self.progress = state["n_updates"], state["progress"]
        self.steps_since_update = state["steps_since_update"]
        if self.n_step is not None:
            self.n_step.load_state_dict(state["n_step"])

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "SlateQAgent":
        agent = cls(ObservationSpec(**state["spec"]), state["slate_size"], state["config"])
        agent.load_state_dict(state)
        return agent
