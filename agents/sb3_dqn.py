"""Stable-Baselines3's DQN on the recommendation env, through the single-item ``Discrete`` view.

The Q-network scores each candidate with the same function of (state, item embedding) — a
:class:`CandidateFeaturesExtractor` builds per-candidate features and :class:`CandidateQHead` maps
each to one Q-value — so the action "show candidate ``a`` in slot 0" generalises across positions
and items, and item embeddings can be warm-started from the baselines' export, in place
(:func:`warm_start_in_place`) or through SB3's ``set_parameters(..., exact_match=False)``
(:func:`warm_start_parameters`).

Batched training: :func:`batched_discrete_env` puts a :class:`RecVectorEnv` behind the SB3 ``VecEnv``
adapter and a vectorised ``Discrete`` view with the fill rules of
:class:`~recsim_env.env.wrappers.SingleItemDiscrete` (slot 0 is the action; slots 1.. by a scorer —
by default its own Q's next picks, or the catalogue's popularity, or cyclically: :data:`FILLS`) and,
by default, credits the learner with its own slot's reward only (``credit="pick"``: the filler's
clicks are much the same whatever it picks, so under the slate's reward they are noise to it). A
single env goes through ``SingleItemDiscrete`` itself. A slate env
without either view is refused with a :class:`ConfigError`: SB3's DQN only takes ``Discrete``.
As a slate policy, :class:`SB3SlatePolicy` shows the greedy action in slot 0 and the same fill.

Checkpoints hold the model as data (weights, optimizer state, replay arrays, counters, RNG states) in
:mod:`agents.checkpoint`'s format, and a load builds the model again through ``DQN``'s constructor:
SB3's own ``save`` / ``load`` and replay-buffer files are pickles, which run code when read.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn
from tqdm.auto import tqdm

from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.networks import (
    INT_KEYS,
    ItemTower,
    ObservationSpec,
    StateEncoder,
    mlp,
    observation_keys,
)
from agents.training import (
    EpisodeTracker,
    ScalarLogger,
    TrainConfig,
    TrainResult,
    env_state,
)
from agents.warm_start import Embeddings, apply_to_tower
from recsim_env.env.wrappers import CREDITS, CreditedView, slot_reward_fn
from recsim_env.errors import ArtifactError, ConfigError

logger = logging.getLogger(__name__)


class CandidateFeaturesExtractor(BaseFeaturesExtractor):
    """Dict observation -> ``(b, h + C · (f - h))``: the state (``h = hidden``) once, then per candidate
    the rest of its ``f`` features — in all, per candidate, [state, item embedding, their product,
    whether the user consumed it within the observed history] and,
    given ``item_features`` (:func:`item_features`), the candidate's features and their product with
    the mean features of the user's history — so Q sees how popular a candidate is and how well its
    genres match what the user consumed, which an id embedding learned from clicks alone reaches
    only for the few items it has seen often."""

    def __init__(self, observation_space: spaces.Dict, embedding_dim: int = 32, hidden: int = 64,
                 item_features: np.ndarray | None = None) -> None:
        spec = ObservationSpec.from_space(observation_space)
        n_feat = 0 if item_features is None else int(np.shape(item_features)[1])
        self.n_candidates, self.per_candidate = spec.n_candidates, hidden + 2 * embedding_dim + 2 * n_feat + 1
        self.state_dim = hidden
        """The leading features, the state's, sent once rather than once per candidate (:class:`CandidateQHead`)."""
        super().__init__(observation_space,
                         features_dim=hidden + spec.n_candidates * (self.per_candidate - hidden))
        self.tower = ItemTower(spec.n_items, spec.n_users, embedding_dim)
        self.encoder = StateEncoder(spec, self.tower, hidden, hidden)
        self.state_proj = nn.Linear(hidden, embedding_dim)
        if item_features is not None:
            table = torch.as_tensor(np.asarray(item_features, dtype=np.float32))
            if table.ndim != 2 or table.shape[0] != spec.n_items:
                raise ConfigError(f"item_features must be (n_items={spec.n_items}, k), got {tuple(table.shape)}")
            # Row n_items is the zero row that history padding (-1) reads.
            self.register_buffer("item_table", torch.cat([table, torch.zeros(1, table.shape[1])]))
        else:
            self.item_table = None

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        # SB3 hands every Box over as float; item and user indices are ids, so round them back.
        obs = {k: (observations[k].round().long() if k in INT_KEYS else observations[k])
               for k in observation_keys(observations)}
        obs["user_index"] = obs["user_index"].reshape(-1, 1)
        state = self.encoder(obs)
        emb = self.tower.item(obs["candidates"])
        # Whether the candidate is among the user's recently consumed items: simulated users (and real
        # ones) rarely take an item again, and an id embedding cannot see that.
        consumed = (obs["candidates"].unsqueeze(-1) == obs["history_items"].unsqueeze(1)).any(-1, keepdim=True)
        parts = [emb, self.state_proj(state).unsqueeze(1) * emb, consumed.float()]
        if self.item_table is not None:
            none = self.item_table.shape[0] - 1
            cand = self.item_table[obs["candidates"]]
            hist_items = obs["history_items"]
            hist = self.item_table[torch.where(hist_items < 0, none, hist_items)]
            n_hist = (hist_items >= 0).sum(1, keepdim=True).clamp(min=1).unsqueeze(-1)
            parts += [cand, cand * (hist.sum(1, keepdim=True) / n_hist)]
        return torch.cat([state, torch.cat(parts, -1).flatten(1)], -1)


