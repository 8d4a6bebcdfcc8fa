import numpy as np
import pytest
import torch
from fakes import FakeSlateVecEnv, Scenario, mean_episode_return

from agents.networks import ObservationSpec, obs_to_tensors
from agents.reinforce import (
    ReinforceAgent,
    ReinforceConfig,
    collect_logged,
    importance_weight,
    item_credit,
    plackett_luce_log_prob,
    topk_correction,
    user_mean,
)
from agents.replay import Episodes
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
    assert _agent(env).weights(pi, None).item() == pytest.approx(3 * 0.6 ** 2)  # on-policy: ratio 1


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


def test_plackett_luce_sums_to_one_over_ordered_slates_and_is_the_softmax_for_one_slot() -> None:
    logits = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    pairs = [(a, b) for a in range(4) for b in range(4) if a != b]
    slates = torch.tensor(pairs)
    log_prob = plackett_luce_log_prob(logits.expand(len(pairs), -1), slates)
    assert log_prob.exp().sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(plackett_luce_log_prob(logits, torch.tensor([[2]])), torch.log_softmax(logits, 1)[:, 2])


LOGGING_PI = np.array([0.52, 0.19, 0.12, 0.07, 0.07, 0.03])
"""The logging policy of the K = 3 tests, over six fixed candidates (the issue's example)."""


