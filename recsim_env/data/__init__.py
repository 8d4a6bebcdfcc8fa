"""Logged data: the :class:`InteractionLog` model, loaders, fetching with a cache, splits, sessions."""

from recsim_env.data.fetch import default_cache_dir, fetch_dataset
from recsim_env.data.loaders import load_atomic, load_dataset, load_frames
from recsim_env.data.log import InteractionLog
from recsim_env.data.schema import ColumnMapping
from recsim_env.data.sessions import (
           SessionSummary,
           session_lengths,
           sessionize,
           summarize_sessions,
)
from recsim_env.data.splits import (
           Split,
           leave_one_out,
           sample_negatives,
           seen_items,
           temporal_split,
)

__all__ = ["ColumnMapping", "InteractionLog", "Split", "leave_one_out", "temporal_split",
           "sample_negatives", "seen_items", "load_dataset", "load_frames", "load_atomic", "fetch_dataset",
           "default_cache_dir", "sessionize", "session_lengths", "summarize_sessions", "SessionSummary"]
