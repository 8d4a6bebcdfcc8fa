"""`ScoringRecommender`: what every baseline shares once it can score (user, item) pairs.

A model subclasses it and implements ``_fit``, ``_score`` and ``_state`` / ``_set_state`` (plus
``_score_history`` when it can score from a list of consumed items). The class supplies:

- ``fit(log_or_split)``: validates the data (empty or single-user logs are refused) and records the
  training interactions (popularity, seen items) every model needs.
- ``score(users, items)``: ``(n,)`` users, ``(n, m)`` or ``(m,)`` items -> ``(n, m)`` float64.
  **Fallbacks** (never an IndexError): an unknown user (``-1``, out of range, or without training
  interactions) gets the popularity score (training interaction count); an unknown item (out of
  range) scores ``-inf`` and so ranks last. **Demographic start**: a model with user embeddings
  (``has_user_vectors``, e.g. MF-BPR) whose config sets ``cold_user_features`` instead scores a user
  of the log's users table who has no training interactions from a starting vector predicted from
  their user features (:class:`baselines.demographics.UserFeatureMap`, fitted on the known users).
- ``recommend(users, k, exclude_seen=True)``: top-``k`` item indices per user.
- ``predict(observation, ...)``: the env policy (SB3 ``PolicyPredictor`` shape). It ranks the step's
  ``candidates`` by score for ``user_index`` and shows the best ``slate_size`` positions. A cold user
  (``user_index`` -1 or unknown) is scored from ``history_items`` when the model can
  (``_score_history``: item-KNN, MF, content), else by popularity. A candidate item repeated in a
  row is shown at most once while distinct candidates remain.
- ``save(path)`` / ``load(path, log=None)``: one ``.npz`` holding a JSON header (format version,
  model class, config, shapes, dataset fingerprint) and the arrays; loading another model's
  checkpoint, another shape or another item vocabulary raises :class:`ArtifactError`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from baselines.demographics import UserFeatureMap, encode_user_features
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import Split
from recsim_env.errors import ArtifactError, ConfigError, DataError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_MODELS: dict[str, type["ScoringRecommender"]] = {}


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from its JSON form (lists back to tuples; unknown keys ignored)."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known})


class ScoringRecommender:
    """Base of the baselines; see the module docstring for the contract."""

    config_class: ClassVar[type | None] = None
    """The frozen dataclass holding this model's hyper-parameters (``None``: it has none)."""
    can_score_history: ClassVar[bool] = False
    """Whether ``_score_history`` scores cold users from their consumed items."""
    has_user_vectors: ClassVar[bool] = False
    """Whether the model scores from a user vector (``_user_vectors`` / ``_score_vectors``), so a cold
    user can start from one predicted from their features (config ``cold_user_features``)."""
    early_stops: ClassVar[bool] = False
    """Whether the model needs the validation part of a Split (early stopping). Models that do not
    are fitted on training + validation interactions: everything but the test is known data."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _MODELS[cls.__name__] = cls

    def __init__(self, config: Any = None, slate_size: int | None = None):
        if config is None and self.config_class is not None:
            config = self.config_class()
        if self.config_class is not None and not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}"
            )
        if slate_size is not None and slate_size < 1:
            raise ConfigError(f"slate_size must be >= 1, got {slate_size}")
        self.config = config
        self.slate_size = slate_size
        self.n_users = 0
        self.n_items = 0
        self.item_ids = np.empty(0, dtype=str)
        self.fingerprint = ""
        self.counts = np.empty(0)
        self._seen_ptr = np.zeros(1, dtype=np.int64)
        self._seen_idx = np.empty(0, dtype=np.int64)
        self.feature_map: UserFeatureMap | None = None
        self.user_features = np.empty((0, 0))

    # ---- fitting -------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.n_items > 0

    def fit(self, data: InteractionLog | Split) -> "ScoringRecommender":
        """Fit on a log, or on a :class:`Split`: models that stop early train on its training part and
        validate on its validation part; the others fit training + validation interactions."""
        train, valid = (data.train, data) if isinstance(data, Split) else (data, None)
        if valid is not None and not self.early_stops:
            train, valid = merge_validation(valid), None
        if train.n_interactions == 0:
            raise DataError(f"cannot fit {type(self).__name__} on {train.name!r}: it has no interactions")
        active = np.unique(train.interactions["user"].to_numpy())
        if len(active) < 2:
            raise DataError(f"cannot fit {type(self).__name__} on {train.name!r}: it has interactions of "
                            f"{len(active)} user(s); a recommender needs at least 2")
        self._record(train)
        self._fit(train, valid)
        self._fit_feature_map(train)
        return self

    def _fit_feature_map(self, train: InteractionLog) -> None:
        """Fit the demographic start (after ``_fit``: it maps features to the trained user vectors)."""
        self.feature_map = None
        self.user_features = np.empty((0, 0))
        if not (self.has_user_vectors and getattr(self.config, "cold_user_features", False)):
            return
        features = encode_user_features(train.users)
        if features.shape[1] == 0:
            log.info("%s: %r has no user features; cold users keep the popularity fallback",
                     type(self).__name__, train.name)
            return
        known = self.known_users(np.arange(self.n_users))
        alpha = getattr(self.config, "cold_user_alpha", 100.0)
        self.feature_map = UserFeatureMap(alpha).fit(features[known], self._user_vectors()[known])
        self.user_features = features

    def _user_vectors(self) -> np.ndarray:
        """``(n_users, d)`` trained user vectors (models with ``has_user_vectors``)."""
        raise NotImplementedError

    def _score_vectors(self, vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``(n, d)`` user vectors and valid ``(n, m)`` items -> ``(n, m)`` scores."""
        raise NotImplementedError

    def _record(self, train: InteractionLog) -> None:
        users = train.interactions["user"].to_numpy(np.int64)
        items = train.interactions["item"].to_numpy(np.int64)
        self.n_users = train.n_users
        self.n_items = train.n_items
        self.item_ids = np.asarray(train.item_ids, dtype=str)
        self.fingerprint = train.fingerprint()
        self.counts = np.bincount(items, minlength=self.n_items).astype(np.float64)
        keys = np.unique(users * self.n_items + items)  # sorted by user, then item
        self._seen_ptr = np.searchsorted(keys // self.n_items, np.arange(self.n_users + 1)).astype(np.int64)
        self._seen_idx = keys % self.n_items

    def _fit(self, train: InteractionLog, split: Split | None) -> None:
        raise NotImplementedError

    def seen(self, user: int) -> np.ndarray:
        """Training items of ``user`` (empty for unknown users)."""
        if not 0 <= user < self.n_users:
            return np.empty(0, dtype=np.int64)
        return self._seen_idx[self._seen_ptr[user]:self._seen_ptr[user + 1]]

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit() or load() first")

    # ---- scoring -------------------------------------------------------------------------------
    def _score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Known users ``(n,)`` and valid items ``(n, m)`` -> ``(n, m)`` scores."""
        raise NotImplementedError

    def _score_history(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``(n, H)`` consumed items (-1 padding) and ``(n, m)`` items -> scores; default popularity."""
        return self.counts[items]

    def known_users(self, users: np.ndarray) -> np.ndarray:
        """Which users have training interactions (others get the fallback)."""
        users = np.asarray(users, dtype=np.int64)
        ok = (users >= 0) & (users < self.n_users)
        ok[ok] = self._seen_ptr[users[ok] + 1] > self._seen_ptr[users[ok]]
        return ok

    def score(self, users: np.ndarray | list[int], items: np.ndarray | list[int]) -> np.ndarray:
        """Scores of ``items`` for ``users`` with the documented fallbacks (module docstring)."""
        self._require_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        items = np.asarray(items, dtype=np.int64)
        if items.ndim == 1:
            items = np.broadcast_to(items, (len(users), len(items)))
        if items.ndim != 2 or items.shape[0] != len(users):
            raise ConfigError(f"items must be (m,) or (n_users, m) = ({len(users)}, m); got shape {items.shape}")
        valid = (items >= 0) & (items < self.n_items)
        safe = np.where(valid, items, 0)
        out = np.empty(items.shape, dtype=np.float64)
        known = self.known_users(users)
        if known.any():
            out[known] = self._score(users[known], safe[known])
        if (~known).any():
            out[~known] = self.counts[safe[~known]]
        started = ~known & (users >= 0) & (users < len(self.user_features))
        if started.any() and self.feature_map is not None:
            start = self.feature_map.predict(self.user_features[users[started]])
            out[started] = self._score_vectors(start, safe[started])
        out[~valid] = -np.inf
        return out

    def score_observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """``(n, C)`` scores of a batched observation's candidates (cold users from their history)."""
        self._require_fitted()
        cands = np.asarray(observation["candidates"], dtype=np.int64)
        users = np.asarray(observation["user_index"], dtype=np.int64).reshape(len(cands))
        scores = self.score(users, cands)
        cold = ~self.known_users(users)
        self._start_from_observed_features(observation, users, cands, cold, scores)
        if cold.any() and self.can_score_history and "history_items" in observation:
            history = np.asarray(observation["history_items"], dtype=np.int64).reshape(len(cands), -1)
            history = np.where(history < self.n_items, history, -1)
            has = cold & (history >= 0).any(axis=1)
            if has.any():
                valid = (cands[has] >= 0) & (cands[has] < self.n_items)
                part = self._score_history(history[has], np.where(valid, cands[has], 0))
                scores[has] = np.where(valid, part, -np.inf)
        return scores

    def _start_from_observed_features(self, observation: dict[str, np.ndarray], users: np.ndarray,
                                      cands: np.ndarray, cold: np.ndarray, scores: np.ndarray) -> None:
        """A cold user outside the users table (``user_index`` -1) whose observation carries
        ``user_features`` of the map's width starts from them (in place; history scoring comes after)."""
        if self.feature_map is None or "user_features" not in observation:
            return
        features = np.asarray(observation["user_features"], dtype=np.float64).reshape(len(cands), -1)
        if features.shape[1] != len(self.feature_map.feature_mean):
            return  # another encoding (another log's users): nothing to map from
        outside = cold & ((users < 0) | (users >= len(self.user_features)))
        if outside.any():
            valid = (cands[outside] >= 0) & (cands[outside] < self.n_items)
            part = self._score_vectors(self.feature_map.predict(features[outside]), np.where(valid, cands[outside], 0))
            scores[outside] = np.where(valid, part, -np.inf)

    # ---- recommending and acting ---------------------------------------------------------------
    def recommend(self, users: np.ndarray | list[int], k: int, exclude_seen: bool = True) -> np.ndarray:
        """``(n, k)`` int64 top-``k`` items per user, best first (seen items last when excluded)."""
        self._require_fitted()
        if k < 1 or k > self.n_items:
            raise ConfigError(f"k={k} must be in [1, n_items={self.n_items}]")
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        scores = self.score(users, np.arange(self.n_items))
        if exclude_seen:
            for row, u in enumerate(users):
                scores[row, self.seen(int(u))] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1).astype(np.int64)

    def bind(self, action_space: Any) -> "ScoringRecommender":
        """Take the slate size from an env's ``MultiDiscrete`` action space (single or batched)."""
        nvec = np.asarray(action_space.nvec)
        self.slate_size = int(nvec.shape[-1])
        return self

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """Myopic policy: the ``slate_size`` best-scored candidate positions (deterministic always)."""
        if self.slate_size is None:
            raise ConfigError(f"{type(self).__name__}.predict needs slate_size: pass it to the constructor or "
                              f"call bind(env.action_space)")
        cands = np.asarray(observation["candidates"])
        batched = cands.ndim == 2
        obs = observation if batched else {k: np.asarray(v)[None] for k, v in observation.items()}
        cands = np.asarray(obs["candidates"], dtype=np.int64)
        if cands.shape[1] < self.slate_size:
            raise ConfigError(f"observation has {cands.shape[1]} candidates, fewer than slate_size={self.slate_size}")
        scores = self.score_observation(obs)
        # Stable sort on the negated scores keeps ties in candidate order: same input, same slate.
        order = np.argsort(-scores, axis=1, kind="stable")
        # Then repeated items go after every distinct candidate, unknown ones (score -inf) included:
        # a second stable sort on the repeat flag keeps the score order within each group.
        repeats = np.take_along_axis(_repeats(cands), order, axis=1)
        order = np.take_along_axis(order, np.argsort(repeats, axis=1, kind="stable"), axis=1)
        action = order[:, : self.slate_size].astype(np.int64)
        return (action if batched else action[0]), state

    # ---- persistence ---------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        pass

    def _restore_header(self, header: dict[str, Any]) -> None:
        """Hook: take back what ``_header`` added beyond the base fields (e.g. the training config)."""

    def _header(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "model_class": type(self).__name__,
                "config": asdict(self.config) if self.config is not None else None,
                "n_users": self.n_users, "n_items": self.n_items, "fingerprint": self.fingerprint,
                "slate_size": self.slate_size}

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (``.npz`` is appended when missing)."""
        self._require_fitted()
        path = Path(path)
        path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"model/{k}": v for k, v in self._state().items()}
        if self.feature_map is not None:
            arrays.update({f"feature_map/{k}": v for k, v in self.feature_map.state().items()})
            arrays["user_features"] = self.user_features
        np.savez(path, header=np.array(json.dumps(self._header())), item_ids=self.item_ids, counts=self.counts,
                 seen_ptr=self._seen_ptr, seen_idx=self._seen_idx, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path, log: InteractionLog | None = None) -> "ScoringRecommender":
        """Load a checkpoint of this class (or any, when called on ``ScoringRecommender``);
        with ``log``, its item vocabulary must match the checkpoint's."""
        header, arrays = _read(Path(path))
        name = header.get("model_class")
        if name not in _MODELS or (cls is not ScoringRecommender and name != cls.__name__):
            raise ArtifactError(f"{path}: checkpoint holds a {name!r} model, not a {cls.__name__}")
        model_cls = _MODELS[name]
        config = config_from_dict(model_cls.config_class, header["config"]) if model_cls.config_class else None
        model = model_cls(config, slate_size=header.get("slate_size"))
        model._restore_header(header)
        model.n_users = header["n_users"]
        model.n_items = header["n_items"]
        model.fingerprint = header["fingerprint"]
        model.item_ids = arrays["item_ids"]
        model.counts = arrays["counts"]
        model._seen_ptr = arrays["seen_ptr"]
        model._seen_idx = arrays["seen_idx"]
        if log is not None:
            check_vocabulary(path, model.n_users, model.item_ids, log)
        model._set_state({k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
        if "user_features" in arrays:  # checkpoints written before the demographic start lack it
            prefix = "feature_map/"
            model.feature_map = UserFeatureMap.from_state({k[len(prefix):]: v for k, v in arrays.items()
                                                           if k.startswith(prefix)})
            model.user_features = arrays["user_features"]
        return model


def merge_validation(split: Split) -> InteractionLog:
    """The split's training and validation interactions as one log (the test part stays out)."""
    merged = pd.concat([split.train.interactions, split.valid.interactions])
    return split.train.with_interactions(merged, f"{split.train.name}+valid")


def _repeats(cands: np.ndarray) -> np.ndarray:
    """``(n, C)`` bool: positions holding an item already present at an earlier position of the row."""
    order = np.argsort(cands, axis=1, kind="stable")
    sorted_c = np.take_along_axis(cands, order, axis=1)
    dup_sorted = np.zeros(cands.shape, dtype=bool)
    dup_sorted[:, 1:] = sorted_c[:, 1:] == sorted_c[:, :-1]
    out = np.zeros(cands.shape, dtype=bool)
    np.put_along_axis(out, order, dup_sorted, axis=1)
    return out


def check_vocabulary(path: Any, n_users: int, item_ids: np.ndarray, log: InteractionLog) -> None:
    """Refuse an artifact whose user count or item ids differ from ``log``'s."""
    ids = np.asarray(log.item_ids, dtype=str)
    if len(ids) != len(item_ids) or n_users != log.n_users:
        raise ArtifactError(f"{path}: fitted on {n_users} users x {len(item_ids)} items, but {log.name!r} has "
                            f"{log.n_users} users x {len(ids)} items")
    diff = np.flatnonzero(ids != np.asarray(item_ids, dtype=str))
    if diff.size:
        raise ArtifactError(f"{path}: item vocabulary differs from {log.name!r}'s, first at index {diff[0]} "
                            f"({item_ids[diff[0]]!r} vs {ids[diff[0]]!r})")


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not path.exists():
        raise ArtifactError(f"{path}: no such checkpoint")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(str(arrays.pop("header")))
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{path}: not a recsim-env checkpoint ({exc})") from exc
    if header.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: checkpoint format {header.get('format_version')!r}, this library reads "
                            f"{FORMAT_VERSION}")
    return header, arrays


def load_recommender(path: str | Path, log: InteractionLog | None = None) -> ScoringRecommender:
    """Load any saved baseline, whatever its class."""
    return ScoringRecommender.load(path, log)
