"""Logged data: the :class:`InteractionLog` model, loaders, fetching with a cache, splits, sessions."""

from recsim_env.data.log import ColumnMapping, InteractionLog
from recsim_env.data.splits import Split, leave_one_out, sample_negatives, seen_items, temporal_split

__all__ = ["ColumnMapping", "InteractionLog", "Split", "leave_one_out", "temporal_split",
           "sample_negatives", "seen_items"]
