"""Resume from the env's state as data, not a pickle: ``RecVectorEnv.get_state`` / ``set_state``, the
training loop that checkpoints it, and what a resume does with an env that cannot give its state."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import Crash, FakeSlateVecEnv, OneItemUsers, Scenario, crashing

from agents.checkpoint import load_checkpoint
from agents.networks import ObservationSpec
from agents.reinforce import ReinforceAgent, ReinforceConfig
from agents.slateq import SlateQAgent, SlateQConfig
from agents.training import TrainConfig, env_state, train
from recsim_env.env.config import EnvConfig
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.users.adapter import PerUserAdapter, UserResponse
from recsim_env.users.synthetic import SyntheticConfig, SyntheticUserModel

ENV_CONFIG = EnvConfig(slate_size=2, n_candidates=6, history_length=3, step_cap=12)
SMALL_WORLD = SyntheticConfig(n_items=40, n_topics=4, n_users=30, time_budget=20.0)


def _synthetic_env(num_envs: int = 8, world: SyntheticConfig = SMALL_WORLD) -> RecVectorEnv:
    return RecVectorEnv(SyntheticUserModel(world), config=ENV_CONFIG, num_envs=num_envs)


def _fitted_env(tiny_log) -> RecVectorEnv:
    from recsim_env.fit.config import FitConfig
    from recsim_env.fit.pipeline import fit_user_model

    return RecVectorEnv(fit_user_model(tiny_log, FitConfig.fast()), config=ENV_CONFIG, num_envs=8)


def _dict_state_env() -> RecVectorEnv:
    return RecVectorEnv(OneItemUsers(), config=ENV_CONFIG, num_envs=8)


def _rollout(env: RecVectorEnv, actions: list[np.ndarray]) -> list:
    return [env.step(action) for action in actions]


def _assert_same_steps(steps: list, twin_steps: list) -> None:
    for (obs, reward, terminated, truncated, info), (obs2, reward2, terminated2, truncated2, info2) in zip(
        steps, twin_steps
    ):
        assert all(np.array_equal(obs[key], obs2[key]) for key in obs)
        assert np.array_equal(reward, reward2) and np.array_equal(terminated, terminated2)
        assert np.array_equal(truncated, truncated2) and info.keys() == info2.keys()
        for key in ("click", "rating", "choice", "slate", "_final_obs"):
            if key in info:
                assert np.array_equal(info[key], info2[key]), key


def _is_data(value) -> bool:
    """Arrays, plain values and containers of them: what a checkpoint stores without pickling objects."""
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_data(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(_is_data(item) for item in value)
    if isinstance(value, np.ndarray):
        return not value.dtype.hasobject
    return value is None or type(value) in (bool, int, float, str)


@pytest.mark.parametrize("make", [_synthetic_env, _fitted_env, _dict_state_env], ids=["synthetic", "fitted", "dict"])
def test_a_restored_env_takes_the_steps_the_exported_one_takes(make, request) -> None:
    env = make(request.getfixturevalue("tiny_log")) if make is _fitted_env else make()
    action_rng = np.random.default_rng(0)
    actions = [np.argsort(action_rng.random((8, 6)), axis=1)[:, :2] for _ in range(60)]
    env.reset(seed=3)
    _rollout(env, actions[:20])
    state = env.get_state()
    assert _is_data(state)
    steps = _rollout(env, actions[20:])  # the exported state must not follow the env's later steps
    twin = make(request.getfixturevalue("tiny_log")) if make is _fitted_env else make()
    twin.set_state(state)  # a fresh env, never reset
    twin_steps = _rollout(twin, actions[20:])
    assert any(step[2].any() or step[3].any() for step in steps)  # users left and were replaced on the way
    _assert_same_steps(steps, twin_steps)


def test_a_state_of_another_shape_is_refused_naming_what_differs() -> None:
    env = _synthetic_env()
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="num_envs=4"):
        _synthetic_env(num_envs=4).set_state(env.get_state())
    other_topics = _synthetic_env(world=SyntheticConfig(n_items=40, n_topics=5, n_users=30))
    with pytest.raises(ConfigError, match=r"state\['user_state'\]\['interest'\] has shape \(8, 4\)"):
        other_topics.set_state(env.get_state())
    with pytest.raises(NotImplementedError, match="before its first reset"):
        _synthetic_env().get_state()


class OneUser:
    n_items = 12
    n_user_features = 1

    def reset(self, rng):
        self.misses = 0

    def features(self):
        return np.zeros(1, dtype=np.float32)

    def respond(self, slate, valid, rng):
        return UserResponse(-1)

    def update(self, slate, response, rng):
        self.misses += 1

    def left(self):
        return self.misses >= 3


def test_users_as_objects_cannot_be_exported_and_the_loop_says_so(caplog: pytest.LogCaptureFixture) -> None:
    env = RecVectorEnv(PerUserAdapter(OneUser), config=ENV_CONFIG, num_envs=2)
    env.reset(seed=0)
    with pytest.raises(NotImplementedError, match="user state of type list cannot be exported"):
        env.get_state()
    with caplog.at_level(logging.WARNING, logger="agents.training"):
        assert env_state(env) is None
    assert "cannot give its state" in caplog.text and "fresh users" in caplog.text


CrashingVectorEnv = crashing(RecVectorEnv)


def _slateq(env) -> SlateQAgent:
    spec = ObservationSpec.from_space(env.single_observation_space)
    return SlateQAgent(spec, 2, SlateQConfig(learning_starts=64, batch_size=32), seed=5)


def _slateq_n_step(env) -> SlateQAgent:
    """Steps still summing n-step rewards sit in the agent between env steps: the checkpoint keeps them."""
    spec = ObservationSpec.from_space(env.single_observation_space)
    return SlateQAgent(spec, 2, SlateQConfig(learning_starts=64, batch_size=32, n_step=3), seed=5)


def _reinforce(env) -> ReinforceAgent:
    spec = ObservationSpec.from_space(env.single_observation_space)
    return ReinforceAgent(spec, 2, ReinforceConfig(batch_size=64), seed=5)


def _weights(agent) -> list[torch.Tensor]:
    net = agent.q if isinstance(agent, SlateQAgent) else agent.net
    return [p.detach().clone() for p in net.parameters()]


def _without_timing(curve: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{key: value for key, value in row.items() if not key.startswith("time/")} for row in curve]


@pytest.mark.parametrize("make", [_slateq, _slateq_n_step, _reinforce])
def test_training_resumed_from_the_env_state_is_the_uninterrupted_run(make, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Checkpoints every 300 steps, log lines every 200: the crash at 1000 resumes from 900, half-way
    # through the window whose mean loss the line at 1000 reports.
    config = TrainConfig(total_steps=1200, log_interval=200, checkpoint_interval=300, progress=False)
    env = _synthetic_env()
    straight = make(env)
    expected = train(straight, env, config, seed=1)
    crashing = CrashingVectorEnv(SyntheticUserModel(SMALL_WORLD), config=ENV_CONFIG, num_envs=8)
    monkeypatch.setattr(CrashingVectorEnv, "crash_at", 1000)
    with pytest.raises(Crash):
        train(make(crashing), crashing, config, seed=1, out_dir=tmp_path)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "checkpoint.pt", straight.name, straight.format_version)["loop"]["step"] == 904
    resumed = make(_synthetic_env())
    result = train(resumed, _synthetic_env(), config, seed=1, out_dir=tmp_path, resume=True)
    assert _without_timing(result.curve) == _without_timing(expected.curve)
    assert all(torch.equal(a, b) for a, b in zip(_weights(straight), _weights(resumed)))


class StatelessEnv(FakeSlateVecEnv):
    """Someone's own VectorEnv that can neither give its state nor be pickled (it holds a live handle)."""

    get_state = None
    set_state = None

    def __reduce__(self):
        raise TypeError("StatelessEnv holds an open connection")


