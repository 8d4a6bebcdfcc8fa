import copy
import itertools

import numpy as np
import pytest
import torch
from fakes import FakeSlateVecEnv, Scenario, mean_episode_return

from agents.exploration import LinearSchedule
from agents.networks import CandidateScorer, ItemTower, ObservationSpec, obs_to_tensors
from agents.replay import SlateBatch
from agents.slateq import (
    SlateQAgent,
    SlateQConfig,
    build_slates,
    choice_probabilities,
    slate_value,
)
from agents.training import TrainConfig, train
from recsim_env.errors import ConfigError


def _agent(env: FakeSlateVecEnv, **kwargs) -> SlateQAgent:
    """The learning tests below were tuned with a small batch and a round after every env step."""
    kwargs.setdefault("train_interval", 0)
    spec = ObservationSpec.from_space(env.single_observation_space)
    return SlateQAgent(spec, env.sc.slate_size, SlateQConfig(**kwargs), seed=0)


def _value(q, q0, logits, l0, bias, slate) -> float:
    probs = choice_probabilities(logits, l0, bias, slate)
    return float(slate_value(q, q0, probs, slate)[0])


def test_decomposed_value_matches_hand_computation() -> None:
    q, q0 = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([0.5])
    logits, l0, bias = torch.log(torch.tensor([[1.0, 2.0, 3.0]])), torch.log(torch.tensor([4.0])), torch.zeros(2)
    slate = torch.tensor([[2, 0]])
    # P = (3, 1, 4) / 8 over (item 2, item 0, no click)
    assert _value(q, q0, logits, l0, bias, slate) == pytest.approx((3 * 3 + 1 * 1 + 4 * 0.5) / 8)


def test_greedy_slates_are_distinct_and_near_the_brute_force_optimum() -> None:
    gen = torch.Generator().manual_seed(0)
    ratios = []
    for _ in range(30):
        q, q0 = torch.rand(1, 6, generator=gen) * 3, torch.rand(1, generator=gen)
        logits, l0 = torch.randn(1, 6, generator=gen), torch.randn(1, generator=gen)
        bias = torch.tensor([0.0, -0.5, -1.0])
        slate = build_slates(q, q0, logits, l0, bias, 3, "greedy")
        assert len(set(slate[0].tolist())) == 3
        best = max(_value(q, q0, logits, l0, bias, torch.tensor([p])) for p in itertools.permutations(range(6), 3))
        ratios.append(_value(q, q0, logits, l0, bias, slate) / best)
        if True:  # with one slot greedy is exact
            one = build_slates(q, q0, logits, l0, bias, 1, "greedy")
            assert _value(q, q0, logits, l0, bias, one) == pytest.approx(
                max(_value(q, q0, logits, l0, bias, torch.tensor([[i]])) for i in range(6)))
    assert min(ratios) > 0.97


def _torch_slot_loop(q, q_null, logits, null_logit, slot_bias, slate_size):
    """The greedy search as it was written in torch before the numpy one (the reference it must match)."""
    shift = torch.maximum(logits.max(1).values, null_logit)[:, None]
    v, v_null = torch.exp(logits - shift), torch.exp(null_logit - shift.squeeze(1))
    vq, num, den = v * q, v_null * q_null, v_null
    blocked, scale, picks = torch.zeros_like(q), torch.exp(slot_bias[:slate_size]), []
    for slot in range(slate_size):
        c = scale[slot]
        pick = ((num[:, None] + c * vq) / (den[:, None] + c * v) + blocked).argmax(1, keepdim=True)
        picks.append(pick)
        blocked.scatter_(1, pick, -torch.inf)
        num = num + c * vq.gather(1, pick).squeeze(1)
        den = den + c * v.gather(1, pick).squeeze(1)
    return torch.cat(picks, 1)


