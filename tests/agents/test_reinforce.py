import numpy as np
import pytest
import torch
from fakes import FakeSlateVecEnv, Scenario

from agents.networks import ObservationSpec
from agents.reinforce import (
    ReinforceAgent,
    ReinforceConfig,
    collect_logged,
    importance_weight,
    topk_correction,
)
from agents.training import TrainConfig, train
from recsim_env.errors import ConfigError


def _agent(env: FakeSlateVecEnv, **kwargs) -> ReinforceAgent:
    return ReinforceAgent(ObservationSpec.from_space(env.single_observation_space), env.sc.slate_size,
                          ReinforceConfig(**kwargs), seed=0)


def test_topk_correction_is_the_derivative_of_the_slate_inclusion_probability() -> None:
    pi = torch.tensor([0.0, 0.2, 0.5, 0.9], requires_grad=True)
    for k in (1, 2, 5):
        lam = topk_correction(pi.detach(), k)
        (grad,) = torch.autograd.grad((1 - (1 - pi) ** k).sum(), pi)
        torch.testing.assert_close(lam, grad)
    assert topk_correction(torch.tensor(0.2), 3).item() == pytest.approx(3 * 0.8 ** 2)
    assert topk_correction(torch.tensor(0.7), 1).item() == 1.0  # K = 1: plain REINFORCE


def test_importance_weight_is_capped_ratio() -> None:
    w = importance_weight(torch.tensor([0.2, 0.5, 0.3]), torch.tensor([0.1, 0.5, 0.001]), cap=5.0)
    torch.testing.assert_close(w, torch.tensor([2.0, 1.0, 5.0]))


def test_agent_weights_combine_ratio_and_correction() -> None:
    env = FakeSlateVecEnv(Scenario(slate_size=3))
    pi, beta = torch.tensor([0.4]), torch.tensor([0.2])
    assert _agent(env).weights(pi, beta).item() == pytest.approx(2.0 * 3 * 0.6 ** 2)
    assert _agent(env, topk_correction=False).weights(pi, beta).item() == pytest.approx(2.0)


def test_a_rewarded_click_raises_that_items_probability() -> None:
    env = FakeSlateVecEnv(Scenario(slate_size=2), num_envs=4)
    agent = _agent(env, baseline=False)
    obs, _ = env.reset(seed=0)
    episodes = collect_logged(env, agent, 40, gamma=0.9, seed=0)
    clicked = np.flatnonzero(episodes.choice >= 0)[:1]
    data = episodes.take(clicked)
    pos = int(data.slate[0, data.choice[0]])
    before = agent.probabilities(data.obs)[0][0, pos]
    for _ in range(5):
        agent.learn(data)
    assert agent.probabilities(data.obs)[0][0, pos] > before


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="gamma"):
        ReinforceConfig(gamma=1.5)
    with pytest.raises(ConfigError, match="weight_cap"):
        ReinforceConfig(weight_cap=0.0)


class ItemPreferencePolicy:
    """A logging policy with a fixed softmax preference over items (its β is known to the test)."""

    def __init__(self, logits: np.ndarray, seed: int) -> None:
        self.logits, self.rng = logits, np.random.default_rng(seed)

    def probabilities(self, candidates: np.ndarray) -> np.ndarray:
        z = np.exp(self.logits[candidates])
        return z / z.sum(1, keepdims=True)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        p = self.probabilities(obs["candidates"])
        pick = (p.cumsum(1) < self.rng.random((len(p), 1))).sum(1)
        return np.minimum(pick, p.shape[1] - 1)[:, None].astype(np.int64), state


@pytest.mark.slow
def test_off_policy_estimates_the_behaviour_policy_and_learns_from_its_log() -> None:
    logits = np.full(12, -8.0)
    logits[3] = 8.0
    sc = Scenario(slate_size=1, item_logit=tuple(logits), always_candidates=(3,), null_logit=0.0, budget=1e9,
                  step_cap=10)
    env = FakeSlateVecEnv(sc, num_envs=32)
    behaviour = ItemPreferencePolicy(np.linspace(-1.0, 1.0, 12), seed=0)
    log = collect_logged(env, behaviour, 12_000, gamma=0.9, seed=0)
    agent = _agent(env, batch_size=256, lr=3e-3)
    agent.learn_offline(log, epochs=8)
    obs, _ = env.reset(seed=3)
    pi, beta = agent.probabilities(obs)
    assert np.abs(beta - behaviour.probabilities(obs["candidates"])).max() < 0.06
    best = np.take_along_axis(obs["candidates"], pi.argmax(1)[:, None], 1)
    assert (best == 3).mean() == 1.0


@pytest.mark.slow
def test_on_policy_finds_the_item_that_is_always_chosen() -> None:
    logits = [-8.0] * 12
    logits[3] = 8.0
    sc = Scenario(item_logit=tuple(logits), always_candidates=(3,), null_logit=0.0, budget=1e9, step_cap=10)
    env = FakeSlateVecEnv(sc, num_envs=32)
    agent = _agent(env, batch_size=256, lr=3e-3)
    train(agent, env, TrainConfig(total_steps=20_000, log_interval=5_000, progress=False), seed=0)
    obs, _ = env.reset(seed=5)
    slates, _ = agent.predict(obs)
    assert (np.take_along_axis(obs["candidates"], slates, 1) == 3).any(axis=1).mean() == 1.0
