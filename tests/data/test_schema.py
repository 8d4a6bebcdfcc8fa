"""`InteractionLog.from_frames`: every bad-input case names the source, column and an offending row."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from recsim_env.data.log import ColumnMapping, InteractionLog
from recsim_env.errors import DataError

RATED = ColumnMapping(rating="rating")


def frame(**overrides: list) -> pd.DataFrame:
    base = {"user_id": ["a", "a", "b", "c"], "item_id": ["x", "y", "x", "z"], "timestamp": [30, 10, 20, 40],
            "rating": [4, 5, 3, 1]}
    return pd.DataFrame(base | overrides)


def build(inter: pd.DataFrame, **kwargs) -> InteractionLog:
    return InteractionLog.from_frames(inter, mapping=kwargs.pop("mapping", RATED), source="events.csv", **kwargs)


def test_valid_frame_is_indexed_and_sorted_by_user_then_time():
    data = build(frame())
    assert data.interactions[["user", "item", "timestamp"]].values.tolist() == [
        [0, 1, 10], [0, 0, 30], [1, 0, 20], [2, 2, 40]]
    assert data.interactions["user"].dtype == np.int32 and data.interactions["timestamp"].dtype == np.int64


def test_missing_or_misnamed_column_lists_what_the_table_has():
    with pytest.raises(DataError, match=r"events\.csv: interaction table lacks column\(s\) 'stars' \(for rating\); "
                                        r"it has \['user_id', 'item_id', 'timestamp', 'rating'\]"):
        build(frame(), mapping=ColumnMapping(rating="stars"))


@pytest.mark.parametrize("bad", [np.nan, "", "  "])
def test_nan_or_empty_ids_name_column_and_row(bad):
    with pytest.raises(DataError, match=r"events\.csv: interaction column 'item_id' has 1 empty or NaN id\(s\), "
                                        r"first at row 2"):
        build(frame(item_id=["x", "y", bad, "z"]))


def test_non_numeric_rating_names_column_row_and_value():
    with pytest.raises(DataError, match=r"column 'rating' \(rating\) has non-numeric value\(s\), first at row 1 "
                                        r"\(value 'five'\)"):
        build(frame(rating=[4, "five", 3, 1]))


def test_missing_rating_names_row():
    with pytest.raises(DataError, match=r"column 'rating' \(rating\) has missing value\(s\), first at row 3"):
        build(frame(rating=[4, 5, 3, None]))


def test_unparseable_timestamp_among_epoch_seconds_names_the_bad_value():
    with pytest.raises(DataError, match=r"column 'timestamp' \(timestamp\) has unparseable value\(s\), first at "
                                        r"row 2 \(value 'yesterday'\)"):
        build(frame(timestamp=[30, 10, "yesterday", 40]))


def test_half_bad_epoch_seconds_name_the_bad_row_not_a_good_number():
    # Two numbers and two words: the column is read as epoch seconds (ties go to numbers), so the
    # first word is at fault, not the first number.
    with pytest.raises(DataError, match=r"first at row 1 \(value 'soon'\); expected epoch seconds"):
        build(frame(timestamp=[30, "soon", "later", 40]))


def test_unparseable_date_string_names_the_bad_value():
    dates = ["2024-01-01", "2024-01-02 10:00", "not a date", "2024-02-01"]
    with pytest.raises(DataError, match=r"first at row 2 \(value 'not a date'\)"):
        build(frame(timestamp=dates))


def test_date_strings_become_epoch_seconds():
    data = build(frame(timestamp=["1970-01-01 00:00:30", "1970-01-01 00:00:10", "1970-01-01T00:00:20Z",
                                  "1970-01-01 00:00:40"]))
    assert sorted(data.interactions["timestamp"].tolist()) == [10, 20, 30, 40]


def test_exact_duplicates_are_dropped_with_a_logged_count(caplog):
    dup = pd.concat([frame(), frame().iloc[[0, 2]]], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="recsim_env.data.schema"):
        data = build(dup)
    assert data.n_interactions == 4
    assert "events.csv: dropped 2 exact duplicate interaction row(s)" in caplog.text


def test_duplicates_can_be_refused_naming_the_row():
    dup = pd.concat([frame(), frame().iloc[[2]]], ignore_index=True)
    with pytest.raises(DataError, match=r"1 exact duplicate interaction row\(s\), first at row 4 \(user 'b', item 'x'\)"):
        build(dup, on_duplicates="error")


def test_unknown_items_name_the_input_row_even_after_duplicates_are_dropped():
    inter = frame(item_id=["x", "x", "x", "q"], timestamp=[1, 1, 2, 3])  # rows 0, 1 duplicate; row 3 unknown
    items = pd.DataFrame({"item_id": ["x", "y"]})
    with pytest.raises(DataError, match=r"1 interaction\(s\) name items absent from the item table .*first at row 3 "
                                        r"\(item id 'q' in column 'item_id'\)"):
        InteractionLog.from_frames(inter.assign(rating=1), items, mapping=RATED, source="events.csv")


def test_unknown_items_can_be_dropped_with_a_logged_count(caplog):
    items = pd.DataFrame({"item_id": ["x", "y"]})
    with caplog.at_level(logging.WARNING, logger="recsim_env.data.schema"):
        data = InteractionLog.from_frames(frame(), items, mapping=RATED, source="events.csv",
                                          on_unknown_items="drop")
    assert data.n_interactions == 3 and data.n_items == 2
    assert "dropped 1 interaction(s) naming items absent from the item table" in caplog.text


def test_empty_log_is_refused():
    with pytest.raises(DataError, match=r"events\.csv: the interaction log is empty"):
        build(frame().iloc[:0])


def test_repeated_item_ids_in_the_item_table_name_the_row():
    items = pd.DataFrame({"item_id": ["x", "y", "z", "y"]})
    with pytest.raises(DataError, match=r"item table repeats id\(s\) in column 'item_id', first at row 3"):
        InteractionLog.from_frames(frame(), items, mapping=RATED)


def test_user_table_order_sets_user_indices_and_features():
    users = pd.DataFrame({"user_id": ["c", "b", "a", "unused"], "age": [30, 20, 10, 99]})
    data = InteractionLog.from_frames(frame(), users=users, mapping=RATED)
    assert list(data.user_ids) == ["c", "b", "a"] and data.users["age"].tolist() == [30, 20, 10]


def test_ids_of_different_types_name_the_same_thing():
    items = pd.DataFrame({"item_id": [1, 2]})
    data = InteractionLog.from_frames(pd.DataFrame({"user_id": [7, 7], "item_id": ["1", "2"], "timestamp": [1, 2]}),
                                      items)
    assert data.interactions["item"].tolist() == [0, 1]


def test_bad_repair_option_is_refused():
    with pytest.raises(DataError, match="on_duplicates must be 'drop' or 'error', got 'keep'"):
        build(frame(), on_duplicates="keep")
