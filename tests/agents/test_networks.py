"""The state encoder reads a lifetime env's session keys where the space has them, and only there."""

import numpy as np
import pytest
import torch

from agents.factory import build_agent, check_fits
from agents.networks import ItemTower, ObservationSpec, StateEncoder, obs_to_tensors
from recsim_env.env.config import EnvConfig
from recsim_env.env.lifetime import LifetimeConfig, LifetimeVectorEnv
from recsim_env.env.vector import RecVectorEnv
from recsim_env.errors import ConfigError
from recsim_env.users.synthetic import ReturningSyntheticUserModel

CONFIG = EnvConfig(slate_size=3, n_candidates=10)


@pytest.fixture(scope="module")
def envs():
    model = ReturningSyntheticUserModel()
    catalog = model.catalog()
    return (RecVectorEnv(model, catalog, CONFIG, num_envs=4),
            LifetimeVectorEnv(model, catalog, CONFIG, LifetimeConfig(horizon=30), num_envs=4))


def test_the_spec_says_whether_the_observation_has_the_lifetime_keys(envs):
    session, lifetime = (ObservationSpec.from_space(env.single_observation_space) for env in envs)
    assert not session.lifetime and lifetime.lifetime
    assert {**vars(session), "lifetime": True} == vars(lifetime)  # nothing else differs
    assert ObservationSpec(**{k: v for k, v in vars(lifetime).items() if k != "lifetime"}).lifetime is False


def test_the_lifetime_state_reads_the_session_index_and_the_gap(envs):
    session_env, lifetime_env = envs
    obs, _ = lifetime_env.reset(seed=0)
    spec = ObservationSpec.from_space(lifetime_env.single_observation_space)
    torch.manual_seed(0)
    encoder = StateEncoder(spec, ItemTower(spec.n_items, spec.n_users, 8), 16, 16)
    base = encoder(obs_to_tensors(obs))
    for key, value in (("session_index", 3), ("days_since_last_session", 12.5)):
        moved = {**obs, key: np.full_like(obs[key], value)}
        assert (encoder(obs_to_tensors(moved)) - base).abs().max() > 1e-4, key
    # The session env's encoder has the inputs it had before (no lifetime columns) and ignores extra keys.
    plain_spec = ObservationSpec.from_space(session_env.single_observation_space)
    plain = StateEncoder(plain_spec, ItemTower(plain_spec.n_items, plain_spec.n_users, 8), 16, 16)
    assert plain.net[0].in_features == encoder.net[0].in_features - 2
    torch.testing.assert_close(plain(obs_to_tensors(obs)), plain(obs_to_tensors(session_env.reset(seed=0)[0])))


@pytest.mark.parametrize("name", ["slateq", "reinforce", "sb3-dqn"])
def test_a_lifetime_agent_acts_in_lifetime_envs_and_says_why_not_in_session_ones(envs, name):
    session_env, lifetime_env = envs
    agent = build_agent(name, lifetime_env, seed=0)
    obs, _ = lifetime_env.reset(seed=0)
    if name == "sb3-dqn":
        assert agent.predict(agent.get_env().reset(), deterministic=True)[0].shape == (4,)
        return
    assert agent.act(obs, explore=False).shape == (4, 3)
    with pytest.raises(ConfigError, match="lacks .*session_index.*trained in a lifetime env"):
        agent.act(session_env.reset(seed=0)[0], explore=False)
    with pytest.raises(ConfigError, match="lifetime=True"):
        check_fits(agent, session_env, "agent.pt", "the session env")
    session_agent = build_agent(name, session_env, seed=0)
    check_fits(session_agent, lifetime_env, "agent.pt", "the lifetime env")  # it ignores the extra keys
