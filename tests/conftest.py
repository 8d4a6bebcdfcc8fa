"""Shared fixtures: a seeded generator and a tiny synthetic log with structure a model can learn."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_env.data.log import InteractionLog
from tinylog import make_tiny_log

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
