"""A fake training context (two simulators over the fake slate env) and fake policies, registered
for the duration of a test, so the pipeline runs in a second without data or training."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))  # share the fake env

from fake_vector_env import (  # noqa: E402
    ExplodingPolicy,
    FakeRecVectorEnv,
    FirstSlotsPolicy,
    OraclePolicy,
    fake_catalog,
)

from recsim_env.benchmark import registry  # noqa: E402
from recsim_env.benchmark.registry import (  # noqa: E402
    BuiltPolicy,
    ContextData,
    ContextSpec,
    PolicySpec,
    Simulator,
    SimulatorSpec,
)
from recsim_env.data.splits import leave_one_out  # noqa: E402


class ItemScorer:
    def score(self, users, items):
        return -np.asarray(items, dtype=np.float64)


def _tiny_log():
    import pandas as pd

    from recsim_env.data.log import InteractionLog
    from recsim_env.data.schema import ColumnMapping

    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}", 1000 + 60 * t, int(rng.integers(1, 6)))
            for u in range(15) for t, i in enumerate(rng.choice(120, 6, replace=False))]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(120)], "genres": ["A|B"] * 120})
    return InteractionLog.from_frames(inter, items, None, ColumnMapping(rating="rating", genres="genres"))


def _load(config):
    log = _tiny_log()
    return ContextData(log=log, split=leave_one_out(log), catalog=fake_catalog())


def _simulator(name):
    def build(data, config):
        return Simulator(name, FakeRecVectorEnv, fake_catalog(), logged_session_lengths=np.array([1, 2, 2, 3, 5]))
    return build


BUILT = []


def _policy(factory, scorer=False):
    def build(ctx):
        import pandas as pd
        BUILT.append((factory.__name__, ctx.seed))
        curve = pd.DataFrame({"step": [1, 2, 3], "episode/return": [0.1, 0.2, 0.3 + ctx.seed]})
        return BuiltPolicy(factory(), curve=curve, scorer=ItemScorer() if scorer else None)
    return build


@pytest.fixture
def fake_registry(monkeypatch):
    BUILT.clear()
    ExplodingPolicy.budget["calls"] = 10**9
    monkeypatch.setitem(registry.CONTEXTS, "fake", ContextSpec("fake", _load, train_simulator="fake-a"))
    for name in ("fake-a", "fake-b"):
        monkeypatch.setitem(registry.SIMULATORS, name, SimulatorSpec(name, "fake", _simulator(name)))
    monkeypatch.setitem(registry.POLICIES, "fav", PolicySpec("fav", _policy(OraclePolicy, scorer=True), "baseline"))
    monkeypatch.setitem(registry.POLICIES, "first", PolicySpec("first", _policy(FirstSlotsPolicy), "agent"))
    monkeypatch.setitem(registry.POLICIES, "boom", PolicySpec("boom", _policy(ExplodingPolicy), "agent"))
    return BUILT
