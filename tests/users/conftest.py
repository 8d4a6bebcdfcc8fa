"""A user model fitted once on the tiny log, shared by the user-model tests (a fit takes seconds)."""

from __future__ import annotations

import pytest

from recsim_env.fit.pipeline import FitConfig, fit_user_model
from recsim_env.users.fitted import FittedUserModel


@pytest.fixture(scope="session")
def tiny_model(tiny_log) -> FittedUserModel:
    return fit_user_model(tiny_log, FitConfig.fast())
