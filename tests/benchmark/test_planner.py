"""The rollout planner: it finds the long-term better slate where the myopic one is wrong, it leaves the real
episode alone, and planning all users at once is planning each on their own."""

from __future__ import annotations

import numpy as np
import pytest

from recsim_env.benchmark.config import BenchmarkConfig
from recsim_env.benchmark.defaults import policy_spec
from recsim_env.benchmark.planner import PlannerConfig, RolloutPlanner
from recsim_env.benchmark.policies import OraclePolicy
from recsim_env.benchmark.registry import simulator_spec
from recsim_env.benchmark.tasks import runs_on
from recsim_env.env.config import EnvConfig
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.evaluation.rollout import evaluate
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel


def trap_world() -> SyntheticUserModel:
    """Two topics and no tastes: clickbait (quality -1) is clicked 88 % of the time and costs 7-9 minutes of a
    10-minute budget; a quality item (+1) is clicked half the time and gives 1-3 minutes back. Greedy on
    the click, a user leaves after about two clicks; shown quality, they stay to the step cap."""
    return SyntheticUserModel(SyntheticConfig(
        n_items=20, n_topics=2, n_users=8, quality_noise=0.05, interest_scale=0.0, drift_rate=0.0,
        fatigue_weight=0.0, time_budget=10.0, quality_bonus=5.0, no_click_utility=-1.0, seed=3))


def trap_env(model: SyntheticUserModel, num_envs: int = 16) -> RecVectorEnv:
    return RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=1, n_candidates=20, step_cap=30),
                        num_envs=num_envs)


def test_where_the_click_is_a_trap_the_planner_shows_quality_and_keeps_its_users():
    model = trap_world()
    assert set(model.item_topic) == {0, 1}  # both kinds of item are among the 20 candidates
    env = trap_env(model)
    obs, _ = env.reset(seed=0)
    planner = RolloutPlanner(1, PlannerConfig(rollouts=4, horizon=30, weights=(0.0, 5.0))).bind_env(env)
    action, _ = planner.predict(obs)
    shown = obs["candidates"][np.arange(16), action[:, 0]]
    oracle_shown = obs["candidates"][np.arange(16), OraclePolicy(1).bind_env(env).predict(obs)[0][:, 0]]
    assert (model.item_quality[oracle_shown] < 0).all()  # the myopic choice: clickbait for everyone
    assert (model.item_quality[shown] > 0).all()  # the planner's: quality for everyone
    assert (planner.last_scores[:, 1] > planner.last_scores[:, 0] + 5).all()
    planned = evaluate(planner, env, 16, seed=1).episodes
    myopic = evaluate(OraclePolicy(1).bind_env(env), env, 16, seed=1).episodes
    # One candidate: the planner is the policy greedy on utility + 5 quality (quality always), unplanned.
    quality = evaluate(RolloutPlanner(1, PlannerConfig(rollouts=1, horizon=1, weights=(5.0,))).bind_env(env), env,
                       16, seed=1).episodes
    assert myopic["return"].mean() < 3 and myopic["session_length"].mean() < 5
    assert (quality["session_length"] == 30).all() and 13 < quality["return"].mean() < 17  # 30 steps x 0.5
    # At least as good as always quality (near the step cap it spends the saved budget on clickbait).
    assert planned["session_length"].mean() > 27 and planned["return"].mean() >= quality["return"].mean() - 1


def test_rollouts_improve_on_a_myopic_base_policy_with_random_slates_alone():
    # Base policy the myopic oracle, no quality policy to switch to: only the one-step deviations that
    # random slates offer, scored by rollouts. Policy improvement: the planner must beat its base policy.
    # A random item is quality with probability 7/20 here, and one quality click buys about one more
    # clickbait click later: from ~2 clicks the planner should get to ~3 or more.
    model = trap_world()
    env = trap_env(model, 32)
    planner = RolloutPlanner(1, PlannerConfig(rollouts=4, horizon=30, weights=(0.0,), random_slates=4))
    planned = evaluate(planner.bind_env(env), env, 32, seed=1).episodes["return"].mean()
    myopic = evaluate(OraclePolicy(1).bind_env(env), env, 32, seed=1).episodes["return"].mean()
    assert myopic < 2.5 and planned > myopic + 1


def test_planning_leaves_the_real_episode_and_its_random_streams_untouched():
    model = SyntheticUserModel(SyntheticConfig(n_items=60, n_users=40))
    config = EnvConfig(slate_size=3, n_candidates=12, step_cap=15)
    planned, untouched = (RecVectorEnv(model, model.catalog(), config, num_envs=6) for _ in range(2))
    obs, _ = planned.reset(seed=7)
    twin_obs, _ = untouched.reset(seed=7)
    planner = RolloutPlanner(3, PlannerConfig(rollouts=3, horizon=6, random_slates=1)).bind_env(planned)
    for _ in range(20):  # past the step cap: autoreset's replacement users come from the untouched stream
        before = planned.get_state()
        action, _ = planner.predict(obs)
        assert_same_state(planned.get_state(), before)
        obs, reward, terminated, truncated, info = planned.step(action)
        twin_obs, twin_reward, twin_terminated, twin_truncated, twin_info = untouched.step(action)
        np.testing.assert_array_equal(reward, twin_reward)
        np.testing.assert_array_equal(terminated | truncated, twin_terminated | twin_truncated)
        for key in obs:
            np.testing.assert_array_equal(obs[key], twin_obs[key])
    assert_same_state(planned.get_state(), untouched.get_state())


