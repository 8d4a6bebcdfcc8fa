"""`InteractionLog.from_frames`: every bad-input case names the source, column and an offending row."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
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
    with pytest.raises(
        DataError, match=r"1 exact duplicate interaction row\(s\), first at row 4 \(user 'b', item 'x'\)"
    ):
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


# Issue 15: values accepted though wrong, ids merged, joins that match nothing, row naming.

@pytest.mark.parametrize("unit, scale", [("milliseconds", 10**3), ("microseconds", 10**6), ("nanoseconds", 10**9)])
def test_epoch_milli_micro_nanoseconds_become_seconds_with_a_log_line(caplog, unit, scale):
    stamps = [1_700_000_030, 1_700_000_010, 1_700_000_020, 1_700_000_040]
    with caplog.at_level(logging.WARNING, logger="recsim_env.data.schema"):
        data = build(frame(timestamp=[t * scale + 7 for t in stamps]))
    assert sorted(data.interactions["timestamp"].tolist()) == sorted(stamps)
    assert f"column 'timestamp' read as epoch {unit}" in caplog.text and "converted to seconds" in caplog.text


def test_epoch_seconds_are_left_alone(caplog):
    with caplog.at_level(logging.WARNING, logger="recsim_env.data.schema"):
        data = build(frame(timestamp=[1_700_000_030, 10, 20, 99_999_999_999]))
    assert data.interactions["timestamp"].max() == 99_999_999_999 and "read as epoch" not in caplog.text


def test_a_column_mixing_seconds_and_milliseconds_is_refused_naming_both():
    with pytest.raises(
        DataError,
        match=r"column 'timestamp' \(timestamp\) mixes epoch units: row 1 \(value "
        r"1700000000\) reads as seconds, row 2 \(value 1700000000000\) as milliseconds",
    ):
        build(frame(timestamp=[5, 1_700_000_000, 1_700_000_000_000, 6]))


@pytest.mark.parametrize("bad", [1e20, float("inf"), -1e21])
def test_timestamps_beyond_every_unit_or_infinite_are_refused(bad):
    with pytest.raises(DataError, match=r"column 'timestamp' \(timestamp\) has value\(s\) too large for epoch seconds, "
                                        r"milliseconds, microseconds or nanoseconds \(1e20 or more\), first at row 2"):
        build(frame(timestamp=[1.0, 2.0, bad, 3.0]))


@pytest.mark.parametrize("column", ["click", "purchase"])
def test_clicks_and_purchases_must_be_0_or_1(column):
    mapping = ColumnMapping(**{column: column})
    with pytest.raises(DataError, match=rf"events\.csv: column '{column}' \({column}\) must be 0 or 1, first at row 1 "
                                        r"\(value 5\)"):
        build(frame(**{column: [1, 5, 0, 1]}), mapping=mapping)
    assert build(frame(**{column: [1.0, 0.0, 0, 1]}), mapping=mapping).responses == (column,)


def test_float_ids_beyond_2_pow_53_are_refused_not_merged():
    items = pd.Series([9007199254740993, 9007199254740992, 1.5, 2.0])  # float64: the first two are one number
    with pytest.raises(DataError, match=r"interaction column 'item_id' holds ids as floating-point numbers; "
                                        r"9007199254740992\.0 at row 0 is 2\*\*53 or more"):
        build(frame(item_id=items))


def test_int_ids_stay_exact_and_string_ids_keep_their_spelling():
    big = [9007199254740993, 9007199254740992, 7, 7]
    data = build(frame(item_id=big, user_id=["007", "7", "0042", "42"]))
    assert list(data.item_ids) == ["9007199254740993", "9007199254740992", "7"]
    assert list(data.user_ids) == ["007", "7", "0042", "42"]


def test_user_table_matching_no_interaction_names_both_sources_and_an_id():
    users = pd.DataFrame({"user_id": [1, 2, 3], "age": [30, 40, 50]})
    inter = frame(user_id=[1.0, 1.0, 2.0, 3.0])
    with pytest.raises(DataError, match=r"events\.csv: none of the 3 user id\(s\) of the interactions match the user "
                                        r"table \(users\.csv\): e\.g\. '1\.0' at row 0 \(column 'user_id'\) against "
                                        r"the table's '1'; ids are compared as spelled"):
        InteractionLog.from_frames(inter, users=_labelled(users, "users.csv"), mapping=RATED, source="events.csv")


def test_users_missing_from_the_user_table_are_refused_not_given_nan_features():
    users = _labelled(pd.DataFrame({"user_id": ["a", "b"], "age": [30, 40]}), "users.csv")
    with pytest.raises(DataError, match=r"events\.csv: 1 interaction\(s\) name users absent from the user table "
                                        r"\(users\.csv\), first at row 3 \(user id 'c' in column 'user_id'\); "
                                        r"their features would be NaN"):
        InteractionLog.from_frames(frame(), users=users, mapping=RATED, source="events.csv")


def test_item_table_matching_nothing_names_both_sources_even_when_dropping():
    items = _labelled(pd.DataFrame({"item_id": ["X", "Y", "Z"]}), "items.csv")
    for option in ("error", "drop"):
        with pytest.raises(DataError, match=r"events\.csv: none of the 3 item id\(s\) of the interactions match the "
                                            r"item table \(items\.csv\): e\.g\. 'x' at row 0 \(column 'item_id'\) "
                                            r"against the table's 'X'"):
            InteractionLog.from_frames(frame(), items, mapping=RATED, source="events.csv", on_unknown_items=option)


def test_rows_of_a_dataframe_are_named_by_its_index_label():
    inter = frame(rating=[4, 5, "five", 1]).set_axis([10, 11, 12, 13])
    with pytest.raises(DataError, match=r"first at row 12 \(value 'five'\)"):
        build(inter)


def _labelled(table: pd.DataFrame, source: str) -> pd.DataFrame:
    table.attrs["source"] = source
    return table
