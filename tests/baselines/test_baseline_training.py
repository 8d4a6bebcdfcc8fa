"""The shared epoch loop: negatives, recency weights, early stopping, restore, TensorBoard, seeding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from baselines.mf import BPRMF, MFConfig, MFModule
from baselines.training import (
    LoopConfig,
    NegativeSampler,
    recency_weights,
    train_module,
)
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import ConfigError

FAST = LoopConfig(epochs=6, batch_size=64, lr=1e-2, weight_decay=0.0, refit_epochs=0, recency_half_life=None)


@pytest.mark.parametrize("bitmap_limit", [10**9, 0])
def test_negative_sampler_never_returns_a_training_item(bitmap_limit):
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(5), 8)
    items = np.concatenate([rng.choice(10, 8, replace=False) for _ in range(5)])
    sampler = NegativeSampler(users, items, 5, 10, bitmap_limit=bitmap_limit)
    negs = sampler.sample(users, 6, rng)
    seen = {(u, i) for u, i in zip(users, items)}
    assert negs.shape == (40, 6)
    assert not any((u, n) in seen for u, row in zip(users, negs) for n in row)


def test_recency_weights_halve_per_half_life_and_average_one():
    w = recency_weights(np.array([0, 0, 0, 1]), half_life=1.0)
    assert w[2] == pytest.approx(2 * w[1]) and w[1] == pytest.approx(2 * w[0])
    assert w[3] == pytest.approx(w[2]) and w.mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(recency_weights(np.array([0, 1]), None), [1.0, 1.0])


@pytest.mark.parametrize("field,value", [("epochs", 0), ("lr", 0.0), ("n_negatives", 0), ("recency_half_life", -1.0),
                                         ("refit_epochs", -1), ("max_seconds", 0.0)])
def test_train_config_rejects_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        replace(LoopConfig(), **{field: value})


def test_early_stopping_restores_the_best_epoch_and_logs_tensorboard(tiny_log, tmp_path):
    split = leave_one_out(tiny_log)
    model = BPRMF(MFConfig(dim=8), replace(FAST, epochs=12, patience=1, log_dir=str(tmp_path / "tb"))).fit(split)
    report = model.report
    ndcgs = [row["ndcg@10"] for row in report.history]
    assert report.best_ndcg == max(ndcgs) and report.best_epoch == int(np.argmax(ndcgs)) + 1
    assert report.epochs <= 12 and report.seconds_to_best <= report.seconds
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_same_seed_same_weights_other_seed_other_weights(tiny_log):
    split = leave_one_out(tiny_log)
    a = BPRMF(MFConfig(dim=8), FAST).fit(split)
    b = BPRMF(MFConfig(dim=8), FAST).fit(split)
    c = BPRMF(MFConfig(dim=8), replace(FAST, seed=5)).fit(split)
    np.testing.assert_array_equal(a.module.item.weight.detach(), b.module.item.weight.detach())
    assert not torch.equal(a.module.item.weight, c.module.item.weight)


def test_refit_epochs_add_validation_items_to_seen(tiny_log):
    split = leave_one_out(tiny_log)
    model = BPRMF(MFConfig(dim=8), replace(FAST, refit_epochs=1)).fit(split)
    valid_item = int(split.valid.interactions["item"].iloc[0])
    assert valid_item in model.seen(int(split.valid.interactions["user"].iloc[0])).tolist()
    assert model.report.epochs == len(model.report.history) + 1


def test_training_without_validation_runs_every_epoch(tiny_log):
    module = MFModule(tiny_log.n_users, tiny_log.n_items, 4, 0.1)
    report = train_module(module, "bpr", tiny_log, None, replace(FAST, epochs=3), "mf")
    assert report.epochs == 3 and np.isnan(report.best_ndcg)
    with pytest.raises(ConfigError, match="loss"):
        train_module(module, "hinge", tiny_log, None, FAST)
