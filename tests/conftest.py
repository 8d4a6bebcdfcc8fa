"""Shared fixtures: a seeded generator and a tiny synthetic log with structure a model can learn."""

from __future__ import annotations

import numpy as np
import pytest
from tinylog import make_tiny_log

from recsim_env.data.log import InteractionLog


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def tiny_log() -> InteractionLog:
    return make_tiny_log()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Small models on a shared 2-core machine run fastest, and deterministically, on one thread."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tiny_log):
    """A user model fitted once on the tiny log, shared by the fit and user-model tests (a fit takes seconds)."""
    from recsim_env.fit.config import FitConfig
    from recsim_env.fit.pipeline import fit_user_model

    return fit_user_model(tiny_log, FitConfig.fast())