@pytest.mark.parametrize("ties", [False, True])
def test_greedy_search_picks_exactly_what_the_torch_slot_loop_picks(ties: bool) -> None:
    """Same math, bit for bit: a different pick anywhere would change what SlateQ learns from a seed."""
    gen = torch.Generator().manual_seed(1)
    q, q0 = torch.randn(512, 100, generator=gen) * 2, torch.randn(512, generator=gen)
    logits, l0 = torch.randn(512, 100, generator=gen), torch.randn(512, generator=gen)
    if ties:  # few distinct values: equal gains, where the first position must win in both
        q, logits = q.round(), logits.round()
    bias = torch.randn(10, generator=gen) * 0.5
    assert torch.equal(build_slates(q, q0, logits, l0, bias, 10, "greedy"),
                       _torch_slot_loop(q, q0, logits, l0, bias, 10))


def test_topk_ranks_by_choice_score_times_value() -> None:
    q, logits = torch.tensor([[1.0, 4.0, 2.0, 0.1]]), torch.log(torch.tensor([[1.0, 1.0, 3.0, 9.0]]))
    slate = build_slates(q, torch.zeros(1), logits, torch.zeros(1), torch.zeros(2), 2, "topk")
    assert slate[0].tolist() == [2, 1]  # scores 1, 4, 6, 0.9


@pytest.mark.parametrize("n_items", [40, 400], ids=["whole-catalogue matmul", "gathered rows"])
def test_candidate_scores_are_the_bilinear_form_on_either_path(n_items: int) -> None:
    """``c(s) + <u(s), e_i> + <w, e_i> + b0``: 41 table rows for 3 candidates score the whole table and
    pick columns, 401 rows gather the candidates' embeddings; both must give the formula's numbers."""
    torch.manual_seed(0)
    scorer = CandidateScorer(6, ItemTower(n_items, 5, 8), 16)
    state, items = torch.randn(7, 6), torch.randint(-1, n_items, (7, 3))
    items[0, 0] = -1  # "no item": the spare row
    emb = scorer.tower.item(items)
    expected = (torch.einsum("bd,bcd->bc", scorer.user(state), emb) + scorer.item_bias(emb).squeeze(-1)
                + scorer.state_bias(state))
    torch.testing.assert_close(scorer(state, items), expected)


def _batch(env: FakeSlateVecEnv, steps: int = 3) -> SlateBatch:
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        slate = np.tile(np.arange(env.sc.slate_size), (env.num_envs, 1))
        nxt, reward, term, trunc, info = env.step(slate)
        batch = SlateBatch(obs, slate, info["choice"], reward, nxt, term.astype(np.float32))
        obs = nxt
    return batch


def _manual_target(agent: SlateQAgent, batch: SlateBatch, observation: dict) -> torch.Tensor:
    o = obs_to_tensors(observation)
    with torch.no_grad():
        best = agent.greedy_slates(o)
        q_t, q0_t = agent.q_target(o, o["candidates"])
        logits, l0 = agent.click(o, o["candidates"])
        future = slate_value(q_t, q0_t, choice_probabilities(logits, l0, agent.click.slot_bias, best), best)
    return torch.as_tensor(batch.reward) + agent.config.gamma * (1 - torch.as_tensor(batch.terminated)) * future


def test_target_reads_the_next_state_through_the_target_network() -> None:
    """RecSim's reference SlateQ valued the CURRENT state in its target (its issue #26)."""
    env = FakeSlateVecEnv(Scenario(leave_prob=0.0, budget=1e9), num_envs=16)
    agent = _agent(env)
    with torch.no_grad():  # make the target network differ from the online one
        for p in agent.q_target.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    batch = _batch(env)
    for observation in (batch.obs, batch.next_obs):  # as training's observe() would have
        agent.users.add(observation["user_index"])
    target = agent.td_target(batch)
    assert not target.is_inference()  # the loss saves it for backward
    torch.testing.assert_close(target, _manual_target(agent, batch, batch.next_obs))
    wrong = _manual_target(agent, batch, batch.obs)
    assert (target - wrong).abs().max() > 1e-3  # current and next states differ, and it matters
    online = copy.deepcopy(agent)
    online.q_target.load_state_dict(online.q.state_dict())
    assert (online.td_target(batch) - target).abs().max() > 1e-3  # the target network's values are used


