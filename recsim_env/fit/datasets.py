"""Cached fits of named datasets: a dataset cut once in time, each part fitted once and cached.

:func:`movielens_user_model` fits ML-100K on first use and loads the artifact afterwards; an
artifact of another library version, data fingerprint or config is refitted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from recsim_env.data.catalog import ItemCatalog
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import temporal_split
from recsim_env.errors import ArtifactError, ConfigError
from recsim_env.fit.config import FitConfig, _jsonable
from recsim_env.fit.leave import FORMAT_VERSION as LEAVE_FORMAT
from recsim_env.fit.pipeline import fit_user_model
from recsim_env.fit.returns import FORMAT_VERSION as RETURN_FORMAT
from recsim_env.users.fitted import FORMAT_VERSION as USER_MODEL_FORMAT
from recsim_env.users.fitted import FittedUserModel

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- datasets, cached
TRAIN_FRACTION = 0.8
"""Logs are cut in time at this fraction of interactions: the earlier part is "train"."""


def dataset_splits(dataset: str | Path = "ml-100k",
                   cache_dir: str | Path | None = None) -> tuple[InteractionLog, InteractionLog]:
    """A dataset (name or path, as :func:`~recsim_env.data.loaders.load_dataset` takes it) cut once in
    time: (earlier 80 %, later 20 %) over the same user and item index spaces."""
    from recsim_env.data.loaders import load_dataset

    return temporal_split(load_dataset(dataset, cache_dir=cache_dir), TRAIN_FRACTION)


def movielens_splits(cache_dir: str | Path | None = None) -> tuple[InteractionLog, InteractionLog]:
    """ML-100K cut once in time: (earlier 80 %, later 20 %)."""
    return dataset_splits("ml-100k", cache_dir)


def fitted_user_model(dataset: str | Path = "ml-100k", split: str = "train", cache_dir: str | Path | None = None,
                      config: FitConfig | None = None) -> tuple[FittedUserModel, ItemCatalog]:
    """The user model fitted on one temporal part of a dataset, and the catalog of that part.

    ``split="train"`` fits on the temporally earlier 80 % of the interactions (the simulator policies
    train in; the later 20 % is its held-out fidelity data). ``split="later"`` fits on the later 20 %
    only (disjoint in time and data from the train simulator), so a policy trained in one can be
    evaluated in a simulator fitted on interactions it never saw. Cached under
    ``<data cache>/models/``: the first call fits (with a progress bar), later calls load; a cached
    artifact of another library version, data fingerprint or config is refitted.
    """
    if split not in ("train", "later"):
        raise ConfigError(f"split must be 'train' or 'later', got {split!r}")
    from recsim_env.data.fetch import default_cache_dir

    config = config or FitConfig()
    early, later = dataset_splits(dataset, cache_dir)
    log = early if split == "train" else later
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(dataset)).name)[-60:]
    path = Path(cache_dir or default_cache_dir()) / "models" / f"{stem}-{split}-{_config_key(config)}.npz"
    if path.exists():
        try:
            return FittedUserModel.load(path, expected_fingerprint=log.fingerprint()), ItemCatalog.from_log(log)
        except ArtifactError as exc:
            logger.warning("refitting: cached artifact unusable (%s)", exc)
    model = fit_user_model(log, config)
    model.save(path)
    logger.info("saved fitted user model to %s", path)
    return model, ItemCatalog.from_log(log)


def movielens_user_model(split: str = "train", cache_dir: str | Path | None = None,
                         config: FitConfig | None = None) -> tuple[FittedUserModel, ItemCatalog]:
    """The user model fitted on ML-100K (``split`` as in :func:`fitted_user_model`), cached; the first
    call fetches the data if needed and fits in well under a minute on 2 cores."""
    return fitted_user_model("ml-100k", split, cache_dir, config)


def _config_key(config: FitConfig) -> str:
    """Short hash of a config: artifacts fitted with other settings live under other names. Without item
    vectors the field is left out (the keys of artifacts cached before it existed stay valid), and so is the
SGD step budget when there is none; with them,
    the file's bytes count too (the same path rewritten is another fit). The artifact formats of the user
    model, leave hazard and return model count as well, so checkouts of different formats keep their own
    files rather than refitting over each other's."""
    fields = _jsonable(config)
    if not config.item_vectors:
        del fields["item_vectors"]
    if config.sgd_step_budget == 0:
        del fields["sgd_step_budget"]  # none: the fit as before the field existed
    fields["formats"] = [USER_MODEL_FORMAT, LEAVE_FORMAT, RETURN_FORMAT]
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    vectors = Path(config.item_vectors).expanduser()
    if config.item_vectors and vectors.is_file():
        digest.update(vectors.read_bytes())
    return digest.hexdigest()[:10]