def item_features(catalog: Any) -> np.ndarray:
    """``(n_items, 1 + D)`` Q-network item inputs from an :class:`~recsim_env.data.catalog.ItemCatalog`:
    standardised log popularity, then the catalogue's content features (genres, year)."""
    logpop = np.log(np.asarray(catalog.popularity, dtype=np.float64) + 1e-6)
    logpop = (logpop - logpop.mean()) / max(float(logpop.std()), 1e-6)
    return np.column_stack([logpop, catalog.content_features()]).astype(np.float32)


def _env_catalog(env: Any) -> Any:
    """The :class:`~recsim_env.data.catalog.ItemCatalog` behind a Discrete view, if it has one."""
    for candidate in (env, getattr(env, "unwrapped", None)):
        catalog = getattr(candidate, "catalog", None)
        if catalog is not None:
            return catalog
    return None


class CandidateQHead(nn.Module):
    """:class:`CandidateFeaturesExtractor`'s ``(b, h + C · (f - h))`` -> ``(b, C)`` Q-values, one shared
    MLP over each candidate's ``f`` features (the state's ``h``, then its own). The first layer's state
    part is computed once per row and added to every candidate's: the same function as the MLP on the
    state repeated per candidate, at about half the cost (that copy was most of a training step's time)."""

    def __init__(self, n_candidates: int, per_candidate: int, hidden: int, state_dim: int) -> None:
        super().__init__()
        self.n_candidates, self.per_candidate, self.state_dim = n_candidates, per_candidate, state_dim
        self.net = mlp([per_candidate, hidden, 1])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        first, rest = self.net[0], self.net[1:]
        state, own = features[:, : self.state_dim], features[:, self.state_dim:]
        own = own.reshape(-1, self.n_candidates, self.per_candidate - self.state_dim)
        from_state = nn.functional.linear(state, first.weight[:, : self.state_dim], first.bias)
        hidden = nn.functional.linear(own, first.weight[:, self.state_dim:]) + from_state.unsqueeze(1)
        return rest(hidden).squeeze(-1)


class CandidateDQNPolicy(DQNPolicy):
    """SB3's DQN policy with :class:`CandidateQHead` in place of the flat MLP head."""

    def make_q_net(self) -> QNetwork:
        net = super().make_q_net()
        extractor = net.features_extractor
        if not isinstance(extractor, CandidateFeaturesExtractor):
            raise ConfigError("CandidateDQNPolicy needs features_extractor_class=CandidateFeaturesExtractor")
        hidden = self.net_arch[0] if self.net_arch else 64
        net.q_net = CandidateQHead(extractor.n_candidates, extractor.per_candidate, hidden,
                                   extractor.state_dim).to(self.device)
        return net


Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]
"""Batched observation -> ``(n, C)`` candidate scores that fill slots 1.. (higher first)."""


def fill_slates(first: np.ndarray, slate_size: int, n_candidates: int, scores: np.ndarray | None) -> np.ndarray:
    """``(n, k)`` slates with ``first`` in slot 0; slots 1.. by ``scores`` (descending) or, without
    scores, the positions that follow ``first`` cyclically (``SingleItemDiscrete``'s rules)."""
    first = np.asarray(first, dtype=np.int64).reshape(-1, 1)
    if scores is None:
        return (first + np.arange(slate_size)) % n_candidates
    scores = np.array(scores, dtype=np.float64)
    np.put_along_axis(scores, first, np.inf, axis=1)
    return np.argsort(-scores, axis=1, kind="stable")[:, :slate_size].astype(np.int64)


class PopularityScorer:
    """Scores candidates by the catalogue's logged popularity (the env's own item statistics)."""

    def __init__(self, popularity: np.ndarray) -> None:
        self.popularity = np.asarray(popularity, dtype=np.float64)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.popularity[np.asarray(obs["candidates"])]


class QScorer:
    """Scores candidates by a DQN's own online Q-values: slots 1.. show its next picks, so the slate is
    the top-``k`` of Q (what :class:`SB3SlatePolicy` shows without a fill scorer). Bound to the model
    after it is built (:meth:`bind`), since the view exists first."""

    def __init__(self) -> None:
        self.model: DQN | None = None

    def bind(self, model: DQN) -> "QScorer":
        self.model = model
        return self

    @torch.no_grad()
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.model is None:
            raise ConfigError("fill='q' needs the DQN: build it with make_sb3_dqn on this view")
        obs_t, _ = self.model.policy.obs_to_tensor(obs)
        return self.model.q_net(obs_t).cpu().numpy()


FILLS = ("q", "popularity", "cyclic")
"""Rules for slots 1.. of SB3 DQN's slates: its own Q's next picks, the catalogue's popularity, or the
candidates that follow its pick (:func:`fill_slates`)."""
DEFAULT_FILL = "q"
"""Chosen in the synthetic simulator, where the popular items are the clickbait: seed 0, 48k steps, gamma
0.2, greedy return over 256 episodes (random 14.7, the myopic oracle 13.3): popularity fill 10.9 (99 % of the
shown items clickbait), its own Q 13.0 (75 %); at gamma 0.9, 12.9. In ``ml100k-train`` (24k steps, random
9.3) popularity 21.1 ± 1.1, Q 18.6 ± 1.1 (BENCHMARKS.md, issue #12)."""


VIEW_CREDITS = (*CREDITS, "choice")
"""What the batched view credits its learner with: the slate's reward, slot 0's own (``"pick"``), or the
slate's reward credited to the candidate the user chose (``"choice"``: the replay buffer stores that
candidate as the action, slot 0's pick on a step without a click), as REINFORCE's choice credit does:
the budget a clickbait click drains is then charged to the clickbait, wherever it was shown."""
DEFAULT_CREDIT = "choice"
"""Chosen in the synthetic simulator (seed 0, 48k steps, own-Q fill, greedy return over 256 episodes; random
14.66): at gamma 0.9 and 10-step returns, choice 15.99 against pick 13.05; one-step, choice 11.22 (the max
over 100 candidates' Q, most of them never chosen, is the target) — see :func:`make_sb3_dqn` and
BENCHMARKS.md, issue #12."""
CREDITED_ACTION = "credited_action"
"""``infos`` key of the action :class:`CreditReplayBuffer` stores in place of the one taken."""


