"""Users an agent never trained on are read as "no user" (-1), started from their features where they have
them; training drops a share of known ones."""

import numpy as np
import pytest
import torch
from fakes import FakeSlateVecEnv, Scenario

from agents.known_users import KnownUsers
from agents.networks import ObservationSpec
from agents.reinforce import ReinforceAgent, ReinforceConfig
from agents.slateq import SlateQAgent, SlateQConfig
from recsim_env.errors import ArtifactError, ConfigError
from recsim_env.fit.feature_map import DEFAULT_ALPHA, UserFeatureMap


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


def test_start_rows_are_the_ridge_map_of_the_known_rows_and_train_through() -> None:
    rng = np.random.default_rng(0)
    known = KnownUsers(60)
    features = rng.normal(size=(60, 3)).astype(np.float32)
    known.add(np.arange(50), features[:50])  # users 50-59 never trained on
    rows = torch.tensor(rng.normal(size=(60, 4)), dtype=torch.float32, requires_grad=True)
    new = torch.from_numpy(features[50:])
    start = known.start_rows(rows, new)
    expected = UserFeatureMap(DEFAULT_ALPHA).fit(features[:50], rows.detach().numpy()[:50]).predict(features[50:])
    np.testing.assert_allclose(start.detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    start.sum().backward()
    assert rows.grad[:50].abs().sum() > 0 and rows.grad[50:].abs().sum() == 0  # only trained rows enter
    assert known.start_rows(rows, new[:, :2]) is None  # another width: nothing to map from
    assert KnownUsers(60).start_rows(rows, new) is None  # no known users yet


def test_start_rows_first_mapped_under_inference_mode_still_train_through() -> None:
    """The map is cached on first use; SlateQ may first ask for it while acting, under inference_mode."""
    rng = np.random.default_rng(0)
    known = KnownUsers(20)
    known.add(np.arange(10), rng.normal(size=(10, 3)).astype(np.float32))
    rows = torch.tensor(rng.normal(size=(20, 4)), dtype=torch.float32, requires_grad=True)
    new = torch.tensor(rng.normal(size=(5, 3)), dtype=torch.float32)
    with torch.inference_mode():
        known.start_rows(rows, new)
    known.start_rows(rows, new).sum().backward()  # saving an inference tensor for backward would raise
    assert rows.grad[:10].abs().sum() > 0


def test_first_observed_features_are_kept_and_survive_a_checkpoint() -> None:
    known = KnownUsers(4)
    known.add(np.array([[1], [2]]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    known.add(np.array([[1]]), np.array([[9.0, 9.0]]))  # seen before: its first features stay
    again = KnownUsers(4)
    again.load_state_dict(known.state_dict())
    np.testing.assert_array_equal(again.features[1:3], [[1.0, 0.0], [0.0, 1.0]])
    assert again.has_features.tolist() == [False, True, True, False]
    old = KnownUsers(4)
    old.load_state_dict({"known": known.known})  # a checkpoint from before the demographic start
    assert old.start_rows(torch.zeros(4, 3), torch.zeros(1, 2)) is None


@pytest.mark.parametrize("cls, config", [(SlateQAgent, SlateQConfig), (ReinforceAgent, ReinforceConfig)])
def test_an_unknown_user_with_features_reads_the_start_row_instead_of_the_spare_row(cls, config) -> None:
    env = FakeSlateVecEnv(Scenario(n_items=12, n_logged_users=5), num_envs=4)
    spec = ObservationSpec.from_space(env.single_observation_space)
    agent = cls(spec, 2, config(user_feature_start=True), seed=0)
    fallback = cls(spec, 2, config(), seed=0)  # the default: the spare row  # the same weights (one seed)
    obs, _ = env.reset(seed=0)
    obs = {k: v.copy() for k, v in obs.items()}
    obs["user_index"][:] = np.array([[0], [1], [2], [4]])
    obs["user_features"][:] = np.array([[0.1, 1.0], [0.5, 1.0], [0.9, 1.0], [0.7, 1.0]])
    for a in (agent, fallback):
        a.users.add(obs["user_index"][:3], obs["user_features"][:3])  # users 0-2 trained on, 4 not
    towers = [agent.q.tower] if cls is SlateQAgent else [agent.net.tower]
    start = agent.users.start_rows(towers[0].users.weight[:-1], torch.from_numpy(obs["user_features"][3:]))
    np.testing.assert_allclose(_scores(agent, obs)[:3], _scores(fallback, obs)[:3])  # known users: unchanged
    assert np.abs(_scores(agent, obs)[3] - _scores(fallback, obs)[3]).max() > 1e-4
    with torch.no_grad():  # the fallback's spare row set to the start row: then it acts the same
        (fallback.q.tower if cls is SlateQAgent else fallback.net.tower).users.weight[-1] = start[0]
    np.testing.assert_allclose(_scores(agent, obs)[3], _scores(fallback, obs)[3], rtol=1e-5, atol=1e-6)
    restored = cls.from_state(agent.state_dict())
    np.testing.assert_allclose(_scores(restored, obs), _scores(agent, obs), rtol=1e-6)
