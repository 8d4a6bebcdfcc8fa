"""A uniform replay buffer for slate transitions, filled a whole batch of users at a time."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class Transition(NamedTuple):
    """Slate transitions of a batch of users (one env step, or a replay minibatch)."""

    obs: dict[str, np.ndarray]
    slate: np.ndarray
    """``(b, k)`` int64 candidate positions shown, in display order."""
    choice: np.ndarray
    """``(b,)`` int64 slot the user picked, ``-1`` for no click."""
    reward: np.ndarray
    """``(b,)`` float32."""
    next_obs: dict[str, np.ndarray]
    """The state the step led to: the departing user's final observation where an episode ended."""
    terminated: np.ndarray
    """``(b,)``: 1 where the user left (no bootstrap); a step cap is not a termination."""
    truncated: np.ndarray | None = None
    """``(b,)``: 1 where the step cap cut the episode (None in replay minibatches, which need only
    ``terminated``)."""
    horizon: np.ndarray | None = None
    """``(b,)`` int64 steps from ``obs`` to ``next_obs`` (:class:`NStepReturns`; ``reward`` is then
    their discounted sum); None: one step."""
    gap_days: np.ndarray | None = None
    """``(b,)`` float days the user was away between ``obs`` and ``next_obs``: a lifetime env's gap
    where the step ended a session and the user came back (its ``info["gap_days"]``), 0 within a
    session; None: the env has no clock (or a replay minibatch stored without one)."""


SlateBatch = Transition
"""A replay minibatch (``truncated`` is None)."""


def _compact(dtype: np.dtype) -> np.dtype:
    # Item / user / slot indices fit in int32: half the memory (and checkpoint size) of int64.
    return np.dtype(np.int32) if dtype == np.int64 else dtype


class ReplayBuffer:
    """Fixed-capacity ring buffer; storage is allocated on the first :meth:`add` from its shapes.

    :param capacity: transitions kept; the oldest are overwritten.
    :param rng: the generator that draws minibatch indices (checkpointed by the owner).
    """

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.rng = rng
        self.size = 0
        self.cursor = 0
        self._store: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self.size

    def add(self, obs: dict[str, np.ndarray], slate: np.ndarray, choice: np.ndarray, reward: np.ndarray,
            next_obs: dict[str, np.ndarray], terminated: np.ndarray, horizon: np.ndarray | None = None,
            gap_days: np.ndarray | None = None) -> None:
        """Append ``n`` transitions (one per user of a batched step); ``horizon``: their steps to
        ``next_obs`` (1 where None); ``gap_days`` (:attr:`Transition.gap_days`): stored when given,
        and then to be given on every call, as the store's fields are fixed by the first."""
        if horizon is None:
            horizon = np.ones(len(reward), dtype=np.int64)
        fields = {"slate": slate, "choice": choice, "reward": reward, "terminated": terminated, "horizon": horizon}
        if gap_days is not None:
            fields["gap_days"] = np.asarray(gap_days, dtype=np.float32)
        if self._store is not None and ("gap_days" in self._store) != (gap_days is not None):
            raise ValueError(f"ReplayBuffer.add: gap_days given: {gap_days is not None}, but the buffer "
                             f"{'stores' if 'gap_days' in self._store else 'does not store'} them")
        fields.update({f"obs/{k}": v for k, v in obs.items()})
        fields.update({f"next_obs/{k}": v for k, v in next_obs.items()})
        if self._store is None:
            self._store = {k: np.zeros((self.capacity,) + np.shape(v)[1:], dtype=_compact(np.asarray(v).dtype))
                           for k, v in fields.items()}
        n = len(reward)
        idx = (self.cursor + np.arange(n)) % self.capacity
        for key, value in fields.items():
            self._store[key][idx] = value
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample(self, batch_size: int) -> SlateBatch:
        if self._store is None or self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        return self.gather(self.rng.integers(0, self.size, size=batch_size))

    def gather(self, idx: np.ndarray) -> SlateBatch:
        store = {k: (v[idx].astype(np.int64) if v.dtype == np.int32 else v[idx]) for k, v in self._store.items()}
        obs = {k[4:]: v for k, v in store.items() if k.startswith("obs/")}
        next_obs = {k[9:]: v for k, v in store.items() if k.startswith("next_obs/")}
        return SlateBatch(obs, store["slate"], store["choice"], store["reward"].astype(np.float32), next_obs,
                          store["terminated"].astype(np.float32), horizon=store["horizon"],
                          gap_days=store.get("gap_days"))

    def state_dict(self) -> dict[str, Any]:
        store = None if self._store is None else {k: v[: self.size].copy() for k, v in self._store.items()}
        return {"capacity": self.capacity, "size": self.size, "cursor": self.cursor, "store": store}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity = state["capacity"]
        self.size = state["size"]
        self.cursor = state["cursor"]
        if state["store"] is None:
            self._store = None
            return
        self._store = {}
        for key, value in state["store"].items():
            full = np.zeros((self.capacity,) + value.shape[1:], dtype=value.dtype)
            full[: len(value)] = value
            self._store[key] = full


