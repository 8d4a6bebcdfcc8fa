"""Item vectors from each layout align to the log's item index; every bad file is named with its item and line."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pandas as pd
import pytest

from recsim_env.data.item_vectors import load_item_vectors
from recsim_env.errors import DataError


@pytest.fixture(scope="module")
def log():
    from tinylog import make_tiny_log

    return make_tiny_log(n_users=6, n_items=12, per_user=3)


def _vectors(n_items: int, width: int = 3) -> np.ndarray:
    """Vector of item ``i<k>``: ``[k, 10k, 100k]``: each row says which item it belongs to."""
    return np.arange(n_items)[:, None] * 10.0 ** np.arange(width)[None, :]


def _shuffled_table(log, extra: int = 0) -> pd.DataFrame:
    # Rows in another order than the log's items, and items the log does not have: alignment is by id.
    n = log.n_items + extra
    table = pd.DataFrame(_vectors(n), columns=["v0", "v1", "v2"])
    table.insert(0, "item_id", [f"i{k}" for k in range(n)])
    return table.iloc[np.random.default_rng(0).permutation(n)].reset_index(drop=True)


def _expected(log) -> np.ndarray:
    return _vectors(log.n_items)[[int(item[1:]) for item in log.item_ids]].astype(np.float32)


def _write_csv(path, text: str):
    path.write_text(text)
    return path


def test_csv_gzip_parquet_npz_and_npy_rows_align_to_the_logs_item_index(log, tmp_path, caplog):
    table = _shuffled_table(log, extra=2)
    table.to_csv(tmp_path / "v.csv", index=False)
    (tmp_path / "v.tsv.gz").write_bytes(gzip.compress(table.to_csv(sep="\t", index=False).encode()))
    table.to_parquet(tmp_path / "v.parquet")
    listed = pd.DataFrame({"item_id": table["item_id"], "embedding": list(table[["v0", "v1", "v2"]].to_numpy())})
    listed.to_parquet(tmp_path / "list.parquet")
    np.savez(tmp_path / "v.npz", item_ids=table["item_id"].to_numpy(dtype=str), vectors=table[["v0", "v1", "v2"]])
    for name in ("v.csv", "v.tsv.gz", "v.parquet", "list.parquet", "v.npz"):
        with caplog.at_level(logging.INFO, logger="recsim_env.data.item_vectors"):
            vectors = load_item_vectors(tmp_path / name, log, dim=3)
        assert vectors.dtype == np.float32
        np.testing.assert_array_equal(vectors, _expected(log), err_msg=name)
    assert "2 vectors for items 'tiny' does not have are ignored" in caplog.text


def test_npy_holds_integer_ids_in_column_zero(tmp_path):
    from recsim_env.data.log import InteractionLog

    log = InteractionLog.from_frames(pd.DataFrame({"user_id": ["u", "u"], "item_id": [7, 3], "timestamp": [1, 2]}))
    np.save(tmp_path / "v.npy", np.array([[3.0, 0.5, 0.25], [7.0, 1.5, 1.25]]))
    vectors = load_item_vectors(tmp_path / "v.npy", log)
    assert vectors[list(log.item_ids).index("7")].tolist() == [1.5, 1.25]
    np.save(tmp_path / "bad.npy", np.array([[3.5, 0.5], [7.0, 1.5]]))
    with pytest.raises(DataError, match=r"bad.npy: row 0: item id 3.5 in column 0 is not an integer"):
        load_item_vectors(tmp_path / "bad.npy", log)


@pytest.mark.parametrize("text, match", [
    ("item_id,v0,v1\ni0,1,2\n", r"v.csv: no vector for item\(s\) 'i1', 'i2', 'i3', 'i4', 'i5' \.\.\. of 'tiny' "
                                r"\(11 of its 12 items have none\)"),
    ("item_id,v0,v1\ni0,1,2\ni1,3,4\ni0,5,6\n", r"v.csv: line 4: item 'i0' already has a vector at line 2"),
    ("item_id,v0,v1\ni0,1,2\ni1,nan,4\n", r"v.csv: line 3: item 'i1' has a non-finite component \(nan at position 0\)"),
    ("item_id,v0,v1\ni0,1,2\ni1,3,inf\n", r"v.csv: line 3: item 'i1' has a non-finite component \(inf at position 1\)"),
    ("item_id,v0,v1\ni0,1,2\ni1,3,\n", r"v.csv: line 3: item 'i1' has a non-finite component \(nan at position 1\)"),
    ("item_id,v0,v1\ni0,1,2\ni1,3,x\n", r"v.csv: line 3: column 'v1' holds 'x', not a number \(item 'i1'\)"),
    ("item_id,v0,v1\ni0,1,2\ni1,3\n", r"v.csv: line 3 has too few fields \(expected 3"),
    ("id,v0\ni0,1\n", r"v.csv: no 'item_id' column for the item ids; it has \['id', 'v0'\]"),
    ("item_id\ni0\n", r"v.csv: no vector components, only item ids"),
    ("item_id,v0,v1\n", r"v.csv: no item vectors \(the file has no rows\)"),
])
def test_a_bad_table_names_the_file_the_item_and_the_line(log, tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load_item_vectors(_write_csv(tmp_path / "v.csv", text), log)


def test_a_width_other_than_the_one_asked_and_ragged_parquet_lists_are_refused(log, tmp_path):
    _shuffled_table(log).to_csv(tmp_path / "v.csv", index=False)
    with pytest.raises(DataError, match=r"v.csv: vectors have 3 components, expected 4"):
        load_item_vectors(tmp_path / "v.csv", log, dim=4)
    ragged = pd.DataFrame({"item_id": ["i0", "i1"], "embedding": [[1.0, 2.0], [3.0]]})
    ragged.to_parquet(tmp_path / "ragged.parquet")
    with pytest.raises(DataError, match=r"ragged.parquet: row 1: item 'i1' has a vector of 1 components in column "
                                        r"'embedding', the first row has 2"):
        load_item_vectors(tmp_path / "ragged.parquet", log)


def test_bad_npz_and_missing_files_are_named(log, tmp_path):
    np.savez(tmp_path / "v.npz", ids=np.array(["i0"]), vectors=np.ones((1, 2)))
    with pytest.raises(DataError, match=r"v.npz: lacks array\(s\) \['item_ids'\]"):
        load_item_vectors(tmp_path / "v.npz", log)
    np.savez(tmp_path / "w.npz", item_ids=np.array(["i0", "i1"]), vectors=np.ones((3, 2)))
    with pytest.raises(DataError, match=r"w.npz: 'item_ids' must be \(n,\) and 'vectors' \(n, d\), got shapes"):
        load_item_vectors(tmp_path / "w.npz", log)
    with pytest.raises(DataError, match=r"nope.csv: no such item-vectors file"):
        load_item_vectors(tmp_path / "nope.csv", log)
