"""A tiny synthetic log with structure a model can learn, shared by tests in several packages.

Kept out of ``conftest.py``: several folders have a conftest, so ``from conftest import ...``
resolves to whichever was imported last; this module's basename is unique.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping

GENRES = ("Action", "Comedy", "Drama", "Horror")


def make_tiny_log(n_users: int = 40, n_items: int = 60, per_user: int = 15, seed: int = 0) -> InteractionLog:
    """Users prefer one genre; items have one genre each; ratings are higher in the preferred genre."""
    rng = np.random.default_rng(seed)
    item_genre = np.arange(n_items) % len(GENRES)
    user_genre = rng.integers(0, len(GENRES), size=n_users)
    rows = []
    for u in range(n_users):
        liked = np.flatnonzero(item_genre == user_genre[u])
        other = np.flatnonzero(item_genre != user_genre[u])
        n_liked = int(per_user * 0.8)
        picks = np.concatenate([rng.choice(liked, n_liked, replace=False),
                                rng.choice(other, per_user - n_liked, replace=False)])
        rng.shuffle(picks)
        for t, i in enumerate(picks):
            rating = 5 if item_genre[i] == user_genre[u] else int(rng.integers(1, 4))
            rows.append((f"u{u}", f"i{i}", 1_000_000 + 3600 * t + u, rating))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                          "title": [f"{GENRES[g].lower()} movie number {i}" for i, g in enumerate(item_genre)],
                          "genres": [GENRES[g] for g in item_genre],
                          "year": 1990 + np.arange(n_items) % 10})
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)],
                          "age": rng.integers(18, 60, size=n_users),
                          "gender": rng.choice(["F", "M"], size=n_users)})
    mapping = ColumnMapping(rating="rating", title="title", genres="genres", year="year")
    return InteractionLog.from_frames(inter, items, users, mapping, name="tiny")
