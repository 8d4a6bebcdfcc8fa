"""A returning user model whose sessions and gaps are fixed, so lifetime episodes can be worked out by hand."""

from __future__ import annotations

import numpy as np

from recsim_env.protocols import Responses


class FixedReturns:
    """Users who click slot 0 of every slate (rating 5), leave after ``session_steps`` steps, and come back
    after ``gaps[s % len(gaps)]`` days, ``s`` the index of the session that just ended."""

    n_items = 30
    n_user_features = 1
    n_logged_users = 5
    max_rating = 5.0

    def __init__(self, session_steps: int = 3, gaps: tuple[float, ...] = (2.0,)) -> None:
        self.session_steps = session_steps
        self.gaps = np.asarray(gaps, dtype=np.float64)
        self.started: list[tuple[np.ndarray, np.ndarray]] = []

    def sample(self, n, rng):
        return {"user": rng.integers(0, self.n_logged_users, n), "steps_left": np.full(n, self.session_steps),
                "session": np.zeros(n, dtype=np.int64)}

    def replace(self, state, mask, rng):
        fresh = self.sample(int(mask.sum()), rng)
        for key, value in fresh.items():
            state[key][mask] = value

    def features(self, state):
        return state["session"].astype(np.float32)[:, None]

    def user_index(self, state):
        return state["user"]

    def respond(self, state, slates, valid, rng):
        n, k = slates.shape
        click, rating, like, dwell = (np.zeros((n, k), dtype=np.float32) for _ in range(4))
        click[:, 0] = 1.0
        rating[:, 0] = 5.0
        like[:, 0] = 1.0
        dwell[:, 0] = 1.0
        return Responses(np.zeros(n, dtype=np.int64), click, rating, like, dwell)

    def update(self, state, slates, responses, rng):
        state["steps_left"] -= 1

    def left(self, state):
        return state["steps_left"] <= 0

    def return_gaps(self, state, rows, rng):
        return self.gaps[state["session"][rows] % len(self.gaps)]

    def start_session(self, state, rows, days_elapsed, rng):
        self.started.append((np.array(rows), np.array(days_elapsed)))
        state["steps_left"][rows] = self.session_steps
        state["session"][rows] += 1


class SessionsOnly(FixedReturns):
    """The same users without the lifetime half of the protocol: not a ReturningUserModel."""

    return_gaps = None  # type: ignore[assignment]
    start_session = None  # type: ignore[assignment]