class NStepReturns:
    """Turns each env slot's one-step transitions into ``n``-step ones: the reward becomes
    ``r_t + γ r_{t+1} + … + γ^{m-1} r_{t+m-1}`` and ``next_obs`` the state ``m`` steps on, with
    ``m = n``, or fewer where the user's episode ended first (``terminated`` then says whether it
    bootstraps). The click of step ``t`` stays step ``t``'s: each step's (obs, slate, choice) still
    reaches the buffer once, ``n - 1`` steps late at most.

    :param n: steps summed before bootstrapping (``>= 2``; one step needs no accumulator).
    :param gamma: discount per step.
    """

    def __init__(self, n: int, gamma: float) -> None:
        if n < 2:
            raise ValueError(f"n must be >= 2, got {n}")
        self.n, self.gamma = n, gamma
        self.open: list[dict[str, Any]] = []
        """Steps still summing rewards, oldest first: obs, slate, choice, ret and the still-open rows."""

    def add(self, t: Transition) -> list[Transition]:
        """Take one batched step; return the transitions it completes (one per starting step)."""
        done = np.logical_or(t.terminated, t.truncated) if t.truncated is not None else np.asarray(t.terminated, bool)
        self.open.append({"obs": t.obs, "slate": t.slate, "choice": t.choice,
                          "ret": np.zeros(len(t.reward), np.float32), "rows": np.ones(len(t.reward), bool)})
        finished = []
        for age, start in enumerate(reversed(self.open)):
            start["ret"] = start["ret"] + np.float32(self.gamma**age) * np.where(start["rows"], t.reward, 0).astype(
                np.float32)
            close = start["rows"] & (done | (age == self.n - 1))
            if close.any():
                finished.append(Transition({k: v[close] for k, v in start["obs"].items()}, start["slate"][close],
                                           start["choice"][close], start["ret"][close],
                                           {k: v[close] for k, v in t.next_obs.items()},
                                           np.asarray(t.terminated)[close], None,
                                           np.full(int(close.sum()), age + 1, np.int64)))
                start["rows"] = start["rows"] & ~close
        self.open = [start for start in self.open if start["rows"].any()]
        return finished

    def discard(self) -> int:
        """Forget the open steps (their users are gone); returns how many."""
        dropped = sum(int(start["rows"].sum()) for start in self.open)
        self.open = []
        return dropped

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "gamma": self.gamma, "open": self.open}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n, self.gamma = state["n"], state["gamma"]
        self.open = [dict(start) for start in state["open"]]  # add() replaces entries, never writes into them


class Episodes(NamedTuple):
    """Steps of finished episodes with their discounted returns-to-go."""

    obs: dict[str, np.ndarray]
    slate: np.ndarray
    choice: np.ndarray
    reward: np.ndarray
    ret: np.ndarray
    """``Σ_{t'≥t} γ^{t'-t} r_{t'}`` within the episode."""

    def __len__(self) -> int:
        return len(self.ret)

    def take(self, idx: np.ndarray) -> "Episodes":
        return Episodes({k: v[idx] for k, v in self.obs.items()}, self.slate[idx], self.choice[idx],
                        self.reward[idx], self.ret[idx])


class EpisodeReturns:
    """Keeps each user's steps until their episode ends (REINFORCE needs whole-episode returns),
    then releases them with returns-to-go; a batch of users is added per step.

    :param n: users stepped together.
    :param gamma: discount.
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.gamma = gamma
        self.pending: list[list[tuple[dict[str, np.ndarray], np.ndarray, int, float]]] = [[] for _ in range(n)]
        self.ready: list[tuple[dict[str, np.ndarray], np.ndarray, int, float, float]] = []

    def add(self, obs: dict[str, np.ndarray], slate: np.ndarray, choice: np.ndarray, reward: np.ndarray,
            done: np.ndarray) -> None:
        for u in range(len(reward)):
            self.pending[u].append(({k: v[u] for k, v in obs.items()}, slate[u], int(choice[u]), float(reward[u])))
            if done[u]:
                self._finish(u)

    def _finish(self, u: int) -> None:
        ret = 0.0
        rows = []
        for obs, slate, choice, reward in reversed(self.pending[u]):
            ret = reward + self.gamma * ret
            rows.append((obs, slate, choice, reward, ret))
        self.ready.extend(reversed(rows))
        self.pending[u] = []

    def __len__(self) -> int:
        return len(self.ready)

    def pop(self) -> Episodes:
        rows, self.ready = self.ready, []
        obs = {k: np.stack([r[0][k] for r in rows]) for k in rows[0][0]}
        return Episodes(
            obs,
            np.stack([r[1] for r in rows]),
            np.array([r[2] for r in rows], dtype=np.int64),
            np.array([r[3] for r in rows], dtype=np.float32),
            np.array([r[4] for r in rows], dtype=np.float32),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "pending": self.pending, "ready": self.ready}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gamma = state["gamma"]
        self.pending = state["pending"]
        self.ready = state["ready"]
