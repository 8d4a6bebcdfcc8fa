"""User models: the synthetic ground-truth model, and the adapter that batches a one-user model.

The fitted (logged) user model lives in :mod:`recsim_env.users.fitted`; every model implements
:class:`recsim_env.protocols.UserModel`.
"""

from recsim_env.users.adapter import PerUserAdapter, SingleUser, UserResponse
from recsim_env.users.synthetic import (
    SyntheticConfig,
    SyntheticState,
    SyntheticUserModel,
)

__all__ = ["PerUserAdapter", "SingleUser", "SyntheticConfig", "SyntheticState", "SyntheticUserModel", "UserResponse"]
