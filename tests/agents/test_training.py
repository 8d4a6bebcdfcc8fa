from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from fakes import Crash, FakeSlateVecEnv, Scenario, crashing

from agents.networks import ObservationSpec
from agents.reinforce import ReinforceAgent, ReinforceConfig
from agents.slateq import SlateQAgent, SlateQConfig
from agents.training import TrainConfig, final_observations, session_gaps, train
from recsim_env.errors import ArtifactError, ConfigError

SCENARIO = Scenario(budget=6.0, step_cap=8)


def _slateq(env: FakeSlateVecEnv, seed: int = 0) -> SlateQAgent:
    spec = ObservationSpec.from_space(env.single_observation_space)
    return SlateQAgent(spec, env.sc.slate_size, SlateQConfig(learning_starts=64, batch_size=32), seed=seed)


def _reinforce(env: FakeSlateVecEnv, seed: int = 0) -> ReinforceAgent:
    spec = ObservationSpec.from_space(env.single_observation_space)
    return ReinforceAgent(spec, env.sc.slate_size, ReinforceConfig(batch_size=64), seed=seed)


def _weights(agent) -> list[torch.Tensor]:
    net = agent.q if isinstance(agent, SlateQAgent) else agent.net
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("make", [_slateq, _reinforce])
def test_one_seed_gives_identical_weights(make) -> None:
    runs = []
    for seed in (3, 3, 4):
        env = FakeSlateVecEnv(SCENARIO, 8)
        agent = make(env, seed)
        train(agent, env, TrainConfig(total_steps=800, log_interval=400, progress=False), seed=seed)
        runs.append(_weights(agent))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2]))


CrashingEnv = crashing(FakeSlateVecEnv)


@pytest.mark.parametrize("make", [_slateq, _reinforce])
def test_resume_continues_the_same_run(make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(total_steps=1200, log_interval=200, checkpoint_interval=400, progress=False)
    env = FakeSlateVecEnv(SCENARIO, 8)
    straight = make(env)
    train(straight, env, config, seed=1)
    crashing = CrashingEnv(SCENARIO, 8)
    monkeypatch.setattr(CrashingEnv, "crash_at", 700)  # after the step-400 checkpoint; the resumed run
    with pytest.raises(Crash):                           # continues on a new env given the saved state
        train(make(crashing), crashing, config, seed=1, out_dir=tmp_path)
    monkeypatch.undo()
    resumed = make(FakeSlateVecEnv(SCENARIO, 8), seed=99)  # resume overwrites every state, seed included
    result = train(resumed, FakeSlateVecEnv(SCENARIO, 8), config, seed=1, out_dir=tmp_path, resume=True)
    assert result.steps == 1200 and [row["step"] for row in result.curve] == [200.0 * i for i in range(1, 7)]
    assert all(torch.equal(a, b) for a, b in zip(_weights(straight), _weights(resumed)))


def test_logs_tensorboard_scalars_and_checkpoints(tmp_path: Path) -> None:
    env = FakeSlateVecEnv(SCENARIO, 8)
    result = train(_slateq(env), env, TrainConfig(total_steps=400, log_interval=200, progress=False), seed=0,
                   out_dir=tmp_path)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    last = result.curve[-1]
    for key in ("episode/return", "episode/ctr", "episode/like_rate", "episode/length", "train/loss",
                "train/epsilon", "time/env_steps_per_s"):
        assert key in last, key
    assert 0.0 <= last["episode/ctr"] <= 1.0 and last["episode/length"] <= SCENARIO.step_cap
    assert (tmp_path / "checkpoint.pt").is_file()


def test_resuming_another_agents_checkpoint_or_without_out_dir_fails(tmp_path: Path) -> None:
    env = FakeSlateVecEnv(SCENARIO, 8)
    train(_slateq(env), env, TrainConfig(total_steps=80, log_interval=80, progress=False), seed=0, out_dir=tmp_path)
    with pytest.raises(ArtifactError, match="belongs to agent 'SlateQAgent'"):
        train(_reinforce(env), env, TrainConfig(total_steps=160, progress=False), seed=0, out_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="out_dir"):
        train(_slateq(env), env, TrainConfig(total_steps=160, progress=False), seed=0, resume=True)


def test_final_observations_swap_in_the_departed_users_last_state() -> None:
    obs = {"x": np.array([[1.0], [2.0], [3.0]])}
    final = np.empty(3, dtype=object)
    final[1] = {"x": np.array([20.0])}
    out = final_observations(obs, {"final_obs": final}, np.array([False, True, False]))
    assert out["x"][:, 0].tolist() == [1.0, 20.0, 3.0] and obs["x"][1, 0] == 2.0
    as_dict = final_observations(obs, {"final_obs": {"x": np.array([[0.0], [7.0], [0.0]])}}, np.array([0, 1, 0], bool))
    assert as_dict["x"][1, 0] == 7.0


def test_session_gaps_count_only_returned_users() -> None:
    info = {"gap_days": np.array([0.0, 2.5, np.inf, 4.0]), "returned": np.array([False, True, False, True])}
    np.testing.assert_array_equal(session_gaps(info, 4), [0.0, 2.5, 0.0, 4.0])
    assert session_gaps({"click": np.zeros((4, 2))}, 4) is None  # a session env has no clock


@pytest.mark.parametrize("kwargs", [{"total_steps": 0}, {"log_interval": 0}, {"checkpoint_interval": -1}])
def test_train_config_is_validated(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="TrainConfig"):
        TrainConfig(**kwargs)


def test_only_same_step_autoreset_is_trained_on() -> None:
    config = TrainConfig(total_steps=80, log_interval=80, progress=False)
    same = FakeSlateVecEnv(SCENARIO, 8)
    assert train(_slateq(same), same, config, seed=0).steps == 80
    next_step = FakeSlateVecEnv(SCENARIO, 8)
    next_step.metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
    # Under NEXT_STEP the step after an episode's end is a reset, not a transition: trained on, its
    # zero-filled info would read as a click in slot 0.
    with pytest.raises(ConfigError, match="autoreset_mode SAME_STEP.*NEXT_STEP"):
        train(_slateq(next_step), next_step, config, seed=0)
