import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `scripts`

from recsim_env.env.config import EnvConfig  # noqa: E402
from recsim_env.env.lifetime import LifetimeVectorEnv  # noqa: E402
from recsim_env.fit.returns import UNBOUNDED, ReturnModel  # noqa: E402
from recsim_env.users.synthetic import ReturningSyntheticUserModel  # noqa: E402
from scripts import diagnose_lifetime_runaway as runaway  # noqa: E402


def test_every_row_plays_one_whole_lifetime_counted_from_its_first_session() -> None:
    model = ReturningSyntheticUserModel()
    env = LifetimeVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10),
                            lifetime={"horizon": 5.0}, num_envs=16)
    sessions, steps = runaway.lifetimes(env, seed=0)
    assert sessions.shape == steps.shape == (16,)
    assert (sessions >= 1).all() and (steps >= sessions).all()  # every session has at least one step
    assert sessions.max() > 1  # synthetic users come back within 5 days
    again = runaway.lifetimes(env, seed=0)
    np.testing.assert_array_equal(again[0], sessions)
    np.testing.assert_array_equal(again[1], steps)


def test_unbounded_removes_only_the_clamp() -> None:
    clamped = ReturnModel.from_raw(1.0, {"log1p_length": 0.5}, 0.8)
    clamped = dataclasses.replace(clamped, covariate_low=np.zeros(len(clamped.covariate_names)),
                                  covariate_high=np.ones(len(clamped.covariate_names)))
    free = runaway.unbounded(clamped)
    assert (free.covariate_low == -UNBOUNDED).all() and (free.covariate_high == UNBOUNDED).all()
    np.testing.assert_array_equal(free.coefficients, clamped.coefficients)
    assert (free.intercept, free.distribution) == (clamped.intercept, clamped.distribution)
