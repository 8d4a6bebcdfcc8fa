"""A small, fully known slate env (native VectorEnv, SAME_STEP autoreset) and fake policies for tests.

Each user has one favourite item (``user_index % n_items``); they click a slate iff it shows that item
(reward 1, rating 5, like 1, dwell 30 s) and leave after ``2 + user_index % 4`` steps. Users and
candidates come from the reset seed's generator, as the contract asks.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from recsim_env.data.catalog import ItemCatalog

N_ITEMS, N_CANDIDATES, SLATE, N_USERS, N_GENRES = 12, 6, 2, 50, 3


def fake_catalog() -> ItemCatalog:
    genres = np.zeros((N_ITEMS, N_GENRES), dtype=np.float32)
    genres[np.arange(N_ITEMS), np.arange(N_ITEMS) % N_GENRES] = 1.0
    pop = np.arange(1, N_ITEMS + 1, dtype=np.float32)
    return ItemCatalog(item_ids=np.arange(N_ITEMS), titles=np.array([f"i{i}" for i in range(N_ITEMS)], dtype=object),
                       genres=genres, genre_names=tuple(f"g{g}" for g in range(N_GENRES)),
                       years=np.full(N_ITEMS, np.nan, dtype=np.float32), popularity=pop / pop.sum())


class FakeRecVectorEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.catalog = fake_catalog()
        self.single_observation_space = spaces.Dict({
            "user_index": spaces.Box(-1, N_USERS - 1, (1,), np.int64),
            "candidates": spaces.Box(0, N_ITEMS - 1, (N_CANDIDATES,), np.int64),
        })
        self.single_action_space = spaces.MultiDiscrete([N_CANDIDATES] * SLATE)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.rng = np.random.default_rng(0)
        self.resets = 0

    def _new_users(self, n: int) -> np.ndarray:
        return self.rng.integers(0, N_USERS, size=n)

    def _candidates(self, users: np.ndarray) -> np.ndarray:
        # The favourite is among the candidates half of the time.
        cands = np.stack([self.rng.choice(N_ITEMS, N_CANDIDATES, replace=False) for _ in users])
        put = self.rng.random(len(users)) < 0.5
        fav = users % N_ITEMS
        has = (cands == fav[:, None]).any(axis=1)
        cands[put & ~has, 0] = fav[put & ~has]
        return cands

    def _obs(self) -> dict[str, np.ndarray]:
        return {"user_index": self.users[:, None].copy(), "candidates": self.cands.copy()}

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.resets += 1
        self.users = self._new_users(self.num_envs)
        self.steps = np.zeros(self.num_envs, dtype=np.int64)
        self.cands = self._candidates(self.users)
        return self._obs(), {}

    def step(self, actions):
        actions = np.asarray(actions).reshape(self.num_envs, SLATE)
        slates = np.take_along_axis(self.cands, actions, axis=1)
        hit = slates == (self.users % N_ITEMS)[:, None]
        click = hit.astype(np.float32)
        responses = {"click": click, "like": click, "rating": 5 * click, "dwell": 30 * click}
        reward = click.sum(axis=1).astype(np.float64)
        self.steps += 1
        truncated = self.steps >= 2 + self.users % 4
        terminated = np.zeros(self.num_envs, dtype=bool)
        info = dict(responses)
        if truncated.any():
            info["final_info"] = {**{k: v.copy() for k, v in responses.items()},
                                  **{f"_{k}": truncated.copy() for k in responses}}
            info["_final_info"] = truncated.copy()
            self.users[truncated] = self._new_users(int(truncated.sum()))
            self.steps[truncated] = 0
            # A replaced slot's live info is its reset info: no responses.
            for k in responses:
                info[k][truncated] = 0.0
        self.cands = self._candidates(self.users)
        return self._obs(), reward, terminated, truncated, info


class OraclePolicy:
    """Puts the user's favourite first when it is a candidate (needs the user index)."""

    def __init__(self) -> None:
        self.seen_users: list[np.ndarray] = []

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        users = observation["user_index"][:, 0]
        if episode_start is not None and np.all(episode_start):
            self.seen_users.append(users.copy())
        fav = (observation["candidates"] == (users % N_ITEMS)[:, None])
        first = np.where(fav.any(axis=1), fav.argmax(axis=1), 0)
        second = np.where(first == 0, 1, 0)
        return np.stack([first, second], axis=1), state


class FirstSlotsPolicy(OraclePolicy):
    """Always shows candidates 0 and 1."""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if episode_start is not None and np.all(episode_start):
            self.seen_users.append(observation["user_index"][:, 0].copy())
        n = observation["candidates"].shape[0]
        return np.tile(np.arange(SLATE), (n, 1)), state


class ExplodingPolicy(FirstSlotsPolicy):
    """Raises KeyboardInterrupt (as Ctrl-C would) once ``calls`` predictions were made, across instances."""

    budget = {"calls": 10**9}

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        self.budget["calls"] -= 1
        if self.budget["calls"] < 0:
            raise KeyboardInterrupt
        return super().predict(observation, state, episode_start, deterministic)
