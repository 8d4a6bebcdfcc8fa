"""`recsim data fetch` and `recsim data info` through the CLI entry point."""

from __future__ import annotations

import pandas as pd
from datafiles import write_ml100k, zip_folder

from recsim_env.cli.main import main


def table_rows(out: str) -> list[list[str]]:
    """Cells of every rich table row in ``out``."""
    return [[c.strip() for c in line.strip("│ ").split("│")] for line in out.splitlines() if line.startswith("│")]


def test_info_prints_counts_histogram_and_sessions(tmp_path, capsys):
    assert main(["data", "info", str(write_ml100k(tmp_path / "ml-100k"))]) == 0
    out = capsys.readouterr().out
    for needle in ("ml-100k", "interactions", "sparsity", "33.3333%", "rating histogram", "sessions",
                   "age, gender, occupation"):
        assert needle in out, needle
    assert ["5", "2", "33.3%", "█" * 30] in table_rows(out)  # two of six ratings are 5: the longest bar


def test_info_on_a_csv_with_a_custom_gap(tmp_path, capsys):
    path = tmp_path / "events.csv"
    pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "timestamp": [0, 10, 100]}).to_csv(path, index=False)
    assert main(["data", "info", str(path), "--gap-seconds", "50"]) == 0
    out = capsys.readouterr().out
    assert "split at gaps >= 50 s" in out and "rating histogram" not in out
    assert ["2", "1.50", "1.5", "1.9", "2"] in table_rows(out)  # sessions of lengths 2 and 1


def test_fetch_installs_a_grouplens_zip_into_the_cache(tmp_path, capsys):
    archive = zip_folder(write_ml100k(tmp_path / "src"), tmp_path / "ml-100k.zip", prefix="ml-100k/")
    assert main(["data", "fetch", str(archive), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "u.data" in capsys.readouterr().out
    assert (tmp_path / "cache" / "ml-100k" / "u.item").exists()
    assert main(["data", "info", "ml-100k", "--cache-dir", str(tmp_path / "cache")]) == 0


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["data", "info", "ml-99k", "--cache-dir", str(tmp_path)]) == 2
    assert "recsim data: error: unknown dataset 'ml-99k'" in capsys.readouterr().err
    assert main(["data", "info", str(write_ml100k(tmp_path / "m")), "--gap-seconds", "0"]) == 2
    assert "gap_seconds must be a positive finite number" in capsys.readouterr().err
