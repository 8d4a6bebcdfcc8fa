"""``kill -9`` during ``recsim train``, then ``--resume``: the resumed run is the uninterrupted one, bit for bit.

Each run is a real ``recsim train`` process. The crashed one is SIGKILLed as soon as its first
checkpoint exists (checkpoints are written atomically, so the file is whole whenever it exists) and
is then resumed from whatever checkpoint it left. Its final checkpoint must equal the uninterrupted
run's in everything it holds — weights, optimizer, replay, RNG streams, env users, counters and the
learning curve — except what only times the run: the curve's wall-clock throughput (``time/...``)
and SB3's ``_num_timesteps_at_start`` (where the current ``learn()`` call began, read only for its fps).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.checkpoint import checkpoint_agent, load_checkpoint
from agents.reinforce import ReinforceAgent
from agents.sb3_dqn import SB3_FORMAT, SB3_NAME
from agents.slateq import SlateQAgent

REPO = Path(__file__).resolve().parents[2]
STEPS = 1_600
RUN = ["--env", "RecSim/Synthetic-v0", "--num-envs", "8", "--slate-size", "3", "--steps", str(STEPS),
       "--checkpoint-every", "400", "--seed", "3", "--no-progress"]
FORMATS = {SlateQAgent.name: SlateQAgent.format_version, ReinforceAgent.name: ReinforceAgent.format_version,
           SB3_NAME: SB3_FORMAT}
TIMEOUT_S = 240
CLOCKS = ("_num_timesteps_at_start",)
"""Payload keys that time the run rather than state it (besides the curve's ``time/...``)."""


def train_command(agent: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "recsim_env.cli.main", "train", "--agent", agent, "--out", str(out), *RUN, *extra]


def process_env() -> dict[str, str]:
    """The child imports this checkout (not another install) and, like the tests, uses one torch thread."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def run_to_the_end(command: list[str]) -> None:
    done = subprocess.run(command, cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]


def kill_after_first_checkpoint(command: list[str], checkpoint: Path) -> None:
    """Start ``command`` and SIGKILL it the moment ``checkpoint`` exists; fail if it finished first."""
    child = subprocess.Popen(command, cwd=REPO, env=process_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT_S
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    _, stderr = child.communicate(timeout=60)
    assert checkpoint.exists(), f"no checkpoint before the process ended: {stderr[-2000:]}"
    assert child.returncode == -signal.SIGKILL, f"the run ended by itself ({child.returncode}) before the kill"


def payload(path: Path) -> dict[str, Any]:
    name = checkpoint_agent(path)
    return load_checkpoint(path, name, FORMATS[name])


def saved_step(data: dict[str, Any]) -> int:
    loop = data["loop"]
    return int(loop["step"] if "step" in loop else loop["steps"])


def differences(left: Any, right: Any, where: str = "payload") -> list[str]:
    """Where two checkpoint payloads differ (bitwise for tensors and arrays), clocks aside (:data:`CLOCKS`)."""
    if isinstance(left, dict):
        if not isinstance(right, dict):
            return [where]
        keys = sorted({key for key in (*left, *right) if _states_the_run(key)}, key=str)
        return [d for key in keys for d in differences(left.get(key), right.get(key), f"{where}[{key!r}]")]
    if isinstance(left, (list, tuple)):
        if not isinstance(right, type(left)) or len(left) != len(right):
            return [where]
        return [d for i, (a, b) in enumerate(zip(left, right)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(left, torch.Tensor):
        same = isinstance(right, torch.Tensor) and left.dtype == right.dtype and left.shape == right.shape and (
            _bytes(left) == _bytes(right))
        return [] if same else [where]
    if isinstance(left, np.ndarray):
        same = isinstance(right, np.ndarray) and left.dtype == right.dtype and left.shape == right.shape and (
            left.tobytes() == right.tobytes())
        return [] if same else [where]
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return []
    return [] if type(left) is type(right) and left == right else [where]


def _states_the_run(key: Any) -> bool:
    return not str(key).startswith("time/") and key not in CLOCKS


def _bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def test_the_comparison_sees_a_one_bit_change() -> None:
    weights = torch.arange(4, dtype=torch.float32)
    flipped = weights.clone()
    flipped.view(torch.int32)[2] ^= 1
    base = {"agent": {"w": weights, "step": torch.tensor(2.0)},
            "loop": {"curve": [{"loss": 0.5, "time/env_steps_per_s": 10.0}]}}
    same_but_clock = {"agent": {"w": weights.clone(), "step": torch.tensor(2.0)},
                      "loop": {"curve": [{"loss": 0.5, "time/env_steps_per_s": 99.0}]}}
    assert differences(base, same_but_clock) == []
    assert differences(base, {**base, "agent": {"w": flipped, "step": torch.tensor(2.0)}}) == ["payload['agent']['w']"]
    assert differences(base, {**base, "agent": {"w": weights, "step": torch.tensor(3.0)}}) == [
        "payload['agent']['step']"]
    assert differences(base, {**base, "loop": {"curve": [{"loss": 0.25}]}}) == ["payload['loop']['curve'][0]['loss']"]


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["slateq", "reinforce", "sb3-dqn"])
def test_a_run_killed_and_resumed_equals_the_uninterrupted_run(agent: str, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    run_to_the_end(train_command(agent, straight))
    crashed = tmp_path / "crashed"
    kill_after_first_checkpoint(train_command(agent, crashed), crashed / "checkpoint.pt")
    assert saved_step(payload(crashed / "checkpoint.pt")) < STEPS  # the kill cut the run short
    run_to_the_end(train_command(agent, crashed, "--resume"))
    expected = payload(straight / "checkpoint.pt")
    resumed = payload(crashed / "checkpoint.pt")
    assert saved_step(resumed) == saved_step(expected) == STEPS
    assert differences(expected, resumed) == []
