"""Fixtures for the env tests: a small fake user model whose behaviour is easy to reason about."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from recsim_env.protocols import Responses
from recsim_env.users.choice import MultinomialLogit


@dataclass
class FakeState:
    user: np.ndarray
    patience: np.ndarray


class FakeUserModel:
    """Users like low item indices; each user lasts ``patience`` steps (a click buys one more).

    Utility of item i is ``-i / 10``; rating ``5 - i % 5``; dwell ``10 + i``.
    """

    n_items = 30
    n_user_features = 2
    n_logged_users = 5
    max_rating = 5.0

    def __init__(self, patience: int = 4) -> None:
        self.patience = patience
        self.choice = MultinomialLogit(no_click_utility=-0.5)

    def sample(self, n, rng):
        return FakeState(rng.integers(0, self.n_logged_users, n), np.full(n, self.patience))

    def replace(self, state, mask, rng):
        fresh = self.sample(int(mask.sum()), rng)
        state.user[mask], state.patience[mask] = fresh.user, fresh.patience

    def features(self, state):
        return np.column_stack([state.user, state.patience]).astype(np.float32)

    def user_index(self, state):
        return state.user

    def respond(self, state, slates, valid, rng):
        n, k = slates.shape
        choice = self.choice.sample(-slates / 10.0, valid, rng)
        click, rating, like, dwell = (np.zeros((n, k), dtype=np.float32) for _ in range(4))
        rows = np.flatnonzero(choice >= 0)
        item = slates[rows, choice[rows]]
        click[rows, choice[rows]] = 1
        rating[rows, choice[rows]] = 5 - item % 5
        like[rows, choice[rows]] = (5 - item % 5) >= 4
        dwell[rows, choice[rows]] = 10 + item
        return Responses(choice, click, rating, like, dwell)

    def update(self, state, slates, responses, rng):
        state.patience -= 1
        state.patience[responses.choice >= 0] += 1

    def left(self, state):
        return state.patience <= 0


@pytest.fixture
def fake_model() -> FakeUserModel:
    return FakeUserModel()


@pytest.fixture
def make_fake_model() -> type[FakeUserModel]:
    """The fake model's class, for tests that need another patience."""
    return FakeUserModel


@pytest.fixture(scope="module")
def synthetic_pair():
    """A small synthetic model and its catalog, for tests that need real choices and departures."""
    from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel

    model = SyntheticUserModel(SyntheticConfig(n_items=60, n_users=40, time_budget=15.0))
    return model, model.catalog()