def assert_same_state(state: dict, other: dict) -> None:
    assert state["np_random"] == other["np_random"]
    sim, twin = state["simulation"], other["simulation"]
    assert sim["streams"] == twin["streams"]
    for part in ("arrays", "user_state"):
        for name, value in sim[part].items():
            np.testing.assert_array_equal(value, twin[part][name], err_msg=f"{part}[{name!r}]")


def deterministic_world() -> SyntheticUserModel:
    """Users who always click (temperature 0.01, no-click utility -10), ratings without noise, every item a
    candidate: a rollout's return is a function of the state alone, whatever the draws."""
    return SyntheticUserModel(SyntheticConfig(n_items=30, n_topics=4, n_users=20, temperature=0.01,
                                              no_click_utility=-10.0, rating_noise=0.0, time_budget=20.0))


def test_planning_all_users_at_once_is_planning_each_user_alone():
    model = deterministic_world()
    config = EnvConfig(slate_size=1, n_candidates=30, step_cap=25)
    env = RecVectorEnv(model, model.catalog(), config, num_envs=5)
    obs, _ = env.reset(seed=2)
    for _ in range(3):  # users at different budgets, fatigue and interests
        obs = env.step(np.random.default_rng(0).integers(0, 30, (5, 1)))[0]
    # Weights all nonzero: each item's quality breaks the ties of same-topic items, whatever their order.
    planner_config = PlannerConfig(rollouts=2, horizon=25, weights=(3.0, 0.5, 10.0))
    batched = RolloutPlanner(1, planner_config).bind_env(env)
    action, _ = batched.predict(obs)
    assert len(np.unique(batched.last_scores.round(6), axis=0)) > 1  # the users differ
    state = env.get_state()
    for user in range(5):
        alone = RecVectorEnv(model, model.catalog(), config, num_envs=1)
        alone.set_state(one_user(state, user))
        planner = RolloutPlanner(1, planner_config).bind_env(alone)
        alone_action, _ = planner.predict({key: value[user:user + 1] for key, value in obs.items()})
        np.testing.assert_allclose(planner.last_scores[0], batched.last_scores[user], rtol=1e-12)
        np.testing.assert_array_equal(alone_action[0], action[user])


def one_user(state: dict, user: int) -> dict:
    """``RecVectorEnv.get_state()`` cut to row ``user``."""
    sim = state["simulation"]
    rows = {part: {name: value[user:user + 1] for name, value in sim[part].items()}
            for part in ("arrays", "user_state")}
    return {**state, "num_envs": 1, "simulation": {**sim, **rows}}


def test_the_planner_is_a_reference_run_by_name_where_the_true_model_is():
    spec = policy_spec("planner")
    assert spec.kind == "planner" and not spec.default
    assert runs_on("planner", "synthetic") and not runs_on("planner", "ml100k-train")
    # It plans lifetimes too, where it has an item term: the synthetic users' quality, the fitted users' rating.
    assert runs_on("planner", "synthetic-lifetime") and runs_on("oracle", "synthetic-lifetime")
    # The fitted lifetime simulators' truth is their fitted model: both references stand beside their agents.
    for name in ("ml100k-train-lifetime", "ml100k-later-lifetime"):
        assert runs_on("oracle", name) and runs_on("planner", name)
        assert simulator_spec(name).planner.item_term == "expected_rating"
    assert "planner" not in BenchmarkConfig().policies and "oracle" in BenchmarkConfig().policies
    assert BenchmarkConfig(policies=("random", "planner")).policies == ("random", "planner")


@pytest.mark.parametrize("field, value", [("rollouts", 0), ("horizon", 1.5), ("weights", ()), ("weights", [1.0]),
                                          ("weights", (1.0, 1.0)), ("weights", (float("nan"),)),
                                          ("random_slates", -1), ("item_term", "")])
def test_a_bad_planner_config_names_its_field(field, value):
    with pytest.raises(ConfigError, match=f"PlannerConfig.{field}"):
        PlannerConfig(**{field: value})


def test_the_planner_refuses_an_env_it_cannot_copy_or_a_model_without_the_item_term():
    from recsim_env.env.lifetime import LifetimeVectorEnv
    from recsim_env.users.synthetic import ReturningSyntheticUserModel

    model = SyntheticUserModel(SyntheticConfig(n_items=30, n_users=10))
    env = RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=2, n_candidates=10), num_envs=2)
    with pytest.raises(ConfigError, match="bind_env"):
        RolloutPlanner(2).predict(env.reset(seed=0)[0])
    with pytest.raises(ConfigError, match="item_term='popularity' is neither"):
        RolloutPlanner(2, PlannerConfig(item_term="popularity")).bind_env(env)
    RolloutPlanner(2, PlannerConfig(item_term="popularity", weights=(0.0,))).bind_env(env)  # needs no term
    returning = ReturningSyntheticUserModel(SyntheticConfig(n_items=30, n_users=10))

    class Subclassed(LifetimeVectorEnv):  # its dynamics could differ from the copy's
        pass

    other = Subclassed(returning, returning.catalog(), EnvConfig(slate_size=2, n_candidates=10), num_envs=2)
    with pytest.raises(ConfigError, match="plans in a RecVectorEnv or a LifetimeVectorEnv, got Subclassed"):
        RolloutPlanner(2).bind_env(other)