def test_terminal_transitions_do_not_bootstrap_and_plain_dqn_ignores_the_online_net() -> None:
    env = FakeSlateVecEnv(Scenario(), num_envs=8)
    agent = _agent(env, double_q=False)
    batch = _batch(env)._replace(terminated=np.ones(8, np.float32))
    np.testing.assert_allclose(agent.td_target(batch).numpy(), batch.reward)
    batch = batch._replace(terminated=np.zeros(8, np.float32))
    before = agent.td_target(batch)
    with torch.no_grad():
        for p in agent.q.parameters():
            p.zero_()
    torch.testing.assert_close(agent.td_target(batch), before)


def test_an_m_step_transition_discounts_its_bootstrap_by_gamma_to_the_m() -> None:
    env = FakeSlateVecEnv(Scenario(leave_prob=0.0, budget=1e9), num_envs=8)
    agent = _agent(env, gamma=0.8, n_step=3)
    batch = _batch(env)._replace(terminated=np.zeros(8, np.float32))
    one = agent.td_target(batch) - torch.as_tensor(batch.reward)
    horizon = np.array([1, 2, 3, 1, 2, 3, 1, 2])
    many = agent.td_target(batch._replace(horizon=horizon)) - torch.as_tensor(batch.reward)
    torch.testing.assert_close(many, one * torch.as_tensor(0.8 ** (horizon - 1), dtype=torch.float32))


def test_a_session_gap_discounts_the_bootstrap_by_its_days() -> None:
    """Semi-MDP target: ``r + γ δ^gap Q(s')``; a gap of 0 days (within a session) is the one-step target."""
    env = FakeSlateVecEnv(Scenario(leave_prob=0.0, budget=1e9), num_envs=8)
    plain, gapped = _agent(env, gamma=0.8), _agent(env, gamma=0.8, day_discount=0.5)
    batch = _batch(env)._replace(terminated=np.zeros(8, np.float32))
    one = plain.td_target(batch) - torch.as_tensor(batch.reward)
    gaps = np.array([0, 1, 2, 0.5, 0, 3, 10, 0], np.float32)
    got = gapped.td_target(batch._replace(gap_days=gaps)) - torch.as_tensor(batch.reward)
    torch.testing.assert_close(got, one * torch.as_tensor(0.5**gaps))
    torch.testing.assert_close(gapped.td_target(batch), plain.td_target(batch))  # no clock: no gap discount


def test_the_day_discount_reaches_the_replay_through_training() -> None:
    """In a lifetime env the loop hands each returned user's gap to the agent; replay keeps it."""
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.lifetime import LifetimeConfig, LifetimeVectorEnv
    from recsim_env.users.synthetic import ReturningSyntheticUserModel

    model = ReturningSyntheticUserModel()
    env = LifetimeVectorEnv(model, model.catalog(), EnvConfig(), LifetimeConfig(horizon=30), num_envs=16)
    spec = ObservationSpec.from_space(env.single_observation_space)
    agent = SlateQAgent(spec, env.single_action_space.shape[0], SlateQConfig(day_discount=0.9, learning_starts=10**6))
    train(agent, env, TrainConfig(total_steps=1600, log_interval=1600, checkpoint_interval=0, progress=False), seed=0)
    store = agent.replay._store
    gaps, terminated = store["gap_days"][: len(agent.replay)], store["terminated"][: len(agent.replay)]
    assert (gaps > 0).sum() > 10 and np.all(gaps >= 0) and np.isfinite(gaps).all()
    assert np.all(gaps[terminated > 0] == 0)  # a user who never came back has no gap to discount


