"""Users an agent never trained on are read as "no user" (-1); training drops a share of known ones."""

import numpy as np
import pytest
import torch
from fakes import FakeSlateVecEnv, Scenario

from agents.known_users import KnownUsers
from agents.networks import ObservationSpec
from agents.reinforce import ReinforceAgent, ReinforceConfig
from agents.slateq import SlateQAgent, SlateQConfig
from recsim_env.errors import ArtifactError, ConfigError


def _obs(users: list[int]) -> dict[str, torch.Tensor]:
    return {"user_index": torch.tensor(users, dtype=torch.long)[:, None], "context": torch.zeros(len(users), 4)}


def test_unknown_out_of_range_and_dropped_users_become_minus_one() -> None:
    known = KnownUsers(6)
    known.add(np.array([[0], [2], [-1], [2], [9]]))  # -1 and out-of-range indices are ignored
    assert known.known.tolist() == [True, False, True, False, False, False]
    obs = _obs([0, 1, 2, -1, 5])
    out = known.mask(obs)
    assert out["user_index"][:, 0].tolist() == [0, -1, 2, -1, -1]
    assert obs["user_index"][:, 0].tolist() == [0, 1, 2, -1, 5]  # the input is not modified
    assert out["context"] is obs["context"]
    dropped = known.mask(obs, drop=np.array([True, False, False, False, False]))
    assert dropped["user_index"][:, 0].tolist() == [-1, -1, 2, -1, -1]
    all_known = _obs([0, 2])
    assert known.mask(all_known) is all_known  # nothing to mask: no copy


def test_dropout_draws_the_configured_share() -> None:
    rng = np.random.default_rng(0)
    assert KnownUsers.draw_drop(10, 0.0, rng) is None
    assert KnownUsers.draw_drop(20_000, 0.1, rng).mean() == pytest.approx(0.1, abs=0.01)


def test_known_users_round_trip_and_reject_another_size() -> None:
    known = KnownUsers(4)
    known.add(np.array([1, 3]))
    again = KnownUsers(4)
    again.load_state_dict(known.state_dict())
    assert again.known.tolist() == [False, True, False, True]
    with pytest.raises(ArtifactError, match="3 users, the agent's env 4"):
        again.load_state_dict({"known": np.zeros(3, dtype=bool)})


@pytest.mark.parametrize("make", [
    lambda spec: SlateQAgent(spec, 2, SlateQConfig(), seed=0),
    lambda spec: ReinforceAgent(spec, 2, ReinforceConfig(), seed=0),
])
def test_agents_act_for_an_unknown_user_as_for_no_user(make) -> None:
    env = FakeSlateVecEnv(Scenario(n_items=12, n_logged_users=5), num_envs=4)
    agent = make(ObservationSpec.from_space(env.single_observation_space))
    with torch.no_grad():  # distinct user rows, so that reading one user or another shows in the action
        for net in (agent.q, agent.click) if isinstance(agent, SlateQAgent) else (agent.net,):
            net.tower.users.weight.normal_(0.0, 3.0, generator=torch.Generator().manual_seed(1))
    obs, _ = env.reset(seed=0)
    obs = {k: v.copy() for k, v in obs.items()}
    obs["user_index"][:] = np.array([[0], [1], [2], [3]])
    agent.users.add(np.array([0, 1]))
    anonymous = {**obs, "user_index": np.full_like(obs["user_index"], -1)}
    logits = _scores(agent, obs)
    anonymous_logits = _scores(agent, anonymous)
    np.testing.assert_allclose(logits[2:], anonymous_logits[2:])  # users 2, 3: never trained on
    assert np.abs(logits[:2] - anonymous_logits[:2]).max() > 1e-3  # users 0, 1: their own rows
    restored = type(agent).from_state(agent.state_dict())
    np.testing.assert_allclose(_scores(restored, obs), logits)


def _scores(agent, obs) -> np.ndarray:
    if isinstance(agent, SlateQAgent):
        return agent.item_values(obs)
    return agent.probabilities(obs)[0]


@pytest.mark.parametrize("cls", [SlateQConfig, ReinforceConfig])
def test_user_dropout_outside_unit_interval_is_a_config_error(cls) -> None:
    with pytest.raises(ConfigError, match="user_dropout must lie in"):
        cls(user_dropout=1.0)
