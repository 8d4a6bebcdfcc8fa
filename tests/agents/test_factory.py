from pathlib import Path

import numpy as np
import pytest
from fakes import one_item_vector_env

from agents.factory import build_agent, load_agent, train_agent
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