def test_resuming_onto_fresh_users_drops_the_cut_episodes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scenario = Scenario(budget=6.0, step_cap=8)
    env = StatelessEnv(scenario, 8)
    spec = ObservationSpec.from_space(env.single_observation_space)
    agent = ReinforceAgent(spec, scenario.slate_size, ReinforceConfig(batch_size=64), seed=0)
    train(agent, env, TrainConfig(total_steps=200, log_interval=400, progress=False), seed=0, out_dir=tmp_path)
    saved = load_checkpoint(tmp_path / "checkpoint.pt", agent.name, agent.format_version)
    cut_steps = sum(len(steps) for steps in saved["agent"]["returns"]["pending"])
    assert cut_steps > 0 and saved["loop"]["stats"]["length"].any()  # the checkpoint does hold cut episodes
    resumed = ReinforceAgent(spec, scenario.slate_size, ReinforceConfig(batch_size=64), seed=0)
    with caplog.at_level(logging.WARNING, logger="agents.training"):
        train(resumed, StatelessEnv(scenario, 8), TrainConfig(total_steps=200, log_interval=400, progress=False),
              seed=0, out_dir=tmp_path, resume=True)
    assert all(steps == [] for steps in resumed.returns.pending)
    after = load_checkpoint(tmp_path / "checkpoint.pt", agent.name, agent.format_version)["loop"]["stats"]
    for key in ("ret", "clicks", "likes", "length"):
        assert not after[key].any(), key
    assert after["finished"] == saved["loop"]["stats"]["finished"]  # whole episodes are kept for the log
    assert f"dropping the running episode sums of 8 users and {cut_steps} steps of unfinished episodes" in caplog.text