def test_plain_dqn_picks_and_values_with_one_pass_of_the_target_network() -> None:
    """Without double Q the target network both picks A* and values it: one forward pass, the same
    target as picking with its values through ``build_slates``."""
    env = FakeSlateVecEnv(Scenario(leave_prob=0.0, budget=1e9), num_envs=16)
    agent = _agent(env, double_q=False)
    with torch.no_grad():
        for p in agent.q_target.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    batch = _batch(env)
    for observation in (batch.obs, batch.next_obs):  # as training's observe() would have
        agent.users.add(observation["user_index"])
    calls = {"q": 0, "q_target": 0}
    hooks = [getattr(agent, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
             for name in calls]
    target = agent.td_target(batch)
    for hook in hooks:
        hook.remove()
    assert calls == {"q": 0, "q_target": 1}
    o = obs_to_tensors(batch.next_obs)
    with torch.no_grad():
        q_t, q0_t = agent.q_target(o, o["candidates"])
        logits, l0 = agent.click(o, o["candidates"])
        best = build_slates(q_t, q0_t, logits, l0, agent.click.slot_bias, agent.slate_size, agent.config.slate_builder)
        future = slate_value(q_t, q0_t, choice_probabilities(logits, l0, agent.click.slot_bias, best), best)
    alive = 1 - torch.as_tensor(batch.terminated)
    torch.testing.assert_close(target, torch.as_tensor(batch.reward) + agent.config.gamma * alive * future)


def test_click_interval_steps_the_click_model_on_every_kth_gradient_step() -> None:
    """``click_interval`` 3: the click model moves on gradient steps 0 and 3 of six, the Q network on
    all six, and only the steps that trained it report a click loss."""
    env = FakeSlateVecEnv(Scenario(), num_envs=16)
    agent = _agent(env, click_interval=3)
    batch = _batch(env)
    moved, reported = [], []
    for _ in range(6):
        click, q = (copy.deepcopy(net.state_dict()) for net in (agent.click, agent.q))
        out = agent.learn(batch)
        moved.append([any(not torch.equal(before[k], net.state_dict()[k]) for k in before)
                      for before, net in ((click, agent.click), (q, agent.q))])
        reported.append("train/click_loss" in out)
    assert moved == [[True, True], [False, True], [False, True], [True, True], [False, True], [False, True]]
    assert reported == [True, False, False, True, False, False]
    # an update round of 3 steps starts on a click step: its metrics still carry that step's click loss
    agent = _agent(env, click_interval=3, updates_per_step=3, learning_starts=0, batch_size=16)
    agent.replay.add(batch.obs, batch.slate, batch.choice, batch.reward, batch.next_obs, batch.terminated)
    agent.steps_since_update = 1
    assert {"train/click_loss", "train/loss", "train/epsilon"} <= set(agent.update(0.5)) and agent.n_updates == 3
    with pytest.raises(ConfigError, match="click_interval"):
        SlateQConfig(click_interval=0)


def test_config_and_slate_size_are_validated() -> None:
    with pytest.raises(ConfigError, match="slate_builder"):
        SlateQConfig(slate_builder="best")
    with pytest.raises(ConfigError, match="gamma"):
        SlateQConfig(gamma=1.0)
    with pytest.raises(ConfigError, match="n_step"):
        SlateQConfig(n_step=0)
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="day_discount"):
            SlateQConfig(day_discount=bad)
    with pytest.raises(ConfigError, match="needs n_step 1"):
        SlateQConfig(day_discount=0.9, n_step=3)
    env = FakeSlateVecEnv(Scenario(n_candidates=3, slate_size=2))
    with pytest.raises(ConfigError, match="exceeds"):
        SlateQAgent(ObservationSpec.from_space(env.single_observation_space), 4)


@pytest.mark.slow
def test_values_match_a_tiny_mdp_with_known_q() -> None:
    """The user always clicks slot 0 and never leaves; sessions are cut at a step cap (truncation, so
    values bootstrap through it): Q(i) = r_i + γ V*, V* = r_max / (1 - γ)."""
    rewards = tuple(0.1 * (i + 1) for i in range(6))
    sc = Scenario(n_items=6, n_candidates=6, slate_size=1, item_reward=rewards, item_cost=(0.0,) * 6,
                  first_slot_only=True, step_cap=20)
    env = FakeSlateVecEnv(sc, num_envs=8)
    agent = _agent(env, gamma=0.7, learning_starts=400, batch_size=64, target_update_interval=50, lr=2e-3,
                   exploration=LinearSchedule(1.0, 0.3, 0.3))
    train(agent, env, TrainConfig(total_steps=10_000, log_interval=5_000, progress=False), seed=0)
    obs, _ = env.reset(seed=1)
    expected = np.asarray(rewards)[obs["candidates"]] + 0.7 * max(rewards) / (1 - 0.7)
    np.testing.assert_allclose(agent.item_values(obs), expected, atol=0.1)


