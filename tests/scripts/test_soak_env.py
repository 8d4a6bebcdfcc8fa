import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `scripts`

from scripts import soak_env  # noqa: E402

TINY = ["--steps", "4096", "--num-envs", "64", "--every", "1024", "--slate-size", "3", "--n-candidates", "10"]


def test_a_short_soak_prints_the_series_and_passes(capsys: pytest.CaptureFixture) -> None:
    assert soak_env.main(TINY) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "user-steps" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "1,024", "2,048", "3,072", "4,096"]
    assert "synthetic, N=64: 4,096 user-steps" in out and "flat within 5%" in out
    assert soak_env.rss_mib() > 1.0


@pytest.mark.parametrize(("last", "code", "verdict"), [(209.0, 0, "max/min 1.0450: flat within 5%"),
                                                       (211.0, 1, "max/min 1.0550: GROWING within 5%")])
def test_growth_beyond_the_tolerance_fails(last: float, code: int, verdict: str, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    # the reset's sample (100) comes before the buffers fill and is not counted; 200 is the first window's
    samples: Iterator[float] = iter([100.0, 200.0, 201.0, 204.0, last])
    monkeypatch.setattr(soak_env, "rss_mib", lambda: next(samples))
    assert soak_env.main(TINY) == code
    assert verdict in capsys.readouterr().out
