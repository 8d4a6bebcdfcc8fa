"""Long-term metrics: hand-computed lifetimes through evaluate, the pooled interval by hand, session envs untouched."""

from __future__ import annotations

import numpy as np
import pytest
from returning_fakes import FixedReturns

from recsim_env.env.config import EnvConfig
from recsim_env.env.lifetime import LifetimeConfig, LifetimeEnv, LifetimeVectorEnv
from recsim_env.env.vector import RecVectorEnv
from recsim_env.evaluation import longterm
from recsim_env.evaluation.rollout import evaluate

CONFIG = EnvConfig(slate_size=3, n_candidates=10)


class FirstSlots:
    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return np.tile(np.arange(3), (len(observation["candidates"]), 1)), None


def _summary(gaps, horizon=9.0, n_envs=4, n_episodes=4, seed=0):
    env = LifetimeVectorEnv(FixedReturns(session_steps=3, gaps=gaps), config=CONFIG,
                            lifetime=LifetimeConfig(horizon=horizon, step_minutes=0.0), num_envs=n_envs)
    stats = evaluate(FirstSlots(), env, n_episodes=n_episodes, seed=seed)
    return stats, stats.summary().set_index("metric")


def test_lifetimes_worked_out_by_hand():
    # Sessions start on days 0, 2, 4, 6, 8; the fifth's gap (2 days, drawn) runs past day 9.
    stats, summary = _summary((2.0,))
    assert summary.loc["sessions_per_user", "mean"] == 5 and summary.loc["lifetime_clicks", "mean"] == 15
    assert summary.loc["return_rate_7d", "mean"] == 1.0 and summary.loc["days_to_return", "mean"] == 2.0
    assert summary.loc["session_length", "mean"] == 15 and len(stats.episodes) == 4
    # Day 0, then day 3; the second gap (10 days) is no return within 7 days and runs past the horizon.
    _, summary = _summary((3.0, 10.0))
    assert summary.loc["sessions_per_user", "mean"] == 2 and summary.loc["return_rate_7d", "mean"] == 0.5
    assert summary.loc["days_to_return", "mean"] == 6.5
    # Users who never come back: one session, no return, no finite gap to average.
    _, summary = _summary((np.inf,))
    assert summary.loc["sessions_per_user", "mean"] == 1 and summary.loc["return_rate_7d", "mean"] == 0.0
    assert np.isnan(summary.loc["days_to_return", "mean"]) and summary.loc["days_to_return", "n"] == 4


def test_a_single_lifetime_env_gives_the_same_metrics():
    env = LifetimeEnv(FixedReturns(3, gaps=(3.0, 10.0)), config=CONFIG, lifetime=LifetimeConfig(horizon=9.0,
                                                                                                  step_minutes=0.0))
    summary = evaluate(FirstSlots(), env, n_episodes=2, seed=0).summary().set_index("metric")
    assert summary.loc["return_rate_7d", "mean"] == 0.5 and summary.loc["sessions_per_user", "mean"] == 2


def test_pooled_share_and_its_delta_interval_by_hand():
    returns = np.array([3.0, 0.0, 2.0, 1.0])
    sessions = np.array([4.0, 1.0, 2.0, 3.0])
    ratio, low, high, clusters = longterm.ratio_interval(returns, sessions, 0.95)
    assert ratio == 0.6 and clusters == 4  # 6 of 10 sessions, not the mean of the users' shares (0.521)
    residual = returns - 0.6 * sessions  # [0.6, -0.6, 0.8, -0.8]
    standard_error = np.sqrt(4 / 3 * (residual ** 2).sum()) / 10
    assert high - ratio == pytest.approx(3.182446 * standard_error, rel=1e-6)  # t(0.975, 3 d.o.f.)
    assert ratio - low == pytest.approx(high - ratio)


def test_intervals_cover_the_mean_and_stay_in_range_over_seeds():
    from recsim_env.users.synthetic import ReturningSyntheticUserModel, SyntheticConfig

    model = ReturningSyntheticUserModel(SyntheticConfig(n_items=60, n_users=40))
    env = LifetimeVectorEnv(model, model.catalog(), CONFIG, LifetimeConfig(horizon=10.0), num_envs=16)
    one = evaluate(FirstSlots(), env, n_episodes=16, seed=0).summary().set_index("metric")
    several = evaluate(FirstSlots(), env, n_episodes=16, seed=[0, 1, 2]).summary().set_index("metric")
    for summary, n in ((one, 16), (several, 3)):
        for metric in longterm.LONGTERM_METRICS:
            row = summary.loc[metric]
            assert row["ci_low"] <= row["mean"] <= row["ci_high"] and row["n"] == n, metric
        assert 0.0 <= summary.loc["return_rate_7d", "ci_low"] and summary.loc["return_rate_7d", "ci_high"] <= 1.0


def test_session_envs_report_no_long_term_metrics():
    from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel

    model = SyntheticUserModel(SyntheticConfig(n_items=60, n_users=40))
    stats = evaluate(FirstSlots(), RecVectorEnv(model, model.catalog(), CONFIG, num_envs=8), n_episodes=8, seed=0)
    assert not set(longterm.LONGTERM_METRICS) & set(stats.summary()["metric"])
    assert "session_ends" not in stats.episodes.columns
