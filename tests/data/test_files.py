"""Raw file access (folder or zip) and strict delimited parsing with file line numbers."""

from __future__ import annotations

import pytest
from datafiles import write, zip_folder

from recsim_env.data.files import open_files, read_delimited
from recsim_env.errors import DataError


def test_rows_keep_their_file_lines_across_blank_lines_and_crlf(tmp_path):
    files = open_files(write(tmp_path / "d", {"r.dat": "1::a::x\r\n\r\n2::b::y\r\n\n3::c::z"}))
    frame = read_delimited(files, "r.dat", sep="::", columns=["n", "s", "t"])
    assert frame.index.name == "line" and frame.index.tolist() == [1, 3, 5]
    assert frame.values.tolist() == [["1", "a", "x"], ["2", "b", "y"], ["3", "c", "z"]]
    assert frame.attrs["source"].endswith("r.dat")


def test_header_line_and_quoted_fields(tmp_path):
    files = open_files(write(tmp_path / "d", {"m.csv": 'id,title\n1,"Heat, The"\n2,Up\n'}))
    frame = read_delimited(files, "m.csv", sep=",", quoted=True)
    assert frame.columns.tolist() == ["id", "title"] and frame["title"].tolist() == ["Heat, The", "Up"]
    assert frame.index.tolist() == [2, 3]


def test_zip_members_are_found_one_folder_down_and_labelled(tmp_path):
    archive = zip_folder(write(tmp_path / "d", {"a.txt": "x\ty\n"}), tmp_path / "d.zip", prefix="inner/")
    files = open_files(archive)
    assert files.names() == ["a.txt"] and files.label("a.txt") == f"{archive}:inner/a.txt"
    assert read_delimited(files, "a.txt", sep="\t", columns=["p", "q"]).values.tolist() == [["x", "y"]]


def test_missing_member_and_empty_header_file_are_named(tmp_path):
    files = open_files(write(tmp_path / "d", {"empty.csv": ""}))
    with pytest.raises(DataError, match=r"no file named 'u\.data' \(it has empty\.csv\)"):
        files.open("u.data")
    with pytest.raises(DataError, match=r"empty\.csv: line 1: expected a header line, found an empty file"):
        read_delimited(files, "empty.csv", sep=",")


def test_whitespace_only_line_is_a_field_count_error(tmp_path):
    files = open_files(write(tmp_path / "d", {"r.tsv": "1\t2\n   \n3\t4\n"}))
    with pytest.raises(
        DataError, match=r"r\.tsv: line 2 has too few fields \(expected 2 separated by '\\t', got 1\): '   '"
    ):
        read_delimited(files, "r.tsv", sep="\t", columns=["a", "b"])
