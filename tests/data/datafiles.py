"""Helpers that write small dataset files in every supported format (imported by tests/data)."""

from __future__ import annotations

import zipfile
from pathlib import Path

GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")

ML100K_DATA = ["2\t1\t4\t881250949", "10\t1\t5\t881250950", "2\t3\t2\t881250000", "1\t2\t3\t881251000",
               "10\t2\t1\t881260000", "1\t1\t5\t881240000"]
ML100K_USERS = ["10|53|F|other|94043", "1|24|M|technician|85711", "2|33|F|writer|T8H1N"]


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


ML100K_ITEMS = [f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags('Animation', 'Comedy')}",
                f"2|Café Society (1995)|01-Jan-1996||http://x|{_flags('Drama')}",
                f"3|unknown|||http://x|{_flags('unknown')}"]


def write(folder: Path, files: dict[str, str | bytes], encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return folder


def lines(rows: list[str]) -> str:
    return "\n".join(rows) + "\n"


def ml100k_files(data: list[str] = ML100K_DATA, items: list[str] = ML100K_ITEMS,
                 users: list[str] = ML100K_USERS) -> dict[str, str]:
    genre = lines([f"{g}|{k}" for k, g in enumerate(GENRES)])
    return {"u.data": lines(data), "u.item": lines(items), "u.user": lines(users), "u.genre": genre}


def write_ml100k(folder: Path, **kwargs: list[str]) -> Path:
    return write(folder, ml100k_files(**kwargs), encoding="latin-1")


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{prefix}{path.name}")
    return archive


ATOMIC_INTER = ["user_id:token\titem_id:token\trating:float\ttimestamp:float",
                "u1\ti1\t4\t100", "u1\ti2\t2\t200", "u2\ti2\t5\t150", "u2\ti3\t3\t160"]
ATOMIC_ITEM = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tprice:float",
               "i1\tThe Big Sleep\t1946\tCrime Film-Noir\t9.5", "i2\tHeat\t1995\tAction Crime\t3",
               "i3\tAmélie\t2001\tComedy Romance\t4.25"]
ATOMIC_USER = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token",
               "u2\t31\tF\tartist\t01002", "u1\t25\tM\tstudent\t55455"]


def write_atomic(
    folder: Path,
    stem: str = "shop",
    inter: list[str] = ATOMIC_INTER,
    item: list[str] | None = ATOMIC_ITEM,
    user: list[str] | None = ATOMIC_USER,
) -> Path:
    files = {f"{stem}.inter": lines(inter)}
    if item is not None:
        files[f"{stem}.item"] = lines(item)
    if user is not None:
        files[f"{stem}.user"] = lines(user)
    return write(folder, files)
