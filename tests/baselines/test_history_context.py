"""Recency-weighted histories (baselines.history) and the history-aware NCF that uses them: hand-computed
windows and weights, causality in training and scoring, and the env acting rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from recommender_suite import observation

from baselines.base import merge_validation
from baselines.history import causal_histories, latest_histories, observation_histories
from baselines.ncf import GMF, NCFConfig, NCFModule, NeuMF
from baselines.training import LoopConfig
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import ConfigError

FAST = LoopConfig(epochs=4, batch_size=64, lr=1e-2, weight_decay=0.0, patience=3, refit_epochs=1,
                   recency_half_life=None)
SMALL = NCFConfig(dim=8, layers=(16, 8), history=4, history_halflife=1.0)


def test_causal_histories_see_only_earlier_items_of_the_same_user():
    users = np.array([0, 0, 0, 1, 1])
    items = np.array([5, 6, 7, 8, 9])
    idx, w = causal_histories(users, items, length=2, halflife=1.0)
    np.testing.assert_array_equal(idx, [[0, 0], [0, 5], [5, 6], [0, 0], [0, 8]])
    # Most recent item weighs 1, the one before 1/2 (halflife 1), normalised to sum 1; none: all 0.
    np.testing.assert_allclose(w, [[0, 0], [0, 1], [1 / 3, 2 / 3], [0, 0], [0, 1]], rtol=1e-6)


def test_latest_histories_per_user_including_users_without_items():
    users = np.array([0, 0, 0, 2])
    items = np.array([5, 6, 7, 9])
    idx, w = latest_histories(users, items, n_users=3, length=2, halflife=2.0)
    np.testing.assert_array_equal(idx, [[6, 7], [0, 0], [0, 9]])
    np.testing.assert_allclose(w[0], np.array([2 ** -0.5, 1.0]) / (1 + 2 ** -0.5), rtol=1e-6)
    assert w[1].sum() == 0 and w[2].tolist() == [0.0, 1.0]


def test_observation_histories_pad_short_rows_and_ignore_unknown_items():
    idx, w = observation_histories(np.array([[-1, 3, 99], [1, 2, 3]]), n_items=10, length=4, halflife=1.0)
    np.testing.assert_array_equal(idx, [[0, 0, 3, 0], [0, 1, 2, 3]])
    assert w[0].tolist() == [0.0, 0.0, 1.0, 0.0]  # item 99 is outside the catalogue: no weight
    np.testing.assert_allclose(w[1], np.array([0, 0.25, 0.5, 1.0]) / 1.75, rtol=1e-6)


@pytest.mark.parametrize("field,value", [("history", -1), ("history_halflife", 0.0), ("pretrain_epochs", 0)])
def test_ncf_config_rejects_bad_history(field, value):
    with pytest.raises(ConfigError, match=field):
        NCFConfig(**{field: value})


def test_training_pairs_get_causal_histories_and_scoring_ends_before_the_test(tiny_log, monkeypatch):
    split = leave_one_out(tiny_log)
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    forward = NCFModule.forward

    def spy(self, users, items, history=None, known=None):
        if history is not None:
            seen.append((users.numpy(), items[:, 0].numpy(), history[0].numpy(), history[1].numpy()))
        return forward(self, users, items, history, known)

    monkeypatch.setattr(NCFModule, "forward", spy)
    model = GMF(SMALL, FAST).fit(split)
    assert seen, "training passed no histories"
    merged = merge_validation(split).interactions
    for users, pos, idx, w in seen[:20]:
        for u, p, row, weights in zip(users, pos, idx, w):
            seq = merged.loc[merged["user"] == u, "item"].to_numpy()
            before = seq[: int(np.flatnonzero(seq == p)[0])]
            assert set(row[weights > 0].tolist()) <= set(before[-SMALL.history:].tolist())
    # After the refit each user's scoring history is their last training + validation items.
    idx, w = latest_histories(merged["user"].to_numpy(), merged["item"].to_numpy(), tiny_log.n_users,
                              SMALL.history, SMALL.history_halflife)
    np.testing.assert_array_equal(model.module.user_history.numpy(), idx)
    np.testing.assert_array_equal(model.module.user_history_weights.numpy(), w)


@pytest.fixture(scope="module")
def neumf(tiny_log_module):
    return NeuMF(SMALL, FAST).fit(leave_one_out(tiny_log_module))


@pytest.fixture(scope="module")
def tiny_log_module():
    from tinylog import make_tiny_log

    return make_tiny_log()


def test_acting_appends_session_clicks_to_the_logged_history(neumf):
    cands = np.tile(np.arange(10), (4, 1))
    history = np.full((4, 3), -1)
    history[1, 1:] = [4, 7]
    history[3, 1:] = [4, 7]
    scores = neumf.score_observation(observation(cands, np.array([0, 0, -1, -1]), history))
    np.testing.assert_allclose(scores[0], neumf.score([0], cands[0])[0], rtol=1e-5)  # no clicks yet: score()
    assert not np.allclose(scores[1], scores[0])  # the session's clicks move the user
    np.testing.assert_array_equal(scores[2], neumf.counts[:10])  # cold and nothing clicked: popularity
    assert not np.allclose(scores[3], neumf.counts[:10])  # cold with clicks: scored from them
    # The clicks are appended after the logged history: the same as training history + clicks by hand.
    logged = neumf.module.user_history[0][neumf.module.user_history_weights[0] > 0].numpy()
    context = np.concatenate([logged, [4, 7]])[-SMALL.history:]
    idx, w = observation_histories(context[None], neumf.n_items, SMALL.history, SMALL.history_halflife)
    with torch.no_grad():
        by_hand = neumf.module(
            torch.tensor([0]), torch.as_tensor(cands[:1]), (torch.as_tensor(idx), torch.as_tensor(w))
        )
    np.testing.assert_allclose(scores[1], by_hand.numpy()[0], rtol=1e-5)


def test_textbook_ncf_ignores_history(tiny_log_module):
    plain = NeuMF(replace(SMALL, history=0), FAST).fit(leave_one_out(tiny_log_module))
    assert not hasattr(plain.module, "user_history")
    cands = np.tile(np.arange(10), (2, 1))
    history = np.array([[-1, -1], [4, 7]])
    scores = plain.score_observation(observation(cands, np.array([0, 0]), history))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_neumf_pretraining_is_capped_at_pretrain_epochs(tiny_log_module):
    model = NeuMF(replace(SMALL, pretrain_epochs=2), replace(FAST, patience=10)).fit(leave_one_out(tiny_log_module))
    assert [r.epochs for r in model.pretrain_reports] == [2, 2]
    assert model.report.epochs == FAST.epochs + FAST.refit_epochs  # the fine-tuning keeps its own budget
