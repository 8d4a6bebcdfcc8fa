"""A small batched slate env that follows the observation/action contract, with dynamics simple
enough that the right answer is known: the agents' known-answer tests run against it.

Each user has a budget (observable in ``user_features[0]``); clicking item ``i`` earns
``item_reward[i]`` and spends ``item_cost[i]``, an unclicked step spends ``no_click_cost``; the user
leaves when the budget is spent, or with probability ``leave_prob`` each step. Choice is a
multinomial logit on ``item_logit`` with a no-click logit and slot decay, or, with
``first_slot_only``, the user always takes slot 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class Scenario:
    n_items: int = 12
    n_candidates: int = 6
    slate_size: int = 2
    history: int = 3
    item_reward: tuple[float, ...] = ()
    item_cost: tuple[float, ...] = ()
    item_logit: tuple[float, ...] = ()
    null_logit: float = -2.0
    slot_decay: float = 0.0
    first_slot_only: bool = False
    no_click_cost: float = 1.0
    budget: float = 10.0
    leave_prob: float = 0.0
    step_cap: int = 50
    always_candidates: tuple[int, ...] = ()
    """Items put among every step's candidates (at a random position)."""
    n_logged_users: int = 5

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def pad(v: tuple[float, ...], default: float) -> np.ndarray:
            return np.asarray(v, dtype=np.float64) if v else np.full(self.n_items, default)
        return pad(self.item_reward, 1.0), pad(self.item_cost, 1.0), pad(self.item_logit, 0.0)


