import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `scripts`

from scripts.bench_agents import with_wall_clock  # noqa: E402


def test_wall_clock_adds_each_window_at_its_own_rate() -> None:
    """1,000 steps at 500/s, then 3,000 at 1,000/s: 2 s, then 5 s; a window without a rate adds 0."""
    curve = [{"step": 1000.0, "time/env_steps_per_s": 500.0, "episode/return": 1.0},
             {"step": 4000.0, "time/env_steps_per_s": 1000.0},
             {"step": 5000.0}]
    rows = with_wall_clock(curve)
    assert [row["time/wall_s"] for row in rows] == pytest.approx([2.0, 5.0, 5.0])
    assert rows[0]["episode/return"] == 1.0 and "time/wall_s" not in curve[0]
