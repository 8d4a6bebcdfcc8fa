"""``max_rating`` is part of the ``UserModel`` protocol: every model states its rating scale, and the env
reads it from there (context[3] is the last rating over it) instead of guessing 5 for a model that is silent."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_env.env.config import EnvConfig
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.protocols import UserModel
from recsim_env.users.adapter import PerUserAdapter, UserResponse
from recsim_env.users.synthetic import SyntheticUserModel

CONFIG = EnvConfig(slate_size=2, n_candidates=5, history_length=2, step_cap=6)


class RatesFour:
    n_items = 8
    n_user_features = 1

    def reset(self, rng):
        self.steps = 0

    def features(self):
        return np.zeros(1, dtype=np.float32)

    def respond(self, slate, valid, rng):
        return UserResponse(choice=0, rating=4.0)

    def update(self, slate, response, rng):
        self.steps += 1

    def left(self):
        return self.steps >= 3


class RatesFourOutOfTen(RatesFour):
    max_rating = 10.0


def last_rating_seen(model: UserModel) -> float:
    venv = RecVectorEnv(model, None, CONFIG, num_envs=2)
    venv.reset(seed=0)
    obs = venv.step(np.tile(np.arange(2), (2, 1)))[0]
    return float(obs["context"][0, 3])


def without_max_rating(model_class: type) -> type:
    """A copy of ``model_class`` that lacks ``max_rating`` (a model written before it joined the protocol)."""
    members = {k: v for k, v in vars(model_class).items() if k != "max_rating" and not k.startswith("__")}
    return type("Silent", (), {**members, "__init__": model_class.__init__})


def test_max_rating_is_in_the_protocol(make_fake_model: type) -> None:
    assert isinstance(make_fake_model(), UserModel)
    assert not isinstance(without_max_rating(make_fake_model)(), UserModel)


def test_every_shipped_model_states_its_scale(tiny_model) -> None:
    assert SyntheticUserModel().max_rating == 5.0
    assert tiny_model.max_rating == tiny_model.scales.rating_max
    assert PerUserAdapter(RatesFour).max_rating == 5.0  # the adapter's default: MovieLens' 1-5 stars
    assert PerUserAdapter(RatesFourOutOfTen).max_rating == 10.0  # the single user's own
    assert PerUserAdapter(RatesFour, max_rating=4.0).max_rating == 4.0  # the argument wins
    for model in (SyntheticUserModel(), tiny_model, PerUserAdapter(RatesFour)):
        assert isinstance(model, UserModel)


def test_the_env_observes_the_rating_over_the_models_scale() -> None:
    assert last_rating_seen(PerUserAdapter(RatesFour)) == pytest.approx(0.8)
    assert last_rating_seen(PerUserAdapter(RatesFourOutOfTen)) == pytest.approx(0.4)
    assert last_rating_seen(PerUserAdapter(RatesFour, max_rating=4.0)) == pytest.approx(1.0)


def test_a_model_without_a_usable_scale_is_a_config_error(make_fake_model: type) -> None:
    with pytest.raises(ConfigError, match="Silent has no max_rating, the UserModel protocol's top of the rating"):
        RecVectorEnv(without_max_rating(make_fake_model)(), None, CONFIG, num_envs=2)
    for bad in (0.0, -1.0, float("nan"), "five"):
        model = make_fake_model()
        model.max_rating = bad
        with pytest.raises(ConfigError, match=r"FakeUserModel.max_rating must be a finite number > 0, got"):
            RecVectorEnv(model, None, CONFIG, num_envs=2)
