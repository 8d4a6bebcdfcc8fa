"""Malformed files through `recsim data info`: each is refused with one line naming the input (issue 15).

No exception from numpy, pandas, zlib or datetime may reach the user; the CLI prints RecSimError
messages as one line and exits 2, so anything else escaping here is a test failure.
"""

from __future__ import annotations

import gzip

import pytest

from recsim_env.cli.main import main

HEADER = "user_id,item_id,timestamp"


def info(path, capsys) -> str:
    """Run `recsim data info PATH`, expect exit 2 and return the one error line."""
    assert main(["data", "info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_timestamp_beyond_every_epoch_unit_names_file_line_column_value(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    path.write_text(f"{HEADER}\n1,1,5\n1,2,100000000000000000000\n")
    assert info(path, capsys) == (
        f"recsim data: error: {path}: column 'timestamp' (timestamp) has value(s) too large for epoch seconds, "
        f"milliseconds, microseconds or nanoseconds (1e20 or more), first at line 3 (value 100000000000000000000)")


def test_corrupt_gzip_names_the_file(tmp_path, capsys):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(f"{HEADER}\n1,1,1\n1,2,2\n".encode() * 50)[:40] + b"garbage" * 10)
    err = info(path, capsys)
    assert err.startswith(f"recsim data: error: {path}: cannot be ")  # read / decompressed as gzip
    assert err.endswith("); the file looks truncated or corrupt")


def test_click_outside_0_1_names_file_line_column_value(tmp_path, capsys):
    path = tmp_path / "clicks.csv"
    path.write_text(f"{HEADER},click\n1,1,1,0\n1,2,2,5\n")
    assert info(path, capsys) == (f"recsim data: error: {path}: column 'click' (click) must be 0 or 1, "
                                  f"first at line 3 (value 5)")


def test_short_row_is_too_few_fields_not_a_bad_timestamp(tmp_path, capsys):
    path = tmp_path / "short.csv"
    path.write_text(f"{HEADER}\n1,1,1\n1,2\n2,1,3\n")
    assert info(path, capsys) == (f"recsim data: error: {path}: line 3 has too few fields "
                                  f"(expected 3 separated by ',', got 2): '1,2'")


def test_user_ids_that_match_no_row_of_the_user_table_name_both_files(tmp_path, capsys):
    (tmp_path / "shop.inter").write_text("user_id:token\titem_id:token\n1.0\tx\n2.0\ty\n")
    (tmp_path / "shop.user").write_text("user_id:token\tage:float\n1\t30\n2\t40\n")
    assert info(tmp_path, capsys) == (
        f"recsim data: error: {tmp_path}/shop.inter: none of the 2 user id(s) of the interactions match the user "
        f"table ({tmp_path}/shop.user): e.g. '1.0' at line 2 (column 'user_id') against the table's '1'; "
        f"ids are compared as spelled (1, 1.0 and 01 are three ids)")


@pytest.mark.parametrize("name", ["events.txt", "events.log", "events"])
def test_a_csv_under_another_suffix_is_read_as_csv(tmp_path, capsys, name):
    path = tmp_path / name
    path.write_text(f"{HEADER}\n1,1,1\n1,2,2\n")
    assert main(["data", "info", str(path)]) == 0
    assert "interactions" in capsys.readouterr().out


def test_a_tab_separated_txt_is_sniffed(tmp_path, capsys):
    path = tmp_path / "events.txt"
    path.write_text("user_id\titem_id\ttimestamp\n1\t1\t1\n1\t2\t2\n")
    assert main(["data", "info", str(path)]) == 0


def test_millisecond_timestamps_are_converted_and_logged(tmp_path, capsys, caplog):
    path = tmp_path / "ms.csv"
    path.write_text(f"{HEADER}\n1,1,1700000000000\n1,2,1700000001000\n")
    assert main(["data", "info", str(path)]) == 0
    assert "2023-11-14 .. 2023-11-14" in capsys.readouterr().out
    assert "read as epoch milliseconds" in caplog.text


def test_time_span_outside_datetimes_years_still_prints(tmp_path, capsys):
    path = tmp_path / "ancient.csv"  # epoch seconds (below 1e11) but before the year 1
    path.write_text(f"{HEADER}\n1,1,-99999999999\n1,2,0\n")
    assert main(["data", "info", str(path)]) == 0
    assert "-1199-02-15 .. 1970-01-01" in capsys.readouterr().out


def test_truncated_gzip_names_the_file(tmp_path, capsys):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(f"{HEADER}\n1,1,1\n1,2,2\n".encode())[:-12])
    err = info(path, capsys)
    assert err.startswith(f"recsim data: error: {path}: cannot be ") and "truncated or corrupt" in err


def test_fidelity_start_activity_defaults_to_sessions_and_refuses_an_unknown_mode(capsys):
    from recsim_env.users.fitted import DEFAULT_START_ACTIVITY, START_ACTIVITY

    with pytest.raises(SystemExit) as exit_info:
        main(["fidelity", "--start-activity", "median"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'median'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fidelity", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{" + ",".join(START_ACTIVITY) + "}" in text and f"(default: {DEFAULT_START_ACTIVITY})" in text