class CreditReplayBuffer(DictReplayBuffer):
    """SB3's ``DictReplayBuffer`` with n-step returns and credited actions.

    * ``n_steps > 1``: a sample's reward is the discounted sum of up to ``n_steps`` rewards of its env's
      row, cut at the first end of episode, and it bootstraps from the observation after the last one
      with ``gamma ** k`` (``k`` the rewards summed) — SB3 2.9's ``NStepReplayBuffer``, which refuses
      Dict observations, for the Dict ones the Q-network reads.
    * An ``infos`` entry :data:`CREDITED_ACTION` (the view's ``credit="choice"``) is stored as the action.

    :param n_steps: rewards summed per sample (1: SB3's one-step target).
    :param gamma: their discount (the DQN's ``gamma``).
    """

    def __init__(self, *args: Any, n_steps: int = 1, gamma: float = 0.99, **kwargs: Any) -> None:
        if int(n_steps) != n_steps or n_steps < 1:
            raise ConfigError(f"n_steps must be a positive integer, got {n_steps!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {gamma!r}")
        super().__init__(*args, **kwargs)
        self.n_steps, self.gamma = int(n_steps), float(gamma)

    def add(self, obs: Any, next_obs: Any, action: np.ndarray, reward: np.ndarray, done: np.ndarray,
            infos: list[dict[str, Any]]) -> None:
        if infos and CREDITED_ACTION in infos[0]:
            action = np.array([info[CREDITED_ACTION] for info in infos], dtype=np.asarray(action).dtype)
        super().add(obs, next_obs, action, reward, done, infos)

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> DictReplayBufferSamples:
        if self.n_steps == 1:
            return super()._get_samples(batch_inds, env)
        env_inds = np.random.randint(0, self.n_envs, size=(len(batch_inds),))
        # The newest row's successor is the oldest data (or empty): treat it as an episode's end.
        newest = (self.pos - 1) % self.buffer_size
        ends = self.dones.astype(bool) | self.timeouts.astype(bool)
        ends[newest] = True
        rows = (batch_inds[:, None] + np.arange(self.n_steps)) % self.buffer_size
        seq_ends = ends[rows, env_inds[:, None]]
        last = np.where(seq_ends.any(1), seq_ends.argmax(1), self.n_steps - 1)
        mask = np.arange(self.n_steps) <= last[:, None]
        discounts = self.gamma ** np.arange(self.n_steps, dtype=np.float32)
        returns = (self.rewards[rows, env_inds[:, None]] * discounts * mask).sum(1, keepdims=True)
        last_rows = rows[np.arange(len(rows)), last]
        # Bootstrap unless the episode terminated (a timeout, or the buffer's edge, bootstraps).
        terminated = self.dones[last_rows, env_inds] * (1.0 - self.timeouts[last_rows, env_inds])
        obs = {key: self.to_torch(array[batch_inds, env_inds]) for key, array in self.observations.items()}
        next_obs = {key: self.to_torch(array[last_rows, env_inds]) for key, array in self.next_observations.items()}
        return DictReplayBufferSamples(
            observations=obs, actions=self.to_torch(self.actions[batch_inds, env_inds]),
            next_observations=next_obs, dones=self.to_torch(terminated.reshape(-1, 1)),
            rewards=self.to_torch(returns.reshape(-1, 1)),
            discounts=self.to_torch((self.gamma ** (last + 1)).astype(np.float32).reshape(-1, 1)))


class DiscreteVecView(CreditedView, VecEnvWrapper):
    """A slate SB3 ``VecEnv`` seen through ``Discrete(n_candidates)`` actions, batched: row ``i``'s
    action fills slot 0 and :func:`fill_slates` the rest (by ``scorer``, else cyclically). ``credit``
    as in :class:`~recsim_env.env.wrappers.SingleItemDiscrete` (``"pick"`` needs the per-slot responses in
    ``infos``, which :func:`batched_discrete_env` asks the adapter for)."""

    def __init__(self, venv: VecEnv, scorer: Scorer | None = None, credit: str = "slate", fill: str = "") -> None:
        space = venv.action_space
        if not isinstance(space, spaces.MultiDiscrete) or space.nvec.ndim != 1:
            raise ConfigError(f"DiscreteVecView wraps a slate VecEnv (MultiDiscrete), got {space}")
        self.n_candidates, self.slate_size = int(space.nvec[0]), len(space.nvec)
        super().__init__(venv, action_space=spaces.Discrete(self.n_candidates))
        self.scorer = scorer
        self.fill = fill or ("cyclic" if scorer is None else "custom")
        """The fill rule's name (:data:`FILLS`), kept in checkpoints."""
        self._reward_source = getattr(venv, "venv", venv)  # the RecVectorEnv behind the SB3 adapter
        self.credit = credit
        self.catalog: Any = None
        """The vector env's item catalogue (Q-network item features), set by :func:`batched_discrete_env`."""
        self._last_obs: Any = None
        self._slates: np.ndarray | None = None

    def step_async(self, actions: np.ndarray) -> None:
        scores = None if self.scorer is None else self.scorer(self._last_obs)
        self._slates = fill_slates(actions, self.slate_size, self.n_candidates, scores)
        self.venv.step_async(self._slates)

    def reset(self) -> Any:
        self._last_obs = self.venv.reset()
        return self._last_obs

    @property
    def credit(self) -> str:
        return self._credit

    @credit.setter
    def credit(self, value: str) -> None:
        if value not in VIEW_CREDITS:
            raise ConfigError(f"credit must be one of {list(VIEW_CREDITS)}, got {value!r}")
        self._slot_reward = slot_reward_fn(self._reward_source, "pick" if value == "pick" else "slate")
        self._credit = value

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._last_obs = obs
        if self._credit == "choice":
            if "choice" not in infos[0]:
                raise ConfigError("credit='choice' needs the responses in infos: "
                                  "SB3VecEnvAdapter(..., include_responses=True)")
            # The candidate the user took (slot 0's without a click) earned the slate's reward.
            for info, slate in zip(infos, self._slates):
                info[CREDITED_ACTION] = int(slate[max(int(info["choice"]), 0)])
            return obs, rewards, dones, infos
        if self._slot_reward is not None:
            if "click" not in infos[0]:
                raise ConfigError("credit='pick' needs per-slot responses in infos: "
                                  "SB3VecEnvAdapter(..., include_responses=True)")
            per_slot = self._slot_reward.per_slot({k: np.stack([i[k] for i in infos])
                                                   for k in ("click", "like", "rating", "dwell")})
            for info, total in zip(infos, rewards):
                info["slate_reward"] = float(total)
            rewards = per_slot[:, 0].astype(np.float32)
        return obs, rewards, dones, infos

    @property
    def vector_env(self) -> Any:
        """The :class:`~recsim_env.env.vector.RecVectorEnv` behind the SB3 adapter (whose users a checkpoint keeps)."""
        return self._reward_source


