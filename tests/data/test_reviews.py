"""Amazon Reviews 2023 / 2018 and Yelp on small files written here in each published form, plain and
gzip, including the malformed lines each format refuses or skips."""

from __future__ import annotations

import gzip
import json
import logging

import numpy as np
import pytest
from datafiles import zip_folder

from recsim_env.cli.main import main
from recsim_env.data import review_lines
from recsim_env.data.filters import kcore
from recsim_env.data.loaders import load_dataset
from recsim_env.data.reviews import load_amazon, load_yelp
from recsim_env.errors import ConfigError, DataError

MS = 1_588_687_728_923  # 2020-05-05 14:08:48.923 UTC, as Amazon 2023 writes times


def jsonl(rows: list[dict | str]) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def put(path, text: str, compress: bool = False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


def review_2023(user: str, item: str, rating: float, ms: int) -> dict:
    return {"rating": rating, "title": "ok", "text": "fine, thanks", "images": [], "asin": item + "-v",
            "parent_asin": item, "user_id": user, "timestamp": ms, "helpful_vote": 0, "verified_purchase": True}


REVIEWS_2023 = [review_2023("AE1", "B07", 5.0, MS), review_2023("AE1", "0042", 3.0, MS + 60_000),
                review_2023("AE2", "0042", 4.0, MS + 1_500)]
META_2023 = [{"main_category": "All Beauty", "title": "Soap", "average_rating": 4.1, "categories": [],
              "parent_asin": "B07"},
             {"main_category": "All Beauty", "title": "Brush", "categories": ["Beauty", "Tools", "Beauty"],
              "parent_asin": "0042", "details": {"Brand": "X"}},
             {"main_category": "All Beauty", "title": "Never reviewed", "categories": [], "parent_asin": "ZZ"}]


def write_2023(folder, compress: bool = False, rows=REVIEWS_2023, meta=META_2023):
    suffix = ".jsonl.gz" if compress else ".jsonl"
    put(folder / f"meta_All_Beauty{suffix}", jsonl(meta), compress)
    return put(folder / f"All_Beauty{suffix}", jsonl(rows), compress)


@pytest.mark.parametrize("compress", [False, True])
def test_amazon_2023_ids_seconds_titles_and_categories(tmp_path, compress):
    data = load_dataset(write_2023(tmp_path, compress))
    assert (data.name, data.n_interactions, data.n_users, data.n_items) == ("All_Beauty", 3, 2, 2)
    assert list(data.user_ids) == ["AE1", "AE2"] and list(data.item_ids) == ["B07", "0042"]  # "0042" as spelled
    rows = data.interactions[["user", "item", "timestamp", "rating"]].to_numpy().tolist()
    assert rows == [[0, 0, MS // 1000, 5.0], [0, 1, MS // 1000 + 60, 3.0], [1, 1, MS // 1000 + 2, 4.0]]  # ms, floored
    assert list(data.items["title"]) == ["Soap", "Brush"]  # only reviewed items: "ZZ" is left out
    # the category list, deduplicated; main_category only where the list is empty
    assert list(data.items["genres"]) == [("All Beauty",), ("Beauty", "Tools")]


def test_gzip_plain_folder_and_explicit_paths_give_one_log(tmp_path):
    plain = write_2023(tmp_path / "plain")
    packed = write_2023(tmp_path / "packed", compress=True)
    logs = [load_dataset(plain), load_dataset(packed), load_dataset(tmp_path / "plain"),
            load_amazon(packed, tmp_path / "packed" / "meta_All_Beauty.jsonl.gz"),
            load_dataset(zip_folder(tmp_path / "packed", tmp_path / "beauty.zip", prefix="beauty/"))]
    assert len({d.fingerprint() for d in logs}) == 1
    assert all(list(d.items["title"]) == ["Soap", "Brush"] for d in logs)
    assert list(load_amazon(plain).items["title"]) == ["", ""]  # no meta given: no content


def test_amazon_2018_with_python_literal_and_broken_metadata_lines(tmp_path, caplog):
    rows = [{"overall": 4.0, "verified": True, "reviewTime": "09 1, 2016", "reviewerID": "A1", "asin": "0001",
             "reviewerName": "x", "reviewText": "y", "summary": "z", "unixReviewTime": 1472688000},
            {"overall": 2.0, "reviewerID": "A2", "asin": "0002", "unixReviewTime": 1472688100},
            {"overall": 5.0, "reviewerID": "A2", "asin": "0001", "unixReviewTime": 1472688200}]
    meta = [{"category": ["Books", "Fiction"], "title": "A Novel", "asin": "0001", "also_buy": []},
            "{'category': ['Books'], 'title': 'Single \"quoted\"', 'asin': '0002', 'rank': None}",  # not JSON
            '{"title": "cut off", "asin": "00',  # broken: skipped and counted
            {"category": [], "title": "A repeat", "asin": "0001"}]  # 2018 dumps repeat ids: the first wins
    put(tmp_path / "meta_Books.json.gz", jsonl(meta), compress=True)
    path = put(tmp_path / "Books_5.json.gz", jsonl(rows), compress=True)  # a 5-core file shares Books' meta
    with caplog.at_level(logging.WARNING):
        data = load_dataset(path)
    assert (data.name, data.n_interactions) == ("Books_5", 3)
    assert data.interactions["timestamp"].tolist() == [1472688000, 1472688100, 1472688200]  # seconds, as written
    assert list(data.items["title"]) == ["A Novel", 'Single "quoted"']
    assert list(data.items["genres"]) == [("Books", "Fiction"), ("Books",)]
    assert "skipped 1 line(s) that are neither JSON objects nor Python dict literals, first at line 3" in caplog.text


def write_yelp(folder, compress: bool = False, names=("review.json", "business.json", "user.json"),
               reviews_rows=None, users_rows=None):
    reviews_rows = reviews_rows or [
        {"review_id": "r1", "user_id": "u-1", "business_id": "b-9", "stars": 4, "useful": 0, "funny": 0,
         "cool": 0, "text": "Great tacos", "date": "2018-07-07 22:09:11"},
        {"review_id": "r2", "user_id": "u-2", "business_id": "b-9", "stars": 2, "text": "meh",
         "date": "2012-01-03 15:28:18"},
        {"review_id": "r3", "user_id": "u-1", "business_id": "b-3", "stars": 5, "text": "!",
         "date": "2019-12-31 23:59:59"}]
    business = [{"business_id": "b-3", "name": "Noodle Bar", "city": "Tucson", "stars": 4.5, "categories": None},
                {"business_id": "b-9", "name": "Taco Stop", "categories": "Mexican, Restaurants,  Tacos"},
                {"business_id": "b-0", "name": "Unreviewed", "categories": "Bars"}]
    users_rows = users_rows or [
        {"user_id": "u-2", "name": "B", "review_count": 10, "yelping_since": "2010-01-01 00:00:00", "useful": 3,
         "funny": 1, "cool": 0, "elite": "", "friends": "u-1, u-7", "fans": 2, "average_stars": 3.5},
        {"user_id": "u-1", "name": "A", "review_count": 1, "useful": 0, "funny": 0, "cool": 0, "fans": 0,
         "average_stars": 4.5}]
    for name, rows in zip(names, (reviews_rows, business, users_rows)):
        put(folder / (name + (".gz" if compress else "")), jsonl(rows), compress)
    return folder


def test_yelp_folder_dates_categories_and_user_features(tmp_path):
    data = load_dataset(write_yelp(tmp_path / "yelp"))
    assert (data.name, data.n_interactions, data.n_users, data.n_items) == ("yelp", 3, 2, 2)
    assert list(data.user_ids) == ["u-2", "u-1"]  # user.json's order
    assert data.interactions["timestamp"].tolist() == [1325604498, 1531001351, 1577836799]
    assert data.interactions["rating"].tolist() == [2.0, 4.0, 5.0]
    by_id = data.items.set_index("item_id")
    assert by_id.loc["b-9", "title"] == "Taco Stop"
    assert by_id.loc["b-9", "genres"] == ("Mexican", "Restaurants", "Tacos")
    assert by_id.loc["b-3", "genres"] == ()
    assert data.users[["review_count", "fans", "average_stars"]].to_numpy().tolist() == [[10, 2, 3.5], [1, 0, 4.5]]


def test_yelp_archive_names_gzip_zip_and_the_review_file_itself(tmp_path):
    plain = load_dataset(write_yelp(tmp_path / "plain"))
    names = tuple(f"yelp_academic_dataset_{kind}.json" for kind in ("review", "business", "user"))
    packed = write_yelp(tmp_path / "packed", compress=True, names=names)
    same = [load_dataset(packed), load_yelp(packed), load_dataset(zip_folder(packed, tmp_path / "y.zip")),
            load_dataset(packed / "yelp_academic_dataset_review.json.gz")]
    assert {d.fingerprint() for d in same} == {plain.fingerprint()}
    assert "fans" not in load_yelp(packed, user_features=False).users.columns


def test_a_yelp_reviewer_missing_from_user_json_is_refused_with_the_review_line(tmp_path):
    folder = write_yelp(tmp_path, users_rows=[{"user_id": "u-1", "review_count": 1, "useful": 0, "funny": 0,
                                               "cool": 0, "fans": 0, "average_stars": 4.5}])
    with pytest.raises(DataError, match=r"review.json: 1 interaction\(s\) name users absent from the user table "
                                        r".*first at line 2 \(user id 'u-2'"):
        load_dataset(folder)


@pytest.mark.parametrize(("line", "message"), [
    ('{"user_id": "u", "parent_asin": "p", "rating": 5', r"line 2 is not JSON .*it is the last line: the file "
                                                          r"looks truncated"),
    ('[1, 2]', r"line 2 is a JSON list, not an object"),
    (json.dumps({"user_id": "u", "parent_asin": "p", "timestamp": MS}), r"line 2: 'rating' is missing"),
    (json.dumps({"user_id": "u", "parent_asin": "p", "rating": "five", "timestamp": MS}),
     r"line 2: 'rating' is not a number: 'five'"),
    (json.dumps({"user_id": None, "parent_asin": "p", "rating": 1, "timestamp": MS}), r"line 2: 'user_id' is missing"),
    (json.dumps({"user_id": "u", "parent_asin": " ", "rating": 1, "timestamp": MS}), r"line 2: 'parent_asin' is empty"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_a_malformed_review_line_is_an_error_naming_the_file_and_line(tmp_path, line, message, compress):
    path = put(tmp_path / ("x.jsonl.gz" if compress else "x.jsonl"), jsonl([REVIEWS_2023[0], line]), compress)
    with pytest.raises(DataError, match=rf"x\.jsonl(\.gz)?: {message}"):
        load_amazon(path)


def test_a_byte_order_mark_before_the_first_line_is_read_past(tmp_path):
    plain = load_dataset(write_2023(tmp_path / "plain"))
    path = tmp_path / "bom" / "All_Beauty.jsonl"
    put(path, "\ufeff" + jsonl(REVIEWS_2023))
    assert load_dataset(path).fingerprint() == plain.fingerprint()


def test_a_malformed_line_in_the_middle_is_not_called_truncated_and_blank_lines_are_skipped(tmp_path):
    path = put(tmp_path / "x.jsonl", jsonl([REVIEWS_2023[0], "", "{oops", REVIEWS_2023[1]]))
    with pytest.raises(DataError, match=r"x\.jsonl: line 3 is not JSON \(Expecting property name enclosed in "
                                        r"double quotes at column 2\): '\{oops'$"):
        load_amazon(path)


def test_a_bad_yelp_date_and_a_truncated_gzip_name_the_line(tmp_path):
    bad_date = [{"user_id": "u", "business_id": "b", "stars": 3, "date": "07/07/2018"}]
    write_yelp(tmp_path / "a", reviews_rows=bad_date)
    with pytest.raises(DataError, match=r"review\.json: line 1: 'date' is not a date like '2018-07-07 22:09:11': "
                                        r"'07/07/2018'"):
        load_yelp(tmp_path / "a", user_features=False)
    noise = np.random.default_rng(0).integers(0, 2**62, size=2000)  # incompressible: lines come out before the cut
    data = gzip.compress(jsonl([review_2023(f"U{n:x}", f"I{n:x}", 1.0, MS) for n in noise]).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jsonl\.gz: cannot be read past line \d{3} .*truncated or corrupt"):
        load_amazon(tmp_path / "cut.jsonl.gz")
    (tmp_path / "stub.jsonl.gz").write_bytes(data[:30])
    with pytest.raises(DataError, match=r"stub\.jsonl\.gz: cannot be read \(.*\); the file looks truncated"):
        load_dataset(tmp_path / "stub.jsonl.gz")


def test_a_metadata_file_or_an_unknown_json_file_is_refused_with_what_it_holds(tmp_path):
    write_2023(tmp_path)
    with pytest.raises(DataError, match=r"meta_All_Beauty\.jsonl: not a review file \(its first line has keys "
                                        r"\['average_rating', 'categories'.*pass the reviews file beside it"):
        load_dataset(tmp_path / "meta_All_Beauty.jsonl")
    put(tmp_path / "other" / "events.jsonl", jsonl([{"who": 1, "what": 2}]))
    with pytest.raises(DataError, match=r"events\.jsonl: not a review file .*Amazon Reviews 2023: user_id, "
                                        r"parent_asin, rating, timestamp"):
        load_dataset(tmp_path / "other" / "events.jsonl")


def test_a_folder_with_two_amazon_review_files_asks_for_one(tmp_path):
    write_2023(tmp_path)
    put(tmp_path / "Toys.jsonl", jsonl(REVIEWS_2023))
    with pytest.raises(DataError, match=r"several Amazon review files \(All_Beauty\.jsonl, Toys\.jsonl\)"):
        load_dataset(tmp_path)


def test_streaming_in_small_chunks_codes_ids_across_chunk_boundaries(tmp_path, monkeypatch):
    rows = [review_2023(f"U{k % 7}", f"I{k % 5}", float(1 + k % 5), MS + 1000 * k) for k in range(53)]
    path = put(tmp_path / "x.jsonl", jsonl(rows))
    whole = load_amazon(path)
    monkeypatch.setattr(review_lines, "_CHUNK_LINES", 4)
    chunked = load_amazon(path)
    assert chunked.fingerprint() == whole.fingerprint() and chunked.n_users == 7 and chunked.n_items == 5


def test_kcore_while_streaming_equals_kcore_of_the_whole_log(tmp_path):
    # chain: U4 -> I3 -> U3 -> I2 -> U2 unravel at bounds 2/2; U5 repeats one review exactly, which
    # counts 2 while streaming but 1 once the schema drops the duplicate, so a second pass must drop U5
    pairs = [("U0", "I0"), ("U0", "I1"), ("U1", "I0"), ("U1", "I1"), ("U2", "I1"), ("U2", "I2"), ("U3", "I2"),
             ("U3", "I3"), ("U4", "I3"), ("U5", "I0"), ("U5", "I0")]
    rows = [review_2023(user, item, 4.0, MS if user == "U5" else MS + k * 1000) for k, (user, item) in
            enumerate(pairs)]
    path = write_2023(tmp_path, rows=rows)
    streamed = load_amazon(path, tmp_path / "meta_All_Beauty.jsonl", min_user_interactions=2, min_item_interactions=2)
    after = kcore(load_dataset(path), 2, 2)
    assert load_dataset(path, min_user_interactions=2, min_item_interactions=2).fingerprint() == after.fingerprint()
    assert streamed.fingerprint() == after.fingerprint()
    assert list(streamed.user_ids) == ["U0", "U1"] and list(streamed.item_ids) == ["I0", "I1"]
    assert streamed.meta["kcore"] == {"min_user_interactions": 2, "min_item_interactions": 2}
    with pytest.raises(ConfigError, match="min_item_interactions must be a whole number >= 1, got 0"):
        load_amazon(path, min_item_interactions=0)


def test_kcore_applies_to_every_format_through_load_dataset(tmp_path):
    data = load_dataset(write_yelp(tmp_path / "yelp"), min_user_interactions=2)
    assert (list(data.user_ids), data.n_items) == (["u-1"], 2)
    assert np.array_equal(data.users["fans"].to_numpy(), [0.0])


def test_cli_info_shows_an_amazon_file_with_kcore_bounds(tmp_path, capsys):
    path = write_2023(tmp_path)
    assert main(["data", "info", str(path), "--min-user-interactions", "2"]) == 0
    out = capsys.readouterr().out
    for needle in ("All_Beauty", "rating histogram", "users >= 2, items >= 1", "2020-05-05"):
        assert needle in out, needle
    assert main(["data", "info", str(write_yelp(tmp_path / "y")), "--min-item-interactions", "0"]) == 2
    assert "min_item_interactions must be a whole number >= 1, got 0" in capsys.readouterr().err
