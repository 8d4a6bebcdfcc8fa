"""The SGD step budget: the schedule rule, the fit it leaves alone, the steps it takes, its validation."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from recsim_env.cli.main import main
from recsim_env.errors import ConfigError
from recsim_env.fit import datasets as fitting
from recsim_env.fit.config import FitConfig, _jsonable
from recsim_env.fit.learners import _train
from recsim_env.fit.leave import FORMAT_VERSION as LEAVE_FORMAT
from recsim_env.fit.pipeline import fit_user_model
from recsim_env.fit.returns import FORMAT_VERSION as RETURN_FORMAT
from recsim_env.users.fitted import FORMAT_VERSION as USER_MODEL_FORMAT


def test_within_the_budget_the_batch_and_learning_rate_are_the_configured_ones():
    assert FitConfig(sgd_step_budget=8192).sgd_schedule(72_000) == (1024, 0.01)  # ML-100K's head: 568 steps
    assert FitConfig(sgd_step_budget=8 * 71).sgd_schedule(71 * 1024) == (1024, 0.01)  # exactly at it
    assert FitConfig(sgd_step_budget=0).sgd_schedule(10**9) == (1024, 0.01)  # no budget


def test_above_the_budget_the_batch_grows_at_the_same_rate():
    # 409,600 rows x 8 epochs at 1,024 = 3,200 steps; a budget of 800 is 100 an epoch: batch 4,096.
    assert FitConfig(sgd_step_budget=800).sgd_schedule(409_600) == (4096, 0.01)
    # 7.24M rows under 8,192 steps: 1,024 an epoch, batch ceil(7.24M / 1,024); 8,191 steps: still 1,023 an epoch.
    assert FitConfig(sgd_step_budget=8192).sgd_schedule(7_240_000) == (7071, 0.01)
    assert FitConfig(sgd_step_budget=8191).sgd_schedule(7_240_000) == (7078, 0.01)
    assert FitConfig(sgd_step_budget=8192, lr=0.003).sgd_schedule(7_240_000) == (7071, 0.003)


def test_the_default_budget_leaves_ml100k_and_1m_logs_alone_and_bites_at_10m():
    default = FitConfig()
    assert default.sgd_step_budget == 8192
    assert default.sgd_schedule(72_000) == (1024, 0.01)  # ML-100K's head: 8 x 71 = 568 steps
    assert default.sgd_schedule(748_000) == (1024, 0.01)  # the 1M log's head: 8 x 731 = 5,848 steps
    assert default.sgd_schedule(1024 * 1024) == (1024, 0.01)  # 8 x 1,024 = 8,192: the last log within it
    assert default.sgd_schedule(1024 * 1024 + 1) == (1025, 0.01)  # one row more: the batch grows
    assert default.sgd_schedule(7_240_000) == (7071, 0.01)  # the 10M log's head: 8,192 steps


@pytest.mark.parametrize("n", [1, 999, 65_537, 409_601, 1_000_003, 7_240_000])
@pytest.mark.parametrize("budget", [8, 100, 8191])
def test_the_grown_batch_is_the_smallest_within_the_budget(n, budget):
    config = FitConfig(sgd_step_budget=budget)
    batch, _ = config.sgd_schedule(n)
    assert config.epochs * math.ceil(n / batch) <= budget or batch == config.batch_size
    if batch > config.batch_size:
        assert config.epochs * math.ceil(n / (batch - 1)) > budget


class _Counted(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))


def test_the_epoch_loop_takes_the_schedule_steps():
    rows = torch.arange(409_600, dtype=torch.float32)
    sizes: list[int] = []

    def step(model, batch, _gen):
        sizes.append(len(batch[0]))
        return (model.weight * batch[0].mean()).sum()

    model = _Counted()
    _train(model, (rows,), FitConfig(sgd_step_budget=800), step, "test")
    assert len(sizes) == 800 and set(sizes) == {4096}
    sizes.clear()
    _train(_Counted(), (rows[:1000],), FitConfig(sgd_step_budget=800), step, "test")  # within: 1 step an epoch
    assert sizes == [1000] * 8


def test_a_log_within_the_budget_fits_as_without_one(tiny_log, tiny_model):
    # the tiny log's head at batch 64 takes ~12 steps an epoch, 5 epochs: well within 100
    within = fit_user_model(tiny_log, FitConfig.fast(sgd_step_budget=100))
    for name, value in vars(tiny_model.arrays).items():
        np.testing.assert_array_equal(getattr(within.arrays, name), value, err_msg=name)
    assert within.dynamics == tiny_model.dynamics


def test_a_budget_that_bites_changes_the_fit(tiny_log, tiny_model):
    budgeted = fit_user_model(tiny_log, FitConfig.fast(sgd_step_budget=5))  # one step an epoch
    assert not np.array_equal(budgeted.arrays.user_pref, tiny_model.arrays.user_pref)
    assert not np.array_equal(budgeted.arrays.rating_item, tiny_model.arrays.rating_item)


def test_no_budget_keeps_the_cache_key_of_fits_before_it_and_a_budget_changes_it():
    fields = _jsonable(FitConfig(sgd_step_budget=0))
    del fields["item_vectors"], fields["sgd_step_budget"]  # the key's fields before the budget existed
    fields["formats"] = [USER_MODEL_FORMAT, LEAVE_FORMAT, RETURN_FORMAT]
    before = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
    assert fitting._config_key(FitConfig(sgd_step_budget=0)) == before
    # A budget is another fit of a log longer than it: the default's artifacts are cached under their own key.
    assert fitting._config_key(FitConfig()) != before
    assert fitting._config_key(FitConfig(sgd_step_budget=4096)) not in (before, fitting._config_key(FitConfig()))


@pytest.mark.parametrize("value", [-1, 3, 2.5, True, "8192", None])
def test_a_bad_budget_is_refused_naming_the_field(value):
    with pytest.raises(ConfigError, match="sgd_step_budget"):
        FitConfig(sgd_step_budget=value)


def test_the_budget_is_checked_against_the_epochs():
    # one step an epoch: the batch is the whole log
    assert FitConfig(epochs=2, sgd_step_budget=2).sgd_schedule(10_000) == (10_000, 0.01)
    with pytest.raises(ConfigError, match="sgd_step_budget.*>= epochs"):
        FitConfig(epochs=20, sgd_step_budget=10)


@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_recsim_fit_refuses_a_bad_budget_at_parse_time(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--sgd-step-budget", value])
    assert exit_info.value.code == 2
    assert "--sgd-step-budget" in capsys.readouterr().err