def batched_discrete_env(vector_env: Any, fill: str = DEFAULT_FILL, credit: str = DEFAULT_CREDIT) -> DiscreteVecView:
    """A :class:`~recsim_env.env.vector.RecVectorEnv` as a ``Discrete`` SB3 ``VecEnv`` (responses in infos).

    ``fill`` (:data:`FILLS`) chooses slots 1..: ``"q"``, the DQN's own next picks by Q (the slate is
    its top-``k``; :func:`make_sb3_dqn` binds the scorer to the model it builds); ``"popularity"``,
    the most popular other candidates (the cyclic rule where the env has no catalog), so the slot-0
    choice is judged beside a fixed, sensible slate — but where the popular items are the clickbait
    (the synthetic simulator) that fill is the trap, whatever slot 0 learns; ``"cyclic"``, the
    wrapper's policy-independent rule.

    ``credit`` (:data:`VIEW_CREDITS`; default :data:`DEFAULT_CREDIT`): ``"choice"`` stores the candidate the
    user took as the action, with the slate's reward; ``"pick"`` rewards the learner with its own slot's
    reward (the env's reward function on slot 0), ``"slate"`` with the whole slate's. Measured in the ML-100K simulator
    (``scripts/diagnose_sb3_dqn.py``, seed 0, 120k steps): under ``"slate"`` the trained Q ranked
    candidates with a Spearman correlation of 0.37 to the users' true utilities and its picks were
    worth less than popularity's (mean utility 1.39 vs 1.59); under ``"pick"`` 0.52, and 2.28 vs 1.64
    (BENCHMARKS.md, Agents), at gamma 0.2 and one-step targets. Episode statistics and TensorBoard
    returns are always the slate's (``info["slate_reward"]``).
    """
    from agents.sb3_vec_env import SB3VecEnvAdapter

    if fill not in FILLS:
        raise ConfigError(f"fill must be one of {list(FILLS)}, got {fill!r}")
    catalog = getattr(vector_env, "catalog", None)
    if fill == "popularity" and catalog is None:  # no popularity to rank by: the policy-independent rule
        fill = "cyclic"
    scorer = {"q": QScorer, "popularity": lambda: PopularityScorer(catalog.popularity), "cyclic": lambda: None}[fill]()
    view = DiscreteVecView(SB3VecEnvAdapter(vector_env, include_responses=True), scorer, credit, fill)
    view.catalog = catalog
    return view


def check_discrete(env: Any) -> None:
    """:class:`ConfigError` unless ``env`` offers SB3's DQN a ``Discrete`` action space."""
    space = getattr(env, "action_space", None)
    if isinstance(space, spaces.Discrete):
        return
    if isinstance(env, gym.vector.VectorEnv):
        hint = "pass agents.sb3_dqn.batched_discrete_env(vector_env)"
    else:
        hint = "wrap it in recsim_env.env.wrappers.SingleItemDiscrete"
    raise ConfigError(f"SB3 DQN needs a Discrete action space but the env's is {space} (a slate); {hint}")


