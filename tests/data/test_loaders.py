"""Every loader format on small files written here, and the bad-file cases each loader refuses."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from datafiles import (
    ATOMIC_INTER,
    ATOMIC_ITEM,
    ML100K_DATA,
    ML100K_ITEMS,
    lines,
    write,
    write_atomic,
    write_ml100k,
    zip_folder,
)

from recsim_env.data.loaders import (
    load_atomic,
    load_dataset,
    load_frames,
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
)
from recsim_env.data.schema import ColumnMapping
from recsim_env.errors import DataError


def test_ml100k_folder_titles_years_genres_and_user_features(tmp_path):
    data = load_dataset(write_ml100k(tmp_path / "ml-100k"))
    assert (data.name, data.n_interactions, data.n_users, data.n_items) == ("ml-100k", 6, 3, 3)
    assert list(data.user_ids) == ["1", "2", "10"]  # numeric id order, not file order or string order
    assert list(data.items["title"]) == ["Toy Story", "Café Society", "unknown"]  # latin-1, year suffix cut
    assert data.items["year"].iloc[0] == 1995 and data.items["year"].iloc[1] == 1996  # from the release date
    assert math.isnan(data.items["year"].iloc[2])
    assert data.items["genres"].iloc[0] == ("Animation", "Comedy")
    assert data.users["age"].tolist() == [24.0, 33.0, 53.0]
    assert data.users["gender"].tolist() == ["M", "F", "F"]
    assert data.users["occupation"].tolist() == ["technician", "writer", "other"]
    assert "zip_code" not in data.users.columns
    first = data.interactions.iloc[0]
    assert (first["user"], first["item"], first["timestamp"], first["rating"]) == (0, 0, 881240000, 5.0)


def test_ml100k_zip_with_nested_folder_equals_the_folder(tmp_path):
    folder = write_ml100k(tmp_path / "ml-100k")
    archive = zip_folder(folder, tmp_path / "ml-100k.zip", prefix="ml-100k/")
    from_zip, from_dir = load_dataset(archive), load_dataset(folder)
    assert from_zip.name == "ml-100k"
    assert from_zip.fingerprint() == from_dir.fingerprint()
    assert from_zip.items["genres"].tolist() == from_dir.items["genres"].tolist()


def test_ml100k_without_u_genre_uses_the_standard_genre_names(tmp_path):
    folder = write_ml100k(tmp_path / "x")
    (folder / "u.genre").unlink()
    assert load_movielens_100k(folder).items["genres"].iloc[1] == ("Drama",)


def test_ml1m_dat_files(tmp_path):
    folder = write(tmp_path / "ml-1m", {
        "ratings.dat": lines(["1::10::5::978300760", "1::20::3::978302109", "6::10::4::978301968"]),
        "movies.dat": lines(["10::American President, The (1995)::Comedy|Drama|Romance", "20::Heat (1995)::Action"]),
        "users.dat": lines(["6::F::56::16::70072", "1::F::1::10::48067"]),
    }, encoding="latin-1")
    data = load_dataset(folder)
    assert (data.name, data.n_interactions, data.n_users, data.n_items) == ("ml-1m", 3, 2, 2)
    assert data.items["title"].tolist() == ["American President, The", "Heat"]
    assert data.items["genres"].iloc[0] == ("Comedy", "Drama", "Romance")
    assert data.users["occupation"].tolist() == ["K-12 student", "self-employed"]  # codes mapped to names
    assert data.users["age"].tolist() == [1.0, 56.0]


def test_ml1m_non_numeric_movie_id_names_file_and_line(tmp_path):
    folder = write(tmp_path / "m", {"ratings.dat": lines(["1::10::5::1"]),
                                    "movies.dat": lines(["10::X (2000)::Drama", "tt11::Y (2001)::Drama"])})
    with pytest.raises(DataError, match=r"movies\.dat: line 2: id column 'item_id' is not a number: 'tt11'"):
        load_movielens_1m(folder)


def test_ml1m_without_users_dat(tmp_path):
    folder = write(
        tmp_path / "m", {"ratings.dat": lines(["1::10::5::1"]), "movies.dat": lines(["10::X (2000)::Drama"])}
    )
    data = load_movielens_1m(folder)
    assert data.users.columns.tolist() == ["user_id"] and data.items["year"].iloc[0] == 2000


def test_movielens_latest_csv_with_quoted_titles(tmp_path):
    folder = write(tmp_path / "ml-latest-small", {
        "ratings.csv": lines(["userId,movieId,rating,timestamp", "10,1,4.0,964982703", "2,1,3.5,964981247",
                              "2,2,0.5,964982224"]),
        "movies.csv": lines(["movieId,title,genres", '1,"American President, The (1995)",Comedy|Drama',
                             "2,Stranger Things,(no genres listed)"]),
    })
    data = load_dataset(zip_folder(folder, tmp_path / "ml-latest-small.zip"))
    assert data.name == "ml-latest-small" and list(data.user_ids) == ["2", "10"]
    assert data.items["title"].tolist() == ["American President, The", "Stranger Things"]
    assert data.items["genres"].tolist() == [("Comedy", "Drama"), ()]
    assert np.isnan(data.items["year"].iloc[1])
    assert sorted(data.interactions["rating"].tolist()) == [0.5, 3.5, 4.0]


def test_movielens_latest_missing_header_column_names_file(tmp_path):
    folder = write(tmp_path / "m", {"ratings.csv": lines(["user,movieId,rating,timestamp", "1,1,4,1"]),
                                    "movies.csv": lines(["movieId,title,genres", "1,X,Drama"])})
    with pytest.raises(DataError, match=r"ratings\.csv.*lacks column\(s\) \['userId'\]"):
        load_movielens_latest(folder)


def test_recbole_atomic_files(tmp_path):
    data = load_dataset(write_atomic(tmp_path / "shop"))
    assert (data.name, data.n_interactions, data.n_users, data.n_items) == ("shop", 4, 2, 3)
    assert data.items["title"].tolist() == ["The Big Sleep", "Heat", "Amélie"]  # token_seq title kept whole
    assert data.items["genres"].iloc[0] == ("Crime", "Film-Noir")
    assert data.items["year"].tolist() == [1946.0, 1995.0, 2001.0]
    assert data.items["price"].tolist() == [9.5, 3.0, 4.25]  # float fields become numeric attributes
    assert list(data.user_ids) == ["u2", "u1"]  # the user file's order
    assert data.users["age"].tolist() == [31.0, 25.0] and data.users["zip_code"].tolist() == ["01002", "55455"]


def test_atomic_inter_path_without_timestamp_and_with_labels(tmp_path):
    folder = write_atomic(tmp_path / "clicks", stem="clicks", item=None, user=None,
                          inter=["user_id:token\titem_id:token\tlabel:float", "a\tx\t1", "a\ty\t0", "b\tx\t1"])
    data = load_dataset(folder / "clicks.inter")
    assert data.responses == ("click",)
    assert data.interactions["timestamp"].tolist() == [0, 1, 2]  # row order stands in for time


def test_atomic_several_inter_files_need_a_stem(tmp_path):
    folder = write_atomic(tmp_path / "multi", stem="a")
    write_atomic(folder, stem="b")
    with pytest.raises(DataError, match="several RecBole .inter"):
        load_atomic(folder)
    assert load_atomic(folder, stem="b").name == "b"


def test_atomic_bad_header_type_names_file_and_field(tmp_path):
    folder = write_atomic(tmp_path / "s", inter=["user_id:token\titem_id:tokn", "a\tb"], item=None, user=None)
    with pytest.raises(DataError, match=r"shop\.inter: line 1: header field 'item_id:tokn'"):
        load_dataset(folder)


def test_atomic_non_numeric_float_field_names_line(tmp_path):
    item = ATOMIC_ITEM[:2] + ["i2\tHeat\t1995\tAction\tcheap", ATOMIC_ITEM[3]]
    with pytest.raises(DataError, match=r"shop\.item: line 3: item column 'price' is not a number: 'cheap'"):
        load_dataset(write_atomic(tmp_path / "s", item=item))


def test_bad_utf8_names_file_and_line(tmp_path):
    folder = write_atomic(tmp_path / "s")
    inter = (folder / "shop.inter").read_bytes().replace(b"u2\ti3", b"u\xff2\ti3")
    (folder / "shop.inter").write_bytes(inter)
    with pytest.raises(DataError, match=r"shop\.inter: line 5: bytes b'\\xff' are not valid utf-8"):
        load_dataset(folder)


def test_truncated_file_names_file_and_last_line(tmp_path):
    folder = write_ml100k(tmp_path / "ml-100k")
    (folder / "u.data").write_text(lines(ML100K_DATA)[:-12])  # cut mid-line, as an interrupted copy would
    with pytest.raises(DataError, match=r"u\.data: line 6 has too few fields \(expected 4 separated by '\\t', got 3; "
                                        r"it is the last line: the file looks truncated\)"):
        load_dataset(folder)


def test_wrong_field_count_in_the_middle_names_line(tmp_path):
    items = ML100K_ITEMS[:1] + ["2|Extra|field|" + ML100K_ITEMS[1][2:]] + ML100K_ITEMS[2:]
    with pytest.raises(
        DataError, match=r"u\.item: line 2 has too many fields \(expected 24 separated by '\|', got 26\)"
    ):
        load_dataset(write_ml100k(tmp_path / "m", items=items))


def test_bad_genre_flag_and_release_date_name_line(tmp_path):
    items = ML100K_ITEMS[:2] + [ML100K_ITEMS[2][:-1] + "2"]
    with pytest.raises(DataError, match=r"u\.item: line 3: genre flag 'Western' must be 0 or 1, got '2'"):
        load_dataset(write_ml100k(tmp_path / "a", items=items))
    items = [ML100K_ITEMS[0].replace("01-Jan-1995", "soon")] + ML100K_ITEMS[1:]
    with pytest.raises(DataError, match=r"u\.item: line 1: release date 'soon'"):
        load_dataset(write_ml100k(tmp_path / "b", items=items))


def test_non_numeric_age_names_file_and_line(tmp_path):
    users = ["10|53|F|other|1", "1|young|M|technician|2", "2|33|F|writer|3"]
    with pytest.raises(DataError, match=r"u\.user: line 2: user column 'age' is not a number: 'young'"):
        load_dataset(write_ml100k(tmp_path / "m", users=users))


def test_non_numeric_rating_in_a_file_names_file_line_and_value(tmp_path):
    data = ML100K_DATA[:2] + ["2\t3\tgood\t881250000"] + ML100K_DATA[3:]
    with pytest.raises(DataError, match=r"u\.data: column 'rating' \(rating\) has non-numeric value\(s\), "
                                        r"first at line 3 \(value 'good'\)"):
        load_dataset(write_ml100k(tmp_path / "m", data=data))


def test_unknown_item_in_a_file_names_line_and_id(tmp_path):
    data = ML100K_DATA + ["1\t99\t3\t881250000"]
    with pytest.raises(DataError, match=r"u\.data: 1 interaction\(s\) name items absent .*line 7 \(item id '99'"):
        load_dataset(write_ml100k(tmp_path / "m", data=data))


def test_truncated_zip_is_a_data_error(tmp_path):
    archive = zip_folder(write_ml100k(tmp_path / "m"), tmp_path / "ml-100k.zip")
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataError, match=r"ml-100k\.zip: not a folder and not a readable zip"):
        load_dataset(archive)


def test_header_only_file_is_an_empty_log_naming_the_file(tmp_path):
    with pytest.raises(DataError, match=r"shop\.inter: the interaction log is empty"):
        load_dataset(write_atomic(tmp_path / "s", inter=ATOMIC_INTER[:1]))


def test_unknown_name_lists_known_names(tmp_path):
    with pytest.raises(DataError, match=r"unknown dataset 'ml-99k'.*known: ml-100k"):
        load_dataset("ml-99k", cache_dir=tmp_path)


def test_folder_without_a_known_format_says_what_it_expects(tmp_path):
    folder = write(tmp_path / "junk", {"notes.txt": "hello"})
    with pytest.raises(DataError, match=r"no supported dataset found \(it has notes\.txt\).*u\.data"):
        load_dataset(folder)


def test_load_frames_csv_and_parquet_with_a_mapping(tmp_path):
    inter = pd.DataFrame({"uid": ["a", "a", "b"], "sku": [1, 2, 1], "when": ["2024-01-01 10:00", "2024-01-01 10:05",
                                                                          "2024-01-02"], "bought": [1, 0, 1]})
    items = pd.DataFrame({"sku": [1, 2], "name": ["kettle", "mug"], "weight": [1.2, 0.3]})
    inter.to_csv(tmp_path / "events.csv", index=False)
    items.to_parquet(tmp_path / "items.parquet")
    mapping = ColumnMapping(user="uid", item="sku", timestamp="when", purchase="bought", title="name")
    data = load_frames({"interactions": tmp_path / "events.csv", "items": tmp_path / "items.parquet"}, mapping)
    assert (data.name, data.n_interactions, data.n_items, data.responses) == ("events", 3, 2, ("purchase",))
    assert data.items["title"].tolist() == ["kettle", "mug"] and data.items["weight"].tolist() == [1.2, 0.3]
    assert data.interactions["timestamp"].iloc[1] - data.interactions["timestamp"].iloc[0] == 300


def test_load_frames_guesses_canonical_columns_and_load_dataset_takes_a_csv(tmp_path):
    path = tmp_path / "log.csv"
    pd.DataFrame({"user_id": [1, 2], "item_id": [5, 6], "timestamp": [10, 20], "rating": [4, 2]}).to_csv(
        path, index=False
    )
    assert load_dataset(path).responses == ("rating",)


def test_load_frames_refuses_unknown_keys_and_malformed_csv(tmp_path):
    with pytest.raises(DataError, match=r"expected keys 'interactions'.*got \['interactions', 'item'\]"):
        load_frames({"interactions": tmp_path / "a.csv", "item": tmp_path / "b.csv"})
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\n1,2,3\n4,5,6,7\n")
    with pytest.raises(
        DataError, match=r"bad\.csv: line 3 has too many fields \(expected 3 separated by ',', got 4\): '4,5,6,7'"
    ):
        load_frames(bad)


# Issue 15: ids are labels spelled as in the file; one line-numbering convention; content, not suffix.

def test_csv_ids_keep_their_spelling_and_are_never_float_merged(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(lines(["user_id,item_id,timestamp", "007,9007199254740993,1", "7,9007199254740992,2",
                           "0042,1.5,3", "42,1.5,4"]))
    data = load_frames(path)
    assert list(data.user_ids) == ["007", "7", "0042", "42"]
    assert list(data.item_ids) == ["9007199254740993", "9007199254740992", "1.5"]


def test_csv_item_table_joins_on_the_spelled_ids(tmp_path):
    write(tmp_path, {"events.csv": lines(["user_id,item_id,timestamp", "1,9007199254740993,1", "1,9007199254740992,2"]),
                     "items.csv": lines(["item_id,price", "9007199254740992,2.5", "9007199254740993,7.5",
                                                      "1.5,1"])})
    data = load_frames({"interactions": tmp_path / "events.csv", "items": tmp_path / "items.csv"})
    assert list(data.item_ids) == ["9007199254740992", "9007199254740993", "1.5"]
    assert data.items["price"].tolist() == [2.5, 7.5, 1.0] and data.interactions["item"].tolist() == [1, 0]


def test_load_frames_names_the_file_line_with_the_header_as_line_1(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(lines(["user_id,item_id,timestamp,rating", "1,1,1,4", "", "1,2,2,five"]))
    with pytest.raises(DataError, match=r"events\.csv: column 'rating' \(rating\) has non-numeric value\(s\), "
                                        r"first at line 4 \(value 'five'\)"):
        load_frames(path)


def test_load_frames_quoted_csv_keeps_file_lines_across_multiline_fields(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(lines(["user_id,item_id,timestamp,note", '1,1,1,"two', 'lines"', "1,2,x,plain"]))
    with pytest.raises(DataError, match=r"first at line 4 \(value 'x'\)"):
        load_frames(path)


def test_load_frames_short_row_of_a_quoted_csv_names_the_line(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text(lines(["user_id,item_id,timestamp", '1,"a,b",1', "1,2"]))
    with pytest.raises(DataError, match=r"short\.csv: line 3 has too few fields \(expected 3 separated by ',', got 2; "
                                        r"it is the last line: the file looks truncated\): '1,2'"):
        load_frames(short)


def test_a_parquet_file_under_a_csv_name_is_read_by_its_content(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame({"user_id": ["a", "b"], "item_id": [1, 2], "timestamp": [1, 2]}).to_parquet(path)
    assert load_dataset(path).n_interactions == 2


def test_ml100k_user_ids_spelled_differently_in_two_files_are_refused(tmp_path):
    data = [row.replace("10\t", "010\t", 1) if row.startswith("10\t") else row for row in ML100K_DATA]
    with pytest.raises(DataError, match=r"u\.data: 2 interaction\(s\) name users absent from the user table "
                                        r"\(.*u\.user\), first at line 2 \(user id '010' in column 'user_id'\)"):
        load_dataset(write_ml100k(tmp_path / "m", data=data))


def test_movielens_latest_user_ids_are_exact_labels_in_numeric_order(tmp_path):
    folder = write(tmp_path / "ml-latest", {
        "ratings.csv": lines(["userId,movieId,rating,timestamp", "9007199254740995,1,4,1", "9007199254740993,1,3,2",
                              "9007199254740994,1,5,3", "10,1,5,4"]),  # as floats: ...996, ...992, ...994
        "movies.csv": lines(["movieId,title,genres", "1,X (2000),Drama"])})
    data = load_movielens_latest(folder)
    assert list(data.user_ids) == ["10", "9007199254740993", "9007199254740994", "9007199254740995"]
