"""`TorchRecommender`: a :class:`ScoringRecommender` whose scores come from a torch module trained by
:func:`baselines.training.train_module`. Subclasses build the module (``_build``) and name its loss."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import Any, ClassVar

import numpy as np
import torch

from baselines.base import ScoringRecommender, config_from_dict, merge_validation
from baselines.training import LoopConfig, TrainReport, train_module
from recsim_env.data.log import InteractionLog
from recsim_env.data.splits import Split, seen_items
from recsim_env.errors import ArtifactError, ConfigError
from recsim_env.evaluation.offline import SampledRanking

log = logging.getLogger(__name__)


def validation_ranking(split: Split, n_negatives: int = 99, seed: int = 0) -> SampledRanking | None:
    """The NCF protocol on the validation item (the one before the test item) for early stopping.

    On catalogues too small for ``n_negatives`` unseen items per user, every user gets as many
    negatives as the busiest user has unseen items; with none left there is no validation."""
    if split.valid.n_interactions == 0:
        return None
    seen = seen_items(split.train)
    for part in (split.valid, split.test):
        for u, i in zip(part.interactions["user"].to_numpy(), part.interactions["item"].to_numpy()):
            seen[u].add(int(i))
    room = split.train.n_items - max(len(s) for s in seen)
    if room < n_negatives:
        log.info("validation ranks among %d negatives (catalogue too small for %d)", max(room, 0), n_negatives)
    if room < 1:
        return None
    return SampledRanking.build(split.valid, seen, min(n_negatives, room), seed)


class TorchRecommender(ScoringRecommender):
    """Shared plumbing of the neural baselines: fit through the one loop, score in batches, save weights."""

    early_stops = True
    loss: ClassVar[str] = "bce"
    """``"bce"`` (pointwise, NCF) or ``"bpr"`` (pairwise)."""

    def __init__(self, config: Any = None, train: LoopConfig | None = None, slate_size: int | None = None):
        super().__init__(config, slate_size)
        if train is not None and not isinstance(train, LoopConfig):
            raise ConfigError(f"train must be a LoopConfig, got {type(train).__name__}")
        self.train_config = train or LoopConfig()
        self.module: torch.nn.Module | None = None
        self.report = TrainReport()

    def _build(self, train: InteractionLog) -> torch.nn.Module:
        raise NotImplementedError

    def _fit(self, train: InteractionLog, split: Split | None) -> None:
        torch.manual_seed(self.train_config.seed)
        self.module = self._build(train)
        self._train(train, split, self.train_config)

    def _train(self, train: InteractionLog, split: Split | None, config: LoopConfig) -> None:
        """Early-stopped training on ``train``, then ``config.refit_epochs`` on train + validation."""
        name = type(self).__name__
        validation = validation_ranking(split, seed=config.seed) if split is not None else None
        self.report = train_module(self.module, self.loss, train, validation, config, name)
        if split is None or config.refit_epochs == 0 or split.valid.n_interactions == 0:
            return
        merged = merge_validation(split)
        refit = replace(config, epochs=config.refit_epochs, seed=config.seed + 1, lr=config.lr * config.refit_lr_scale)
        extra = train_module(self.module, self.loss, merged, None, refit, f"{name}/refit")
        self.report.epochs += extra.epochs
        self.report.seconds += extra.seconds
        self.report.cpu_seconds += extra.cpu_seconds
        self._record(merged)  # seen items and popularity now include the validation interactions

    @torch.no_grad()
    def _score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        assert self.module is not None
        self.module.eval()
        out = np.empty(items.shape, dtype=np.float64)
        rows = max(1, 2**15 // max(1, items.shape[1]))  # ~32k pairs per forward: bounded activation memory
        for lo in range(0, len(users), rows):
            out[lo:lo + rows] = self.module(torch.as_tensor(users[lo:lo + rows]),
                                            torch.as_tensor(np.ascontiguousarray(items[lo:lo + rows]))).numpy()
        return out

    def _header(self) -> dict[str, Any]:
        return {**super()._header(), "train": asdict(self.train_config)}

    def _restore_header(self, header: dict[str, Any]) -> None:
        if header.get("train"):
            self.train_config = config_from_dict(LoopConfig, header["train"])

    def _state(self) -> dict[str, np.ndarray]:
        assert self.module is not None
        return {k: v.detach().cpu().numpy() for k, v in self.module.state_dict().items()}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.module = self._build_for(self.n_users, self.n_items)
        own = self.module.state_dict()
        for key, value in own.items():
            if key not in state or tuple(state[key].shape) != tuple(value.shape):
                got = None if key not in state else tuple(state[key].shape)
                raise ArtifactError(f"{type(self).__name__} checkpoint: parameter {key!r} has shape {got}, "
                                    f"the model expects {tuple(value.shape)}")
        self.module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items() if k in own})
        self.module.eval()

    def _build_for(self, n_users: int, n_items: int) -> torch.nn.Module:
        """The module for given shapes without a log (used when loading)."""
        raise NotImplementedError
