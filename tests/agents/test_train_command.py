import sys
from pathlib import Path

import numpy as np
import pytest

from recsim_env.cli.main import main

SMALL = ["--env", "RecSim/Synthetic-v0", "--num-envs", "8", "--slate-size", "3", "--no-progress"]


@pytest.mark.parametrize("agent", ["slateq", "reinforce", "sb3-dqn"])
def test_train_writes_a_checkpoint_and_resumes(agent: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / agent
    assert main(["train", "--agent", agent, "--steps", "160", "--out", str(out), *SMALL]) == 0
    assert (out / "checkpoint.pt").is_file() and list((out / "tb").glob("events.*"))
    assert "trained" in capsys.readouterr().out
    assert main(["train", "--agent", agent, "--steps", "320", "--out", str(out), "--resume", *SMALL]) == 0
    assert "for 320 user-steps" in capsys.readouterr().out


def test_set_trains_with_those_config_fields_and_a_resume_must_repeat_them(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    from agents.factory import load_agent

    out = tmp_path / "slateq"
    fields = ["--set", "click_interval=2", "--set", "double_q=false"]
    assert main(["train", "--agent", "slateq", "--steps", "160", "--out", str(out), *fields, *SMALL]) == 0
    config = load_agent(out / "checkpoint.pt").config
    assert (config.click_interval, config.double_q, config.gamma) == (2, False, 0.9)
    capsys.readouterr()
    assert main(["train", "--agent", "slateq", "--steps", "320", "--out", str(out), "--resume", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "trained with click_interval=2, double_q=False; this run asks for click_interval=1, double_q=True" in err
    assert main(["train", "--agent", "slateq", "--steps", "320", "--out", str(out), "--resume", *fields, *SMALL]) == 0
    assert "for 320 user-steps" in capsys.readouterr().out
    assert main(["train", "--agent", "slateq", "--steps", "16", "--set", "click_interval=0", *SMALL]) == 2
    assert "click_interval must be >= 1" in capsys.readouterr().err
    assert main(["train", "--agent", "sb3-dqn", "--steps", "16", "--set", "gamma=0.5", *SMALL]) == 2
    assert "'sb3-dqn' takes none" in capsys.readouterr().err


def test_bad_warm_start_resume_and_env_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "emb.npz", item_embeddings=np.zeros((7, 4), np.float32))
    assert main(["train", "--agent", "slateq", "--steps", "16", "--warm-start", str(tmp_path / "emb.npz"), *SMALL]) == 2
    assert "7 rows but the env has 500 items" in capsys.readouterr().err
    assert main(["train", "--agent", "slateq", "--steps", "16", "--out", str(tmp_path / "none"), "--resume",
                 *SMALL]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--agent", "slateq", "--env", "RecSim/Nope-v0", "--steps", "16"]) == 2
    assert "RecSim/Nope-v0" in capsys.readouterr().err


@pytest.mark.parametrize("agent", ["slateq", "sb3-dqn"])
def test_evaluate_scores_a_trained_checkpoint_and_rejects_a_misfit(agent: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """``recsim evaluate --checkpoint`` scores what ``recsim train`` saved, without training it again."""
    fits = tmp_path / f"{agent}-fits"
    assert main(["train", "--agent", agent, "--steps", "160", "--out", str(fits), "--env", "RecSim/Synthetic-v0",
                 "--num-envs", "8", "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(fits / "checkpoint.pt"), "--env", "synthetic", "--seeds", "2",
                 "--episodes", "4", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"checkpoint-{agent}-fits on synthetic" in printed and "return" in printed
    episodes = (out / f"episodes_checkpoint-{agent}-fits_synthetic.csv").read_text().splitlines()
    assert len(episodes) == 1 + 2 * 4  # header, 4 episodes for each of 2 seeds
    misfit = tmp_path / f"{agent}-slate3"
    assert main(["train", "--agent", agent, "--steps", "160", "--out", str(misfit), *SMALL]) == 0
    assert main(["evaluate", "--checkpoint", str(misfit / "checkpoint.pt"), "--env", "synthetic", "--quick",
                 "--out", str(out)]) == 2
    assert "trained with slate_size=3, but synthetic has slate_size=10" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--env", "synthetic",
                 "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --policy and --checkpoint are exclusive
        main(["evaluate", "--policy", "random", "--checkpoint", str(fits / "checkpoint.pt"), "--env", "synthetic"])


FACTORIES = '''
import numpy as np
from recsim_env import EnvConfig, PerUserAdapter, RecVectorEnv, SyntheticUserModel, UserResponse

class OneUser:
    n_items = 30
    n_user_features = 2

    def reset(self, rng):
        self.taste, self.patience = rng.normal(size=2), 4
    def features(self):
        return self.taste.astype(np.float32)
    def respond(self, slate, valid, rng):
        return UserResponse(choice=0, rating=4.0)
    def update(self, slate, response, rng):
        self.patience -= 1
    def left(self):
        return self.patience <= 0

def user_model():
    return PerUserAdapter(OneUser)

def vector_env():
    model = SyntheticUserModel()
    return RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=4)

def broken():
    raise RuntimeError("no data here")

def not_an_env():
    return 42

NOT_CALLABLE = 3
'''


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of an importable module of env factories (written to ``tmp_path``)."""
    (tmp_path / "my_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_factories", raising=False)  # each test imports its own copy
    return "my_factories"


@pytest.mark.parametrize("function", ["user_model", "vector_env"])
def test_env_may_be_a_factory_of_ones_own(function: str, factories: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / function
    assert main(["train", "--agent", "slateq", "--env", f"{factories}:{function}", "--steps", "48",
                 "--num-envs", "4", "--out", str(out), "--no-progress"]) == 0
    assert (out / "checkpoint.pt").is_file()
    assert "for 48 user-steps" in capsys.readouterr().out


@pytest.mark.parametrize(("env", "message"), [
    ("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz': ModuleNotFoundError"),
    ("{m}:broken", "calling {m}.broken() failed: RuntimeError: no data here"),
    ("{m}:not_an_env", "returned a int; it must return a vector env (e.g. RecVectorEnv) or a UserModel"),
    ("{m}:NOT_CALLABLE", "{m}.NOT_CALLABLE is a int, not a function"),
])
def test_a_factory_that_fails_is_a_clear_error(env: str, message: str, factories: str,
                                               capsys: pytest.CaptureFixture) -> None:
    env = env.format(m=factories)
    assert main(["train", "--agent", "slateq", "--env", env, "--steps", "16", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--env {env!r}" in err and message.format(m=factories) in err


def test_a_factory_env_of_another_slate_size_is_refused(factories: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--agent", "slateq", "--env", f"{factories}:vector_env", "--slate-size", "5",
                 "--steps", "16", "--no-progress"]) == 2
    assert "returned an env with slate size 3, but --slate-size is 5" in capsys.readouterr().err


def test_checkpoint_interval_is_an_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--agent", "slateq", "--steps", "16", "--checkpoint-every", "0", *SMALL]) == 2
    assert "--checkpoint-every must be >= 1, got 0" in capsys.readouterr().err