class FakeSlateVecEnv(gym.vector.VectorEnv):
    """Batched fake env, autoreset SAME_STEP, ``info["final_obs"]`` an object array like Gymnasium's."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, scenario: Scenario, num_envs: int = 8) -> None:
        self.sc, self.num_envs = scenario, num_envs
        self.reward_of, self.cost_of, self.logit_of = scenario.arrays()
        s = scenario
        self.single_observation_space = spaces.Dict({
            "user_index": spaces.Box(-1, s.n_logged_users - 1, (1,), np.int64),
            "user_features": spaces.Box(-np.inf, np.inf, (2,), np.float32),
            "history_items": spaces.Box(-1, s.n_items - 1, (s.history,), np.int64),
            "history_responses": spaces.Box(-np.inf, np.inf, (s.history, 3), np.float32),
            "candidates": spaces.Box(0, s.n_items - 1, (s.n_candidates,), np.int64),
            "context": spaces.Box(-np.inf, np.inf, (4,), np.float32),
        })
        self.single_action_space = spaces.MultiDiscrete([s.n_candidates] * s.slate_size)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.rng = np.random.default_rng(0)

    # -- state -----------------------------------------------------------------------------
    def _new_users(self, mask: np.ndarray) -> None:
        m = int(mask.sum())
        self.budget[mask] = self.sc.budget
        self.steps[mask] = 0
        self.clicks[mask] = 0
        self.last_click[mask] = 0
        self.user[mask] = self.rng.integers(0, self.sc.n_logged_users, m)
        self.hist_items[mask] = -1
        self.hist_resp[mask] = 0

    def _draw_candidates(self) -> None:
        n, s = self.num_envs, self.sc
        keys = self.rng.random((n, s.n_items))
        keys[:, list(s.always_candidates)] = -1.0  # always among the smallest keys
        cands = np.argsort(keys, axis=1)[:, : s.n_candidates]
        order = np.argsort(self.rng.random((n, s.n_candidates)), axis=1)
        self.cands = np.take_along_axis(cands, order, 1).astype(np.int64)

    def _obs(self) -> dict[str, np.ndarray]:
        n = self.num_envs
        return {"user_index": self.user[:, None].astype(np.int64),
                "user_features": np.stack([self.budget / self.sc.budget, np.ones(n)], 1).astype(np.float32),
                "history_items": self.hist_items.copy(), "history_responses": self.hist_resp.copy(),
                "candidates": self.cands.copy(),
                "context": np.stack([self.steps / self.sc.step_cap, self.clicks / np.maximum(self.steps, 1),
                                     self.last_click, np.zeros(n)], 1).astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        n, s = self.num_envs, self.sc
        self.budget, self.steps, self.clicks, self.last_click = (np.zeros(n) for _ in range(4))
        self.user = np.zeros(n, dtype=np.int64)
        self.hist_items = np.full((n, s.history), -1, dtype=np.int64)
        self.hist_resp = np.zeros((n, s.history, 3), dtype=np.float32)
        self._new_users(np.ones(n, dtype=bool))
        self._draw_candidates()
        return self._obs(), {}

    _STATE = ("budget", "steps", "clicks", "last_click", "user", "hist_items", "hist_resp", "cands")

    def get_state(self) -> dict:
        """Arrays and the RNG state, as RecVectorEnv gives them (what the training loop checkpoints)."""
        return {**{name: getattr(self, name).copy() for name in self._STATE}, "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        for name in self._STATE:
            setattr(self, name, state[name].copy())
        self.rng.bit_generator.state = state["rng"]

    def choose(self, items: np.ndarray) -> np.ndarray:
        n, k = items.shape
        if self.sc.first_slot_only:
            return np.zeros(n, dtype=np.int64)
        util = self.logit_of[items] - self.sc.slot_decay * np.log1p(np.arange(k))
        util = np.concatenate([util, np.full((n, 1), self.sc.null_logit)], 1)
        p = np.exp(util - util.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        c = (p.cumsum(1) < self.rng.random((n, 1))).sum(1)
        return np.where(c >= k, -1, c).astype(np.int64)

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.int64)
        n, k = actions.shape
        items = np.take_along_axis(self.cands, actions, 1)
        choice = self.choose(items)
        rows = np.arange(n)
        clicked = choice >= 0
        item = items[rows, np.maximum(choice, 0)]
        reward = np.where(clicked, self.reward_of[item], 0.0).astype(np.float32)
        click = np.zeros((n, k), np.float32)
        click[rows[clicked], choice[clicked]] = 1.0
        self.budget -= np.where(clicked, self.cost_of[item], self.sc.no_click_cost)
        self.steps += 1
        self.clicks += clicked
        self.last_click = clicked.astype(np.float64)
        self.hist_items[clicked] = np.concatenate([self.hist_items[clicked, 1:], item[clicked, None]], 1)
        resp = np.zeros((int(clicked.sum()), 1, 3), np.float32)
        resp[:, 0, 0] = 1.0
        self.hist_resp[clicked] = np.concatenate([self.hist_resp[clicked, 1:], resp], 1)
        terminated = (self.budget <= 0) | (self.rng.random(n) < self.sc.leave_prob)
        truncated = (self.steps >= self.sc.step_cap) & ~terminated
        self._draw_candidates()
        obs = self._obs()
        info = {"choice": choice, "click": click, "like": click * (reward[:, None] > 0)}
        done = terminated | truncated
        if done.any():
            final = np.empty(n, dtype=object)
            for i in np.flatnonzero(done):
                final[i] = {key: v[i].copy() for key, v in obs.items()}
            info["final_obs"], info["_final_obs"] = final, done.copy()
            # As RecVectorEnv: the ended rows' step info moves to final_info, the top level is zeroed.
            info["final_info"] = {k: np.where(done.reshape((-1,) + (1,) * (v.ndim - 1)), v, 0) for k, v in info.items()
                                  if k in ("choice", "click", "like")}
            for key in ("choice", "click", "like"):
                info[key] = np.where(done.reshape((-1,) + (1,) * (info[key].ndim - 1)), 0, info[key])
            self._new_users(done)
            self._draw_candidates_for(done)
            obs = self._obs()
        return obs, reward, terminated, truncated, info

    def _draw_candidates_for(self, mask: np.ndarray) -> None:
        keep = self.cands.copy()
        self._draw_candidates()
        self.cands = np.where(mask[:, None], self.cands, keep)




class OneItemUsers:
    """A batched :class:`~recsim_env.protocols.UserModel` for the real env: every user clicks
    ``favourite`` whenever it is shown and nothing else; nobody leaves (the step cap ends sessions)."""

    n_user_features = 2
    n_logged_users = 4
    max_rating = 5.0

    def __init__(self, n_items: int = 12, favourite: int = 3) -> None:
        self.n_items, self.favourite = n_items, favourite

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"user": rng.integers(0, self.n_logged_users, n)}

    def replace(self, state: dict[str, np.ndarray], mask: np.ndarray, rng: np.random.Generator) -> None:
        state["user"][mask] = rng.integers(0, self.n_logged_users, int(mask.sum()))

    def features(self, state: dict[str, np.ndarray]) -> np.ndarray:
        return np.ones((len(state["user"]), 2), dtype=np.float32)

    def user_index(self, state: dict[str, np.ndarray]) -> np.ndarray:
        return state["user"].astype(np.int64)

    def respond(self, state, slates: np.ndarray, valid: np.ndarray, rng: np.random.Generator):
        from recsim_env.protocols import Responses

        hit = (slates == self.favourite) & valid
        choice = np.where(hit.any(1), hit.argmax(1), -1).astype(np.int64)
        click = hit.astype(np.float32)
        return Responses(choice, click, click * 5.0, click, np.zeros_like(click))

    def update(self, state, slates, responses, rng) -> None:
        pass

    def left(self, state: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros(len(state["user"]), dtype=bool)


def one_item_vector_env(num_envs: int = 16, n_candidates: int = 6, slate_size: int = 2):
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv

    config = EnvConfig(slate_size=slate_size, n_candidates=n_candidates, history_length=3, step_cap=10)
    return RecVectorEnv(OneItemUsers(), None, config, num_envs=num_envs)


class Crash(Exception):
    """What a :func:`crashing` env raises: a killed process, for resume tests."""


def crashing(base: type) -> type:
    """A subclass of the vector env ``base`` that dies once ``crash_at`` user-steps have been taken
    (set ``crash_at`` on the subclass, e.g. with ``monkeypatch.setattr``)."""

    class Crashing(base):
        crash_at = 10**9

        def step(self, actions):
            self.taken = getattr(self, "taken", 0) + self.num_envs
            if self.taken > self.crash_at:
                raise Crash
            return super().step(actions)

    Crashing.__name__ = f"Crashing{base.__name__}"
    return Crashing


def mean_episode_return(env, policy, steps: int, seed: int = 11) -> float:
    """Mean return of the episodes a vector env's users finish in ``steps`` batched steps under ``policy``."""
    obs, _ = env.reset(seed=seed)
    total, episodes = np.zeros(env.num_envs), []
    for _ in range(steps):
        obs, reward, term, trunc, _ = env.step(policy.predict(obs)[0])
        total += reward
        episodes += list(total[term | trunc])
        total[term | trunc] = 0
    return float(np.mean(episodes))
