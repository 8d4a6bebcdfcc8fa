"""``recsim offline-eval`` end to end on a small CSV log."""

from __future__ import annotations

import pandas as pd
import pytest
from tinylog import make_tiny_log

from recsim_env.cli.main import main


@pytest.fixture(scope="module")
def csv_log(tmp_path_factory):
    log = make_tiny_log(n_users=25, n_items=150, per_user=12, seed=1)
    inter = log.interactions.assign(
        user_id=lambda f: log.user_ids[f["user"]], item_id=lambda f: log.item_ids[f["item"]]
    )
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    inter[["user_id", "item_id", "timestamp", "rating"]].to_csv(path, index=False)
    return path


def test_offline_eval_writes_csv_and_prints_table(csv_log, tmp_path, capsys):
    out = tmp_path / "res.csv"
    code = main(["offline-eval", "--models", "popularity,itemknn", "--dataset", str(csv_log), "--out", str(out),
                 "--negative-seeds", "2"])
    assert code == 0
    frame = pd.read_csv(out)
    assert list(frame["model"]) == ["Popularity", "Item-KNN"]
    for column in ("ncf_HR@10", "ncf_NDCG@10", "full_Recall@10", "full_MRR@10", "full_coverage", "fit_s"):
        assert frame[column].between(0, 1e6).all(), column
    printed = capsys.readouterr().out
    assert "Popularity" in printed and "Item-KNN" in printed and "NCF protocol" in printed


def test_offline_eval_unknown_model_is_a_clear_error(csv_log, tmp_path, capsys):
    code = main(
        ["offline-eval", "--models", "popularity,nope", "--dataset", str(csv_log), "--out", str(tmp_path / "x.csv")]
    )
    assert code == 2
    assert "unknown or no model(s) ['nope']" in capsys.readouterr().err
