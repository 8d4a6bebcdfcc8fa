"""Named baselines: every name builds, unknown names are refused, ``plain`` drops the recency recipe."""

from __future__ import annotations

import pytest

from baselines.base import ScoringRecommender
from baselines.recipes import MODELS, build_model
from recsim_env.errors import ConfigError


@pytest.mark.parametrize("name", list(MODELS))
def test_every_name_builds_an_unfitted_model(name):
    model = build_model(name, seed=3)
    assert isinstance(model, ScoringRecommender) and not model.fitted


def test_plain_recipe_and_unknown_name():
    assert build_model("itemknn").config.recency_half_life is not None
    assert build_model("itemknn", plain=True).config.recency_half_life is None
    plain = build_model("neumf", plain=True).train_config
    assert plain.recency_half_life is None and plain.refit_epochs == 0
    assert build_model("neumf", plain=True).config.history == 0  # textbook: static user embedding
    tuned = build_model("neumf")
    assert tuned.config.history > 0 and tuned.train_config.lr > plain.lr
    with pytest.raises(ConfigError, match="unknown model 'svd'"):
        build_model("svd")
