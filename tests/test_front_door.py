"""The package faces: short imports, and a plain ``import recsim_env`` that loads neither torch nor SB3."""

from __future__ import annotations

import subprocess
import sys

import pytest

import recsim_env

FRONT_DOOR = ["RecEnv", "RecVectorEnv", "EnvConfig", "make_env", "load_dataset", "InteractionLog", "ColumnMapping",
              "leave_one_out", "temporal_split", "fit_user_model", "FitConfig", "FittedUserModel",
              "SyntheticUserModel", "SyntheticConfig", "UserModel", "Responses", "PerUserAdapter", "evaluate",
              "EpisodeStats", "SingleItemDiscrete", "FlattenRecObservation", "RecSimError", "ConfigError",
              "DataError", "ActionError", "ArtifactError", "FetchError", "run_benchmark", "BenchmarkConfig"]


def test_import_loads_neither_torch_nor_stable_baselines3() -> None:
    code = ("import sys, recsim_env; heavy = [m for m in ('torch', 'stable_baselines3') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", FRONT_DOOR)
def test_every_front_door_name_imports(name: str) -> None:
    value = getattr(recsim_env, name)
    assert value.__module__.startswith("recsim_env.")
    assert name in dir(recsim_env) and name in recsim_env.__all__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'RecEnvv'"):
        recsim_env.RecEnvv  # noqa: B018


def test_agents_and_baselines_faces() -> None:
    from agents import ReinforceAgent, SlateQAgent, TrainConfig, train_agent
    from baselines import BPRMF, LightGCN, NeuMF, build_model

    assert SlateQAgent.__module__ == "agents.slateq" and ReinforceAgent and TrainConfig and train_agent
    assert build_model("bpr-mf").__class__ is BPRMF and NeuMF and LightGCN
