"""Exceptions raised on bad input. Every message names the file, column, value or argument at fault."""

from __future__ import annotations


class RecSimError(Exception):
    """Base class of every error this library raises on purpose."""


class DataError(RecSimError, ValueError):
    """Logged data that cannot be loaded as asked: a missing column, a bad value, a truncated file."""


class FetchError(RecSimError, RuntimeError):
    """A dataset could not be fetched or verified; the message says how to supply it by hand."""


class ConfigError(RecSimError, ValueError):
    """An invalid configuration value; the message names the field and the value."""


class ArtifactError(RecSimError, ValueError):
    """A saved artifact (fitted model, checkpoint, embeddings) of another version, dataset or shape."""


class ActionError(RecSimError, ValueError):
    """An action of the wrong shape, out of range or not finite; the message names the slot."""


class TasksFailedError(RecSimError, RuntimeError):
    """Benchmark tasks that failed on every attempt; the message names each and its error (the run's other
    cells are kept)."""
