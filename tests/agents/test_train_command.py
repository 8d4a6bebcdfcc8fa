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


def test_bad_warm_start_resume_and_env_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "emb.npz", item_embeddings=np.zeros((7, 4), np.float32))
    assert main(["train", "--agent", "slateq", "--steps", "16", "--warm-start", str(tmp_path / "emb.npz"), *SMALL]) == 2
    assert "7 rows but the env has 500 items" in capsys.readouterr().err
    assert main(["train", "--agent", "slateq", "--steps", "16", "--out", str(tmp_path / "none"), "--resume", *SMALL]) == 2
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
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--env", "synthetic", "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --policy and --checkpoint are exclusive
        main(["evaluate", "--policy", "random", "--checkpoint", str(fits / "checkpoint.pt"), "--env", "synthetic"])