@pytest.mark.slow
def test_finds_the_item_that_is_always_chosen() -> None:
    logits = [-8.0] * 12
    logits[3] = 8.0
    sc = Scenario(item_logit=tuple(logits), always_candidates=(3,), null_logit=0.0, budget=1e9, step_cap=10)
    env = FakeSlateVecEnv(sc, num_envs=16)
    agent = _agent(env, learning_starts=200, batch_size=64, exploration=LinearSchedule(1.0, 0.0, 0.5))
    train(agent, env, TrainConfig(total_steps=6_000, log_interval=2_000, progress=False), seed=0)
    obs, _ = env.reset(seed=5)
    slates, _ = agent.predict(obs)
    shown = np.take_along_axis(obs["candidates"], slates, 1)
    assert (shown == 3).any(axis=1).mean() == 1.0


class MaxRewardFirst:
    """The myopic policy: the candidate with the highest immediate reward in slot 0."""

    def __init__(self, reward_of: np.ndarray) -> None:
        self.reward_of = reward_of

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return np.argsort(-self.reward_of[obs["candidates"]], axis=1, kind="stable")[:, :1], state


def _mean_return(env: FakeSlateVecEnv, policy, steps: int = 60) -> float:
    return mean_episode_return(env, policy, steps)


@pytest.mark.slow
@pytest.mark.parametrize("n_step", [1, 3])
def test_beats_the_myopic_policy_where_clickbait_drains_the_budget(n_step: int) -> None:
    """Clickbait (items 0-5) pays 1 but costs 3 of a 12-step budget; quality (6-11) pays 0.6 and costs
    1. Myopic: 4 clickbait clicks = 4.0 per session. Optimal: 11 quality + 1 clickbait = 7.6."""
    sc = Scenario(n_items=12, n_candidates=4, slate_size=1, item_reward=(1.0,) * 6 + (0.6,) * 6,
                  item_cost=(3.0,) * 6 + (1.0,) * 6, first_slot_only=True, budget=12.0, step_cap=20,
                  always_candidates=(0, 6))
    myopic = _mean_return(FakeSlateVecEnv(sc, 32), MaxRewardFirst(FakeSlateVecEnv(sc).reward_of))
    assert myopic == pytest.approx(4.0)
    env = FakeSlateVecEnv(sc, num_envs=16)
    agent = _agent(env, gamma=0.95, learning_starts=500, batch_size=64, target_update_interval=100, lr=2e-3,
                   exploration=LinearSchedule(1.0, 0.05, 0.5), n_step=n_step)
    train(agent, env, TrainConfig(total_steps=16_000, log_interval=8_000, progress=False), seed=0)
    assert _mean_return(FakeSlateVecEnv(sc, 32), agent) > 1.4 * myopic


def test_train_interval_spaces_the_update_rounds_in_user_steps() -> None:
    """16 users per batched step, a round every 64 user-steps: 10 steps (160 user-steps) give rounds
    after steps 4 and 8 only, each of ``updates_per_step`` gradient steps; 0 keeps one per step."""
    counts = {}
    for interval in (0, 64):
        env = FakeSlateVecEnv(Scenario(), num_envs=16)
        agent = _agent(env, learning_starts=0, batch_size=16, updates_per_step=3, train_interval=interval)
        train(agent, env, TrainConfig(total_steps=160, log_interval=160, progress=False), seed=0)
        counts[interval] = agent.n_updates
        assert agent.steps_since_update == (0 if interval == 0 else 32)
    assert counts == {0: 30, 64: 6}


def test_train_interval_counter_survives_a_checkpoint_and_is_validated() -> None:
    env = FakeSlateVecEnv(Scenario(), num_envs=16)
    agent = _agent(env, learning_starts=0, batch_size=16, train_interval=64)
    train(agent, env, TrainConfig(total_steps=48, log_interval=48, progress=False), seed=0)
    restored = SlateQAgent.from_state(copy.deepcopy(agent.state_dict()))
    assert restored.steps_since_update == agent.steps_since_update == 48
    with pytest.raises(ConfigError, match="train_interval"):
        SlateQConfig(train_interval=-1)
