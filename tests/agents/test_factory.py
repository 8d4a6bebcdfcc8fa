from pathlib import Path

import numpy as np
import pytest
from fakes import one_item_vector_env

from agents.factory import build_agent, config_fields, load_agent, train_agent
from agents.training import TrainConfig
from recsim_env.errors import ArtifactError, ConfigError

QUICK = TrainConfig(total_steps=160, log_interval=80, progress=False)


@pytest.mark.parametrize("name", ["slateq", "reinforce", "sb3-dqn"])
def test_a_trained_agent_reloads_as_the_same_policy(name: str, tmp_path: Path) -> None:
    policy, result = train_agent(name, one_item_vector_env(8), QUICK, seed=0, out_dir=tmp_path)
    obs, _ = one_item_vector_env(8).reset(seed=4)
    again = load_agent(result.checkpoint)
    np.testing.assert_array_equal(again.predict(obs)[0], policy.predict(obs)[0])
    assert again.predict(obs)[0].shape == (8, 2)


def test_unknown_agent_and_foreign_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown agent 'ppo'"):
        build_agent("ppo", one_item_vector_env(2))
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ArtifactError, match="corrupt"):
        load_agent(tmp_path / "bad.pt")


def test_config_fields_read_each_value_as_its_fields_type() -> None:
    values = config_fields("slateq", ["gamma=0.95", "click_interval=4", "double_q=false", "huber=Yes",
                                      "slate_builder=topk", " batch_size = 256 "])
    assert values == {"gamma": 0.95, "click_interval": 4, "double_q": False, "huber": True,
                      "slate_builder": "topk", "batch_size": 256}
    assert [type(values[k]) for k in ("gamma", "click_interval", "double_q")] == [float, int, bool]
    assert config_fields("reinforce", ["credit=shared"]) == {"credit": "shared"}


@pytest.mark.parametrize("pairs, message", [
    (["gama=0.9"], "--set 'gama=0.9': 'gama' is not a SlateQConfig field"),
    (["click_interval=2.5"], "--set: click_interval='2.5' is not an int"),
    (["double_q=maybe"], "--set: double_q='maybe' is not a bool"),
    (["gamma"], "--set 'gamma': give FIELD=VALUE"),
    (["gamma=nan"], "--set: gamma='nan' is not a finite float"),
    (["gamma=0.9", "gamma=0.95"], "--set 'gamma=0.95': gamma is set twice"),
    (["slate_builder="], "--set: slate_builder is empty"),
    (["exploration=0.1"], r"SlateQConfig.exploration is a LinearSchedule; set it from Python"),
])
def test_config_fields_refuse_a_bad_pair_naming_it(pairs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_fields("slateq", pairs)


def test_config_fields_refuse_an_agent_without_our_config() -> None:
    with pytest.raises(ConfigError, match="'sb3-dqn' takes none"):
        config_fields("sb3-dqn", ["gamma=0.9"])