def make_sb3_dqn(env: Any, seed: int = 0, embedding_dim: int = 32, hidden: int = 64,
                 warm_start: Embeddings | None = None, tensorboard_log: str | None = None,
                 use_item_features: bool = True, **dqn_kwargs: Any) -> DQN:
    """An SB3 ``DQN`` with the per-candidate Q-network on a ``Discrete`` view of the env.

    With ``use_item_features`` and a catalogue behind the env, Q also reads each candidate's
    popularity and content features (:func:`item_features`). ``dqn_kwargs`` override the defaults
    below (any ``DQN`` constructor argument) and ``n_steps`` the rewards each target sums before it
    bootstraps (:class:`CreditReplayBuffer`). gamma 0.95 with 30-step returns, under the view's choice
    credit: the target is then close to the discounted return after the user took the item, and leans
    little on the max over 100 candidates' Q (most never chosen), which taught one-step DQN the click.
    Chosen in the synthetic simulator (seed 0, 48k steps, greedy return over 256 episodes; random 14.66,
    myopic oracle 13.09): gamma 0.2 one-step (the old default) 12.10; choice credit at 0.9 one-step 11.22,
    3-step 11.57, 10-step 15.99, 30-step 17.00; at 0.95 10-step 17.34, **30-step 18.65**. In
    ``ml100k-train`` (24k steps, random 10.10) the old default 17.56 ± 2.23, this one 16.79 ± 2.00, gamma
    0.9 30-step 17.35 ± 2.05 (BENCHMARKS.md, issue #12).
    """
    check_discrete(env)
    dim = warm_start.dim if warm_start is not None else embedding_dim
    kwargs: dict[str, Any] = dict(learning_rate=5e-4, buffer_size=50_000, learning_starts=2_000, batch_size=256,
                                  gamma=0.95, n_steps=30, train_freq=1, gradient_steps=1, target_update_interval=1_000,
                                  exploration_fraction=0.2, exploration_final_eps=0.02, verbose=0)
    kwargs.update(dqn_kwargs)
    # SB3 refuses n-step returns on Dict observations; the buffer here sums them (and stores credited actions).
    n_steps = kwargs.pop("n_steps", 1)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ConfigError(f"n_steps must be a positive integer, got {n_steps!r}")
    kwargs["replay_buffer_kwargs"] = {**kwargs.get("replay_buffer_kwargs", {}), "n_steps": int(n_steps),
                                      "gamma": float(kwargs["gamma"])}
    catalog = _env_catalog(env) if use_item_features else None
    extractor_kwargs: dict[str, Any] = dict(embedding_dim=dim, hidden=hidden)
    if catalog is not None:
        extractor_kwargs["item_features"] = item_features(catalog)
    model = DQN(CandidateDQNPolicy, env, policy_kwargs=_policy_kwargs(extractor_kwargs, [hidden]), seed=seed,
                device="cpu", tensorboard_log=tensorboard_log, replay_buffer_class=CreditReplayBuffer, **kwargs)
    if warm_start is not None:
        warm_start_in_place(model, warm_start)
    if isinstance(getattr(env, "scorer", None), QScorer):
        env.scorer.bind(model)
    return model


def _policy_kwargs(extractor_kwargs: dict[str, Any], net_arch: list[int]) -> dict[str, Any]:
    """The policy arguments of :func:`make_sb3_dqn`'s models (also those a checkpoint is rebuilt with)."""
    return dict(features_extractor_class=CandidateFeaturesExtractor, features_extractor_kwargs=extractor_kwargs,
                net_arch=net_arch)


def _towers(model: DQN) -> list[ItemTower]:
    return [model.q_net.features_extractor.tower, model.q_net_target.features_extractor.tower]


def warm_start_in_place(model: DQN, emb: Embeddings, item_ids: np.ndarray | None = None) -> None:
    """Copy ``emb`` into the online and target networks' item (and user) tables."""
    for tower in _towers(model):
        apply_to_tower(tower, emb, item_ids)


def warm_start_parameters(model: DQN, emb: Embeddings, item_ids: np.ndarray | None = None) -> dict[str, Any]:
    """The partial parameter dict that ``model.set_parameters(params, exact_match=False)`` loads."""
    params: dict[str, torch.Tensor] = {}
    for prefix, tower in (("q_net", _towers(model)[0]), ("q_net_target", _towers(model)[1])):
        scratch = ItemTower(tower.items.num_embeddings - 1, tower.users.num_embeddings - 1, tower.dim)
        scratch.load_state_dict(tower.state_dict())
        apply_to_tower(scratch, emb, item_ids)
        for name, value in scratch.state_dict().items():
            params[f"{prefix}.features_extractor.tower.{name}"] = value
    return {"policy": params}


class SB3SlatePolicy:
    """A trained SB3 DQN as a slate :class:`~recsim_env.protocols.Recommender`: slot 0 is the
    greedy action and slots 1.. follow the fill it was trained with (``scorer``; without one, the
    top-``k`` candidates by Q)."""

    def __init__(self, model: DQN, slate_size: int, scorer: Scorer | None = None) -> None:
        self.model, self.slate_size, self.scorer = model, slate_size, scorer

    @torch.no_grad()
    def q_values(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs_t, _ = self.model.policy.obs_to_tensor(observation)
        return self.model.q_net(obs_t).cpu().numpy()

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        single = np.ndim(observation["candidates"]) == 1
        batch = {k: np.asarray(v)[None] for k, v in observation.items()} if single else observation
        q = self.q_values(batch).reshape(-1, np.shape(batch["candidates"])[-1])
        scores = q if self.scorer is None else self.scorer(batch)
        slate = fill_slates(q.argmax(1), self.slate_size, q.shape[1], scores)
        return (slate[0] if single else slate), state


SB3_NAME = "SB3DQN"
SB3_FORMAT = 3
"""3: the model as data, rebuilt through ``DQN``'s constructor; 2: Q reads whether each candidate was
consumed recently (1 and 2 held SB3's own save files)."""
_RETIRED_FORMATS = dict.fromkeys((1, 2), "formats 1 and 2 held Stable-Baselines3's own model and replay files, which "
                                         "are pickled: loading one would run any code put in it")

_DQN_ARGUMENTS = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "gradient_steps",
                  "replay_buffer_kwargs", "optimize_memory_usage", "n_steps", "target_update_interval",
                  "exploration_fraction", "exploration_initial_eps", "exploration_final_eps", "max_grad_norm",
                  "verbose", "seed")
"""``DQN`` constructor arguments a checkpoint keeps, read from the model's attributes of the same name
(``train_freq`` and ``stats_window_size`` are kept apart: SB3 stores them converted or renamed; the
policy's are :func:`make_sb3_dqn`'s, and the device is the CPU). Not ``tensorboard_log``: a file must
not choose where a resumed run writes (set ``model.tensorboard_log`` again to keep SB3's own log)."""
_PROGRESS = ("num_timesteps", "_total_timesteps", "_num_timesteps_at_start", "_n_updates", "_n_calls", "_episode_num",
             "_current_progress_remaining", "exploration_rate", "_last_obs", "_last_original_obs",
             "_last_episode_starts")