class ReplayedStreams(RolloutPlanner):
    """A planner whose rollout steps meet the given streams (one dict per step) instead of its own."""

    def __init__(self, slate_size: int, config: PlannerConfig, streams: list[dict]) -> None:
        super().__init__(slate_size, config)
        self.streams = streams

    def rollout_streams(self, seed: np.random.SeedSequence) -> list[dict]:
        return self.streams


def lifetime_env(seed: int):
    from recsim_env.env.lifetime import LifetimeConfig, LifetimeVectorEnv
    from recsim_env.users.synthetic import ReturningSyntheticUserModel

    model = ReturningSyntheticUserModel(SyntheticConfig(n_items=40, n_users=30))
    env = LifetimeVectorEnv(model, model.catalog(), EnvConfig(slate_size=2, n_candidates=10, step_cap=12),
                            LifetimeConfig(horizon=20.0), num_envs=1)
    return env, env.reset(seed=seed)[0]


def test_a_lifetime_rollout_on_the_real_streams_is_the_real_lifetime():
    # Known answer: a rollout of the oracle's rule that meets, step by step, the streams the real env met
    # (users, candidates, responses, and the gaps' and new sessions' returns stream) earns exactly the
    # lifetime clicks the oracle earned in the real env, across its gaps and later sessions. The real env's
    # streams are set afresh before every step, so the rollout must read each step's streams, not run on.
    from recsim_env.benchmark.planner import _stream_states

    env, obs = lifetime_env(seed=4)
    oracle = OraclePolicy(2).bind_env(env)
    streams, total, returned, done = [], 0.0, 0, False
    observation = obs
    twin, _ = lifetime_env(seed=4)  # the planner's env, still at the lifetime's start
    while not done:
        fresh = _stream_states(np.random.SeedSequence([99, len(streams)]))
        state = env.get_state()
        state["simulation"]["streams"] = {name: fresh[name] for name in state["simulation"]["streams"]}
        state["simulation"]["returns_stream"] = fresh["returns"]
        env.set_state(state)
        streams.append(fresh)
        action, _ = oracle.predict(observation)
        observation, reward, terminated, truncated, info = env.step(action)
        total += float(reward[0])
        done = bool(terminated[0] or truncated[0])
        returned += 0 if done else int(info["returned"][0])  # the last step's info sits in final_info
    assert returned >= 2 and total > 0  # the lifetime held later sessions
    planner = ReplayedStreams(2, PlannerConfig(rollouts=1, horizon=len(streams), weights=(0.0,)), streams)
    planner.bind_env(twin).predict(obs)
    assert planner.last_scores[0, 0] == total
    # One step short of the end, the score is the lifetime's clicks less its last step's.
    short = ReplayedStreams(2, PlannerConfig(rollouts=1, horizon=len(streams) - 1, weights=(0.0,)), streams[:-1])
    short.bind_env(twin).predict(obs)
    assert short.last_scores[0, 0] == total - float(reward[0])


def test_the_planner_plans_lifetimes_on_a_per_user_item_term_and_leaves_the_real_lifetime_alone():
    from recsim_env.env.lifetime import LifetimeConfig, LifetimeVectorEnv
    from recsim_env.users.synthetic import ReturningSyntheticUserModel

    class RatedUsers(ReturningSyntheticUserModel):  # a per-(user, item) term, as the fitted model's expected_rating
        def affinity(self, state, items):
            return np.take_along_axis(state.interest, self.item_topic[items], axis=1)

    model = RatedUsers(SyntheticConfig(n_items=40, n_users=30))
    config = EnvConfig(slate_size=2, n_candidates=10, step_cap=12)
    planned, untouched = (LifetimeVectorEnv(model, model.catalog(), config, LifetimeConfig(horizon=10.0), num_envs=4)
                          for _ in range(2))
    obs, _ = planned.reset(seed=5)
    untouched.reset(seed=5)
    planner = RolloutPlanner(2, PlannerConfig(rollouts=2, horizon=8, weights=(0.0, 1.0), item_term="affinity"))
    planner.bind_env(planned)
    for _ in range(15):
        before = planned.get_state()
        action, _ = planner.predict(obs)
        after = planned.get_state()
        assert_same_state(after, before)
        assert after["simulation"]["returns_stream"] == before["simulation"]["returns_stream"]
        obs, reward, *_ = planned.step(action)
        np.testing.assert_array_equal(reward, untouched.step(action)[1])
    assert planner.last_scores.shape == (4, 2)
    assert_same_state(planned.get_state(), untouched.get_state())
