"""Logs -> fitted parameters of a user model (torch, imported only to fit), and cached fits of named datasets."""

from recsim_env._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "FitConfig": "recsim_env.fit.config",
    "fit_user_model": "recsim_env.fit.pipeline",
    "fitted_user_model": "recsim_env.fit.datasets",
    "movielens_user_model": "recsim_env.fit.datasets",
    "dataset_splits": "recsim_env.fit.datasets",
})
