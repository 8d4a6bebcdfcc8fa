"""recsim-env: train and benchmark recommendation policies against users simulated from logged data."""

from recsim_env.data.log import ColumnMapping, InteractionLog

__version__ = "0.1.0"

__all__ = ["ColumnMapping", "InteractionLog", "__version__"]
