"""recsim-env: train and benchmark recommendation policies against users simulated from logged data."""

from recsim_env.data.log import ColumnMapping, InteractionLog

__version__ = "0.1.0"

from recsim_env.env.registration import register_envs  # noqa: E402  (ids need the package importable)

register_envs()

__all__ = ["ColumnMapping", "InteractionLog", "__version__"]
