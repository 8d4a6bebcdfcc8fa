import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import (
    CONTAINER_FORMAT,
    MAGIC,
    checkpoint_agent,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from agents.reinforce import ReinforceConfig
from agents.slateq import SlateQConfig
from recsim_env.errors import ArtifactError


def test_round_trip_keeps_payload(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", "A", 3, {"w": torch.arange(4.0), "n": 7})
    payload = load_checkpoint(path, "A", 3)
    assert payload["n"] == 7 and torch.equal(payload["w"], torch.arange(4.0))


@pytest.mark.parametrize("agent, version, match", [("B", 3, "belongs to agent 'A'"), ("A", 4, "format version 3")])
def test_other_agent_or_version_is_rejected(tmp_path: Path, agent: str, version: int, match: str) -> None:
    save_checkpoint(tmp_path / "c.pt", "A", 3, {})
    with pytest.raises(ArtifactError, match=match):
        load_checkpoint(tmp_path / "c.pt", agent, version)


def test_a_retired_version_is_rejected_saying_why(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c.pt", "A", 2, {})
    with pytest.raises(ArtifactError, match=r"format version 2; A reads version 3 \(it ran code\): train again"):
        load_checkpoint(tmp_path / "c.pt", "A", 3, retired={2: "it ran code"})


def test_corrupt_truncated_missing_and_foreign_files_are_rejected(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "c.pt", "A", 1, {"w": torch.zeros(1000)})
    half = tmp_path / "half.pt"
    half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state": 1}, foreign)
    for path, match in ((half, "corrupt or half-written"), (junk, "corrupt"), (tmp_path / "no.pt", "does not exist"),
                        (foreign, "not a recsim-env agent checkpoint")):
        with pytest.raises(ArtifactError, match=match):
            load_checkpoint(path, "A", 1)


def test_failed_write_never_replaces_a_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "c.pt", "A", 1, {"n": 1})
    before = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, "A", 1, {"n": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path, "A", 1)["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # the temporary file is cleaned up


def test_rng_state_round_trip() -> None:
    gen, rng = torch.Generator().manual_seed(1), np.random.default_rng(2)
    state = rng_state(gen, rng)
    a = (torch.rand(3, generator=gen), rng.random(3))
    restore_rng_state(state, gen, rng)
    b = (torch.rand(3, generator=gen), rng.random(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


class Payload:
    """A pickle that runs code when it is loaded: writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def _crafted(tmp_path: Path) -> tuple[Path, Path]:
    """A file with a valid header whose payload is a pickle that writes a marker file."""
    marker = tmp_path / "payload-ran"
    path = tmp_path / "agent" / "checkpoint.pt"
    path.parent.mkdir()
    torch.save({"magic": MAGIC, "container": CONTAINER_FORMAT, "agent_class": "SlateQAgent", "version": 2,
                "payload": {"agent": Payload(marker)}}, path)
    return path, marker


def test_the_crafted_payload_runs_when_unpickled(tmp_path: Path) -> None:
    # The control for the tests below: this file does run code under a plain unpickler.
    path, marker = _crafted(tmp_path)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "ran"


def test_a_checkpoint_that_would_run_code_is_refused_before_it_runs(tmp_path: Path) -> None:
    from agents.factory import load_agent

    path, marker = _crafted(tmp_path)
    loads = (lambda: load_checkpoint(path, "SlateQAgent", 2), lambda: checkpoint_agent(path), lambda: load_agent(path))
    for load in loads:
        with pytest.raises(ArtifactError, match=rf"checkpoint {re.escape(str(path))} holds Python objects "
                                                r"\(builtins\.exec\).*nothing in it was run"):
            load()
    assert not marker.exists()


def test_recsim_evaluate_refuses_the_crafted_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from recsim_env.cli.main import main

    path, marker = _crafted(tmp_path)
    code = main(["evaluate", "--checkpoint", str(path), "--env", "synthetic", "--out", str(tmp_path / "out")])
    assert code == 2 and "holds Python objects (builtins.exec)" in capsys.readouterr().err
    assert not marker.exists()


def test_a_checkpoint_of_the_pickled_format_is_refused_with_its_reason(tmp_path: Path) -> None:
    # What format 1 wrote: numpy arrays and configs pickled as objects.
    old = tmp_path / "old.pt"
    torch.save({"magic": MAGIC, "agent_class": "SlateQAgent", "version": 2,
                "payload": {"replay": np.zeros(3), "config": SlateQConfig()}}, old)
    with pytest.raises(ArtifactError, match=r"holds Python objects \(.*numpy.*\).*before checkpoint format 2"):
        load_checkpoint(old, "SlateQAgent", 2)
    plain = tmp_path / "plain.pt"
    torch.save({"magic": MAGIC, "agent_class": "A", "version": 1, "payload": {}}, plain)
    with pytest.raises(ArtifactError, match="container format 1; this version reads 2"):
        load_checkpoint(plain, "A", 1)


def test_a_dataclass_outside_the_allowlist_is_neither_written_nor_built(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Other:
        x: int = 1

    with pytest.raises(TypeError, match=r"payload\['cfg'\]: a checkpoint holds data only"):
        save_checkpoint(tmp_path / "c.pt", "A", 1, {"cfg": Other()})
    forged = tmp_path / "forged.pt"
    torch.save({"magic": MAGIC, "container": CONTAINER_FORMAT, "agent_class": "A", "version": 1,
                "payload": {"cfg": {"__recsim_checkpoint__": "dataclass", "type": "os.system", "fields": {}}}}, forged)
    with pytest.raises(ArtifactError, match="'os.system', which is not among the configs"):
        load_checkpoint(forged, "A", 1)


def test_objects_are_refused_when_written_naming_where(tmp_path: Path) -> None:
    for payload, where in (({"a": [1, object()]}, r"payload\['a'\]\[1\]"),
                           ({"b": np.array([None, 1], dtype=object)}, r"payload\['b'\]: .*dtype object"),
                           ({(1, 2): 3}, "dict keys must be str or int")):
        with pytest.raises(TypeError, match=where):
            save_checkpoint(tmp_path / "c.pt", "A", 1, payload)
    assert not (tmp_path / "c.pt").exists()


def test_arrays_scalars_configs_and_rng_states_come_back_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    big = rng.random((300, 100)).astype(np.float32)  # over the size saved as a tensor
    read_only = np.arange(6, dtype=np.int64).reshape(2, 3)
    read_only.setflags(write=False)
    payload = {
        "big": big, "strided": big[::2, ::3], "small": np.array([[1, -1]], dtype=np.int32), "empty": np.zeros((0, 4)),
        "flags": np.array([True, False]), "uint16": np.arange(5, dtype=np.uint16), "text": np.array(["ab", "c"]),
        "read_only": read_only, "scalar": np.float64(0.1), "rows": [({"x": big[3]}, np.int64(2), 1.5)],
        "config": SlateQConfig(gamma=0.5), "reinforce": ReinforceConfig(batch_size=7), "rng": rng.bit_generator.state,
        "tensor": torch.arange(3), "nothing": None, "blob": b"\x00\xff", "no_bytes": b"",
    }
    out = load_checkpoint(save_checkpoint(tmp_path / "c.pt", "A", 1, payload), "A", 1)
    for key in ("big", "strided", "small", "empty", "flags", "uint16", "text", "read_only"):
        assert out[key].dtype == payload[key].dtype and np.array_equal(out[key], payload[key]), key
        assert out[key].flags.writeable, key
    assert type(out["scalar"]) is np.float64 and out["scalar"] == 0.1
    assert isinstance(out["rows"][0], tuple) and np.array_equal(out["rows"][0][0]["x"], big[3])
    assert out["config"] == SlateQConfig(gamma=0.5) and out["reinforce"] == ReinforceConfig(batch_size=7)
    assert out["rng"] == rng.bit_generator.state and out["blob"] == b"\x00\xff" and out["nothing"] is None
    assert torch.equal(out["tensor"], torch.arange(3)) and out["no_bytes"] == b""


def _crafted_sb3(tmp_path: Path, version: int) -> tuple[Path, Path]:
    """An SB3 DQN checkpoint as format 2 wrote one — SB3's own save zip and a pickled replay buffer as
    bytes — whose zip entry and replay bytes are pickles that write a marker file when unpickled."""
    import base64
    import io
    import pickle
    import zipfile

    marker = tmp_path / "sb3-payload-ran"
    serialized = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:  # what SB3's DQN.load reads first: entries it cloudpickle-loads
        archive.writestr("data", json.dumps({"exploration_schedule": {":type:": "x", ":serialized:": serialized}}))
    path = tmp_path / f"sb3-v{version}" / "checkpoint.pt"
    save_checkpoint(path, "SB3DQN", version, {
        "model": zipped.getvalue(), "replay": pickle.dumps(Payload(marker)), "steps": 0, "curve": [], "rng": {},
        "env": None, "loop": None, "slate_size": 2, "credit": "pick", "popularity": None})
    return path, marker


def test_the_crafted_sb3_payload_runs_under_sb3s_own_loaders(tmp_path: Path) -> None:
    # The control for the tests below: SB3's DQN.load and load_replay_buffer would run this file's code.
    import io

    from stable_baselines3 import DQN

    path, marker = _crafted_sb3(tmp_path, 2)
    payload = load_checkpoint(path, "SB3DQN", 2)
    with pytest.raises(Exception):
        DQN.load(io.BytesIO(payload["model"]))
    assert marker.read_text() == "ran"
    marker.unlink()
    with pytest.raises(Exception):
        DQN("MlpPolicy", "CartPole-v1").load_replay_buffer(io.BytesIO(payload["replay"]))
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("version", [2, "current"])
def test_an_sb3_checkpoint_that_would_run_code_is_refused_before_it_runs(tmp_path: Path, version) -> None:
    from fakes import one_item_vector_env

    from agents.factory import load_agent, train_agent
    from agents.sb3_dqn import SB3_FORMAT, load_sb3_checkpoint
    from agents.training import TrainConfig

    path, marker = _crafted_sb3(tmp_path, SB3_FORMAT if version == "current" else version)
    old = "format version 2; SB3DQN reads version .*pickled"
    match = old if version == 2 else "not an SB3 DQN checkpoint of format"
    resume = lambda: train_agent("sb3-dqn", one_item_vector_env(8), TrainConfig(total_steps=8, progress=False),  # noqa: E731
                                 out_dir=path.parent, resume=True)
    for load in (lambda: load_sb3_checkpoint(path), lambda: load_agent(path), resume):
        with pytest.raises(ArtifactError, match=match):
            load()
    assert not marker.exists()


@pytest.mark.parametrize("version", [2, "current"])
def test_recsim_evaluate_refuses_the_crafted_sb3_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                            version) -> None:
    from agents.sb3_dqn import SB3_FORMAT
    from recsim_env.cli.main import main

    path, marker = _crafted_sb3(tmp_path, SB3_FORMAT if version == "current" else version)
    code = main(["evaluate", "--checkpoint", str(path), "--env", "synthetic", "--out", str(tmp_path / "out")])
    assert code == 2 and f"checkpoint {path}" in capsys.readouterr().err
    assert not marker.exists()