def _gumbel_top_k_log(env: FakeSlateVecEnv, rows: int, seed: int) -> Episodes:
    """``rows`` steps of one state whose candidates are items 0..5, each slate K draws without
    replacement from :data:`LOGGING_PI` (Gumbel top-K, as the agent itself samples), no clicks."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    obs = {key: np.repeat(value[:1], rows, axis=0) for key, value in obs.items()}
    obs["candidates"] = np.tile(np.arange(6), (rows, 1))
    keys = np.log(LOGGING_PI) - np.log(-np.log(rng.random((rows, 6))))
    slate = np.argsort(-keys, axis=1)[:, : env.sc.slate_size].astype(np.int64)
    zeros = np.zeros(rows, dtype=np.float32)
    return Episodes(obs, slate, np.full(rows, -1, dtype=np.int64), zeros, zeros)


def test_k3_behaviour_head_estimates_the_per_draw_probability_of_a_top_k_logger() -> None:
    # Fitted on the chance of each shown item over all K slots, beta converged to P(in slate) / K,
    # and pi / beta read 1.67 for the top item even with pi equal to the logging policy.
    env = FakeSlateVecEnv(Scenario(slate_size=3, n_candidates=6), num_envs=1)
    log = _gumbel_top_k_log(env, 4096, seed=0)
    agent = _agent(env, lr=1e-2, batch_size=512, user_dropout=0.0)
    agent.learn_offline(log, epochs=20)
    pi, beta = agent.probabilities({key: value[:1] for key, value in log.obs.items()})
    np.testing.assert_allclose(beta[0], LOGGING_PI, atol=0.02)
    np.testing.assert_allclose((pi / beta)[0], pi[0] / LOGGING_PI, rtol=0.1)  # the ratio the update uses


def test_k3_importance_weight_is_one_on_policy_and_not_off_policy() -> None:
    env = FakeSlateVecEnv(Scenario(slate_size=3, budget=6.0, step_cap=8), num_envs=8)
    agent = _agent(env, batch_size=64)
    result = train(agent, env, TrainConfig(total_steps=800, log_interval=200, progress=False), seed=0)
    assert [row["train/importance_weight_mean"] for row in result.curve] == [1.0] * 4
    off = agent.learn_offline(collect_logged(env, agent, 400, gamma=0.5, seed=1), epochs=1)
    assert all(row["train/importance_weight_mean"] != 1.0 for row in off)


def test_item_credit_gives_the_return_to_the_clicked_item_or_to_the_whole_unclicked_slate() -> None:
    choice, reward, ret = np.array([1, -1]), np.array([1.0, 0.0]), np.array([3.0, 2.0])
    item_return, share = item_credit(choice, reward, ret, 3, "choice")
    torch.testing.assert_close(item_return, torch.tensor([[3.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    torch.testing.assert_close(share, torch.tensor([[0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))
    item_return, share = item_credit(choice, reward, ret, 3, "shared")  # the future to all, the click to its item
    torch.testing.assert_close(item_return, torch.tensor([[2.0, 3.0, 2.0], [2.0, 2.0, 2.0]]))
    torch.testing.assert_close(share, torch.ones(2, 3))


CLICKBAIT = Scenario(n_items=12, n_candidates=6, slate_size=2, item_logit=(2.0,) * 6 + (0.0,) * 6, null_logit=-1.0,
                     item_cost=(3.0,) * 6 + (0.5,) * 6, budget=12.0, step_cap=30, always_candidates=(0, 1, 6, 7))
"""Clickbait (items 0-5) is chosen e^2 times as readily as quality (6-11) and costs 3 of a 12-unit budget
against 0.5; every click pays 1. Showing the two most clickable items gets 4 clicks a session, showing
quality ~17.6 (the 30-step cap and the budget end it)."""


class MostClickable:
    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        logit = np.asarray(CLICKBAIT.item_logit)[obs["candidates"]]
        return np.argsort(-logit, axis=1, kind="stable")[:, : CLICKBAIT.slate_size], state


def _session_return(policy, steps: int = 200) -> float:
    return mean_episode_return(FakeSlateVecEnv(CLICKBAIT, 64), policy, steps)


def test_choice_credit_learns_to_avoid_the_clickbait_that_shared_credit_chases() -> None:
    """Under shared credit the click is the only difference between the items of one slate and the
    budget it drains is charged to both: REINFORCE stays at the myopic 4. Crediting the clicked item
    with its whole return finds quality (measured: 4.1 against 17.6 at 4,000 steps)."""
    myopic = _session_return(MostClickable())
    assert myopic == pytest.approx(4.0)
    results = {}
    for credit in ("shared", "choice"):
        env = FakeSlateVecEnv(CLICKBAIT, num_envs=16)
        agent = _agent(env, gamma=0.95, credit=credit, batch_size=256, lr=3e-3)
        train(agent, env, TrainConfig(total_steps=4_000, log_interval=2_000, progress=False), seed=0)
        results[credit] = _session_return(agent)
    assert results["shared"] < 1.5 * myopic
    assert results["choice"] > 3.5 * myopic


def test_critic_regresses_the_returns_to_go_and_is_checkpointed() -> None:
    env = FakeSlateVecEnv(Scenario(slate_size=2), num_envs=4)
    agent = _agent(env, value_baseline=True, user_baseline=False, lr=3e-3, user_dropout=0.0)
    data = collect_logged(env, agent, 64, gamma=0.9, seed=0)
    data = Episodes(data.obs, data.slate, data.choice, data.reward, np.full(len(data), 2.5, dtype=np.float32))
    rows = [agent.learn(data, off_policy=False) for _ in range(150)]
    assert rows[0]["train/value_loss"] > 1.0 and rows[-1]["train/value_loss"] < 1e-2
    with torch.no_grad():
        assert np.abs(agent.critic(obs_to_tensors(data.obs)).numpy() - 2.5).mean() < 0.05
    restored = ReinforceAgent.from_state(agent.state_dict())
    for mine, theirs in zip(agent.critic.parameters(), restored.critic.parameters()):
        assert torch.equal(mine, theirs)
    assert _agent(env).critic is None  # off by default: no critic, no extra parameters


def test_credit_and_value_coef_are_validated() -> None:
    with pytest.raises(ConfigError, match="credit"):
        ReinforceConfig(credit="slate")
    with pytest.raises(ConfigError, match="value_coef"):
        ReinforceConfig(value_coef=-1.0)


def test_user_mean_is_the_mean_over_each_users_rows() -> None:
    got = user_mean(np.array([1.0, 2.0, 3.0, 10.0, -1.0]), np.array([[0], [0], [0], [4], [-1]]))
    np.testing.assert_allclose(got, [2.0, 2.0, 2.0, 10.0, -1.0])


def test_returns_that_only_depend_on_the_user_move_the_policy_only_without_the_user_baseline() -> None:
    # Every step of user u has return-to-go 1 + 4u: nothing in it tells the items apart. The batch mean
    # does not cancel that under choice credit (the clicked item carries the user's level), the user
    # baseline does: the policy gradient is then exactly zero.
    env = FakeSlateVecEnv(Scenario(slate_size=2), num_envs=4)
    data = collect_logged(env, _agent(env), 64, gamma=0.9, seed=0)
    users = np.asarray(data.obs["user_index"]).reshape(-1)
    assert len(np.unique(users)) > 1 and (data.choice >= 0).any() and (data.choice < 0).any()
    data = Episodes(data.obs, data.slate, data.choice, data.reward, (1.0 + 4.0 * users).astype(np.float32))
    moved = {}
    for user_baseline in (False, True):
        agent = _agent(env, user_baseline=user_baseline, user_dropout=0.0)
        before = [p.detach().clone() for p in agent.net.policy.parameters()]
        row = agent.learn(data, off_policy=False)
        moved[user_baseline] = max((p - b).abs().max().item() for p, b in zip(agent.net.policy.parameters(), before))
        if user_baseline:
            assert row["train/loss"] == 0.0
    assert moved[False] > 1e-4
    assert moved[True] == 0.0


def test_user_baseline_excludes_the_critic() -> None:
    assert ReinforceConfig().user_baseline  # the default
    with pytest.raises(ConfigError, match="user_baseline=False"):
        ReinforceConfig(value_baseline=True)
    with pytest.raises(ConfigError, match="user_baseline"):
        ReinforceConfig(user_baseline=True, value_baseline=True)
    assert ReinforceConfig(value_baseline=True, user_baseline=False).value_baseline
