import os
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import (
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
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