"""Model attributes that SB3's loop advances (``_n_calls`` times the target-network copies, the
progress the exploration rate): a resumed run starts from these, not from the constructor's."""
_REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
_PAYLOAD_KEYS = ("dqn", "curve", "rng", "env", "loop", "slate_size", "credit", "popularity")

class RecCallback(BaseCallback):
    """Episode metrics, TensorBoard scalars, progress and atomic checkpoints for SB3's own loop,
    through the same :class:`EpisodeTracker` / :class:`ScalarLogger` as :func:`agents.training.train`."""

    def __init__(self, config: TrainConfig, scalars: ScalarLogger, ckpt_path: Path | None) -> None:
        super().__init__()
        self.config, self.scalars, self.ckpt_path = config, scalars, ckpt_path
        self.stats: EpisodeTracker | None = None
        self.bar: Any = None

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self.stats = EpisodeTracker(n)
        start = self.model.num_timesteps
        self._continue_loop(start)
        self.next_log = (start // self.config.log_interval + 1) * self.config.log_interval
        interval = self.config.checkpoint_interval
        self.next_ckpt = (start // interval + 1) * interval if interval else None
        self.clock, self.clock_step = time.perf_counter(), start
        self.bar = tqdm(total=self.config.total_steps, initial=start, disable=not self.config.progress,
                        unit="step", desc="SB3 DQN")

    def _on_step(self) -> bool:
        infos, done = self.locals["infos"], np.asarray(self.locals["dones"])
        info = {k: np.array([i.get(k, 0) for i in infos]) for k in ("choice", "like") if k in infos[0]}
        # The env's reward for the slate, also when the learner is credited with its own slot only.
        rewards = np.array([i.get("slate_reward", r) for i, r in zip(infos, self.locals["rewards"])], dtype=np.float64)
        self.stats.update(rewards, info, done)
        step = self.model.num_timesteps
        self.bar.update(len(done))
        if step >= self.next_log:
            rate = (step - self.clock_step) / max(time.perf_counter() - self.clock, 1e-9)
            loss = self.model.logger.name_to_value.get("train/loss")
            row = {**self.stats.drain(), "train/epsilon": self.model.exploration_rate, "time/env_steps_per_s": rate}
            if loss is not None:
                row["train/loss"] = float(loss)
            self.scalars.log(step, row)
            self.clock, self.clock_step = time.perf_counter(), step
            self.next_log += self.config.log_interval
        return True

    def _on_rollout_start(self) -> None:
        # Here, not in _on_step: SB3 calls _on_step before it stores the step's transition, updates
        # epsilon and trains, so a checkpoint written there would resume half-way through a step.
        step = self.model.num_timesteps
        if self.ckpt_path is not None and self.next_ckpt is not None and step >= self.next_ckpt:
            save_sb3_checkpoint(self.ckpt_path, self.model, self.scalars.curve, self.stats)
            self.next_ckpt += self.config.checkpoint_interval

    def _continue_loop(self, start: int) -> None:
        """Take over the episode sums and last loss of the run that :func:`load_sb3_checkpoint` resumed."""
        loop = getattr(self.model, "loop_state", None)
        if loop is None or loop["steps"] != start:
            return
        self.model.loop_state = None
        if loop["stats"] is not None:
            self.stats.__dict__.update(loop["stats"])
        if loop["loss"] is not None:  # SB3's logger does not survive a save; the next row reads the loss
            self.model.logger.record("train/loss", loop["loss"])

    def _on_training_end(self) -> None:
        self.bar.close()


def _last_loss(model: DQN) -> float | None:
    try:
        value = model.logger.name_to_value.get("train/loss")
    except AttributeError:  # the model has not trained in this process: no logger yet
        return None
    return None if value is None else float(value)


def save_sb3_checkpoint(path: Path, model: DQN, curve: list[dict[str, float]],
                        stats: EpisodeTracker | None = None) -> None:
    """Model (as data: :func:`_dqn_state`), replay buffer, counters, curve, the global RNG states SB3 draws
    from, the exploration's action-space RNG, and (for a :class:`DiscreteVecView` whose env has
    ``get_state()``) the env's users and random streams as data, with the running episode sums ``stats``,
    in one atomic file: :func:`load_sb3_checkpoint` then continues the run as if it had not stopped."""
    view = model.get_env()
    env = env_state(view.vector_env) if isinstance(view, DiscreteVecView) else None
    loop = {"steps": model.num_timesteps, "loss": _last_loss(model),
            "stats": None if stats is None or env is None else dict(stats.__dict__)}
    save_checkpoint(path, SB3_NAME, SB3_FORMAT, {"dqn": _dqn_state(model), "curve": curve, "rng": _sb3_rng_state(model),
                                                  "env": env, "loop": loop,
                                                  "slate_size": getattr(view, "slate_size", 1),
                                                  "credit": getattr(view, "credit", "slate"),
                                                  "popularity": getattr(fill_scorer(model), "popularity", None),
                                                  "fill": getattr(view, "fill", None)})


def load_sb3_checkpoint(path: str | Path, env: Any | None = None) -> tuple[DQN, list[dict[str, float]]]:
    """A DQN (with its replay buffer) and learning curve from :func:`save_sb3_checkpoint`; the slate
    size it was trained for is ``model.slate_size``.

    Nothing in the file runs: it is read as data (:func:`agents.checkpoint.load_checkpoint`) and the
    model is built again through ``DQN``'s constructor, then given the file's weights, optimizer state,
    counters and replay contents; SB3's own ``DQN.load`` and ``load_replay_buffer``, which unpickle,
    are never called. An older checkpoint (SB3's own files) is refused with an :class:`ArtifactError`.

    With ``env`` (training is to continue, a :class:`DiscreteVecView` of the same env) the
    checkpoint's users, last observation and random streams are put back into it, so that the
    resumed run is the uninterrupted one. Where the checkpoint holds no env state (the env had no
    ``get_state()``), ``env`` draws fresh users from a seed of (model seed, step) rather than
    replaying the first step's, and the running episode sums are dropped.
    """
    payload = load_checkpoint(path, SB3_NAME, SB3_FORMAT, retired=_RETIRED_FORMATS)
    missing = [key for key in _PAYLOAD_KEYS if key not in payload]
    if missing:
        raise ArtifactError(f"checkpoint {path} is not an SB3 DQN checkpoint of format {SB3_FORMAT}: "
                            f"it lacks {missing}")
    try:
        model = _rebuild_dqn(payload["dqn"])
        _restore_sb3_rng(model, payload["rng"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # values that do not fit the model
        raise ArtifactError(f"checkpoint {path} holds an SB3 DQN that cannot be rebuilt: {exc!r}") from exc
    restore = payload["env"] is not None and isinstance(env, DiscreteVecView)
    if env is not None:
        _attach_env(model, env, path, force_reset=not restore)
    if restore:
        env.vector_env.set_state(payload["env"])
        env._last_obs = model._last_obs  # the fill scorer reads the observation the next action answers
    elif env is not None and model.seed is not None:
        logger.warning("checkpoint %s holds no env; the resumed run starts fresh users", path)
        model.env.seed(int(np.random.SeedSequence([model.seed, model.num_timesteps]).generate_state(1)[0]))
    model.loop_state = payload["loop"] if restore else None
    model.slate_size = payload["slate_size"]
    # Resume continues the same run: the view credits what it credited when the file was written.
    if isinstance(env, DiscreteVecView):
        env.credit = payload["credit"]
    # Files before the fill choice hold no "fill": popularity's array, or the cyclic rule.
    fill = payload.get("fill")
    if fill not in FILLS:  # older files, or a view with a custom scorer: what the file can rebuild
        fill = "cyclic" if payload["popularity"] is None else "popularity"
    model.fill_scorer = {"q": lambda: QScorer().bind(model), "cyclic": lambda: None,
                         "popularity": lambda: PopularityScorer(payload["popularity"])}[fill]()
    if isinstance(env, DiscreteVecView):  # and fills as it did
        env.scorer, env.fill = model.fill_scorer, fill
    return model, payload["curve"]


def _attach_env(model: DQN, env: Any, path: str | Path, force_reset: bool) -> None:
    """``model.set_env(env)``, with a :class:`ConfigError` naming what does not fit (SB3 asserts)."""
    if env.num_envs != model.n_envs:
        raise ConfigError(f"checkpoint {path} was trained on {model.n_envs} parallel envs, and its replay buffer "
                          f"is laid out by env: resume with num_envs={model.n_envs}, not {env.num_envs}")
    try:
        model.set_env(env, force_reset=force_reset)
    except ValueError as exc:  # SB3's check_for_correct_spaces
        raise ConfigError(f"checkpoint {path} does not fit the env: {exc}") from exc


def _dqn_state(model: DQN) -> dict[str, Any]:
    """``model`` as data (tensors, arrays, plain values): what :func:`_rebuild_dqn` builds it again from."""
    _check_rebuildable(model)
    return {
        "arguments": {name: getattr(model, name) for name in _DQN_ARGUMENTS},
        "train_freq": (model.train_freq.frequency, model.train_freq.unit.value),
        "stats_window_size": model._stats_window_size,
        "extractor": dict(model.policy_kwargs["features_extractor_kwargs"]),
        "net_arch": list(model.policy_kwargs["net_arch"]),
        "observation_space": _space_data(model.observation_space),
        "n_actions": int(model.action_space.n),
        "n_envs": model.n_envs,
        "policy": model.policy.state_dict(),  # the online and the target network
        "optimizer": model.policy.optimizer.state_dict(),
        "progress": {name: getattr(model, name) for name in _PROGRESS},
        "episode_infos": [None if infos is None else list(infos)
                          for infos in (model.ep_info_buffer, model.ep_success_buffer)],
        "replay": _replay_state(model.replay_buffer),
    }


def _check_rebuildable(model: DQN) -> None:
    """:class:`ConfigError` unless ``model`` is one :func:`_rebuild_dqn` can build again: :func:`make_sb3_dqn`'s."""
    kwargs = model.policy_kwargs
    if (model.policy_class is not CandidateDQNPolicy or set(kwargs) != set(_policy_kwargs({}, []))
            or kwargs["features_extractor_class"] is not CandidateFeaturesExtractor):
        raise ConfigError("an SB3 DQN checkpoint keeps models built by agents.sb3_dqn.make_sb3_dqn "
                          f"(CandidateDQNPolicy and its policy arguments), not {model.policy_class.__name__} "
                          f"with policy arguments {sorted(kwargs)}")
    if type(model.replay_buffer) is not CreditReplayBuffer:
        raise ConfigError(f"an SB3 DQN checkpoint keeps a CreditReplayBuffer, not {type(model.replay_buffer).__name__}")


def _rebuild_dqn(state: dict[str, Any]) -> DQN:
    """An SB3 DQN built through its constructor from :func:`_dqn_state`'s data, then given the saved
    weights, optimizer state, counters and replay contents: what ``DQN.load`` does, unpickling nothing."""
    policy_kwargs = _policy_kwargs(dict(state["extractor"]), [int(width) for width in state["net_arch"]])
    arguments = {name: state["arguments"][name] for name in _DQN_ARGUMENTS}
    model = DQN(CandidateDQNPolicy, None, policy_kwargs=policy_kwargs, train_freq=tuple(state["train_freq"]),
                replay_buffer_class=CreditReplayBuffer,
                stats_window_size=int(state["stats_window_size"]), device="cpu", _init_setup_model=False, **arguments)
    # No env yet (evaluation has none; a resume attaches its own after), so the spaces come from the file.
    model.observation_space = _space_from_data(state["observation_space"])
    model.action_space = spaces.Discrete(int(state["n_actions"]))
    model.n_envs = int(state["n_envs"])
    model._setup_model()
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    for name in _PROGRESS:
        setattr(model, name, state["progress"][name])
    infos, successes = state["episode_infos"]
    window = model._stats_window_size
    model.ep_info_buffer = None if infos is None else deque(infos, maxlen=window)
    model.ep_success_buffer = None if successes is None else deque(successes, maxlen=window)
    _restore_replay(model.replay_buffer, state["replay"])
    return model


def _space_data(space: spaces.Space) -> dict[str, dict[str, Any]]:
    """The observation space (a ``Dict`` of ``Box``es, as the Q-network reads) as bounds and dtype names."""
    if not isinstance(space, spaces.Dict) or not all(isinstance(box, spaces.Box) for box in space.values()):
        raise ConfigError(f"an SB3 DQN checkpoint keeps a Dict observation space of Boxes, not {space}")
    return {key: {"low": box.low, "high": box.high, "dtype": box.dtype.str} for key, box in space.items()}


def _space_from_data(data: dict[str, dict[str, Any]]) -> spaces.Dict:
    return spaces.Dict({key: spaces.Box(box["low"], box["high"], dtype=np.dtype(box["dtype"]))
                        for key, box in data.items()})


def _replay_state(buffer: DictReplayBuffer) -> dict[str, Any]:
    """The buffer's filled rows (all once it has wrapped), its write position and whether it is full:
    the rest of a fresh buffer is zeros, as it was here."""
    rows = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {name: _first_rows(getattr(buffer, name), rows) for name in _REPLAY_ARRAYS}
    return {"arrays": arrays, "pos": buffer.pos, "full": buffer.full}


def _first_rows(value: np.ndarray | dict[str, np.ndarray], rows: int) -> Any:
    return {key: array[:rows] for key, array in value.items()} if isinstance(value, dict) else value[:rows]


def _restore_replay(buffer: DictReplayBuffer, state: dict[str, Any]) -> None:
    full = bool(state["full"])
    pos = int(state["pos"])
    rows = buffer.buffer_size if full else pos
    if not 0 <= pos < buffer.buffer_size:
        raise ValueError(f"replay position {pos} outside the buffer's {buffer.buffer_size} rows")
    for name in _REPLAY_ARRAYS:
        _fill_rows(getattr(buffer, name), state["arrays"][name], rows, name)
    buffer.pos = pos
    buffer.full = full


def _fill_rows(target: np.ndarray | dict[str, np.ndarray], saved: Any, rows: int, name: str) -> None:
    """Write ``saved`` over the first ``rows`` rows of ``target`` (a fresh buffer's array, or dict of them)."""
    if isinstance(target, dict):
        if set(saved) != set(target):
            raise ValueError(f"replay {name} has keys {sorted(saved)}, the observation space {sorted(target)}")
        for key, array in target.items():
            _fill_rows(array, saved[key], rows, f"{name}[{key!r}]")
        return
    if saved.shape != (rows, *target.shape[1:]):
        raise ValueError(f"replay {name} has shape {saved.shape}, expected {(rows, *target.shape[1:])}")
    target[:rows] = saved


def _sb3_rng_state(model: DQN) -> dict[str, Any]:
    """The random streams SB3 draws from while it trains: the global numpy RNG (replay sampling, the
    epsilon draw), the action space's (exploration's random actions), and the global torch and Python
    ones, which SB3's ``set_random_seed`` seeds with them."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "action_space": model.action_space.np_random.bit_generator.state}


def _restore_sb3_rng(model: DQN, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    model.action_space.np_random.bit_generator.state = state["action_space"]


def fill_scorer(model: DQN) -> Scorer | None:
    """The scorer that filled slots 1.. in training (from the model's env, else from its checkpoint)."""
    env = model.get_env()
    return getattr(env, "scorer", None) if env is not None else getattr(model, "fill_scorer", None)


def train_sb3_dqn(model: DQN, config: TrainConfig, out_dir: str | Path | None = None,
                  curve: list[dict[str, float]] | None = None) -> TrainResult:
    """Run SB3's loop to ``config.total_steps`` user-steps (continuing a loaded model's count)."""
    torch.set_num_threads(1)
    out = Path(out_dir) if out_dir is not None else None
    scalars = ScalarLogger(out / "tb" if out is not None else None)
    scalars.curve = list(curve or [])
    ckpt = out / "checkpoint.pt" if out is not None else None
    remaining = config.total_steps - model.num_timesteps
    if model.num_timesteps == 0 and model.seed is not None:
        # SB3 draws from the global RNGs, seeded at construction; reseed so other work done in
        # between (another model's training) cannot change this run.
        model.set_random_seed(model.seed)
    callback = RecCallback(config, scalars, ckpt)
    if model.tensorboard_log is None and model.verbose == 0:
        # SB3's default logger for this case writes nothing yet makes an empty /tmp/SB3-<date> folder per
        # run; one with no outputs still records the loss the curve reads (``name_to_value``).
        model.set_logger(Logger(folder=None, output_formats=[]))
    if remaining > 0:
        model.learn(remaining, callback=callback, reset_num_timesteps=False)
    if ckpt is not None:
        save_sb3_checkpoint(ckpt, model, scalars.curve, callback.stats)
    scalars.close()
    return TrainResult(steps=model.num_timesteps, curve=scalars.curve, checkpoint=ckpt)
