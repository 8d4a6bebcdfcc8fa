"""Lift a one-user-at-a-time model — the way a researcher first writes one — into a batched `UserModel`.

Write a class for *one* user::

    class MyUser:
        n_items = 50            # items users choose among
        n_user_features = 2     # length of features()

        def reset(self, rng):                       # a new user
            self.taste = rng.normal(size=2); self.patience = 10
        def features(self):                         # observable features, (n_user_features,)
            return self.taste
        def respond(self, slate, valid, rng):       # slate: (k,) item indices, -1 = empty slot
            return UserResponse(choice=0, rating=4.0)   # slot clicked (-1: none) and its responses
        def update(self, slate, response, rng):     # state change after the step
            self.patience -= 1
        def left(self):                             # the session is over
            return self.patience <= 0

and ``make_env(PerUserAdapter(MyUser))`` gives a Gymnasium env (or ``RecVectorEnv`` N of them).
The adapter loops over users in Python: fine for prototyping, ~100x slower than a natively
batched model at N=1024; port the hot methods to arrays once the model settles.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol, runtime_checkable

import numpy as np

from recsim_env.errors import ConfigError
from recsim_env.protocols import Responses

DEFAULT_MAX_RATING = 5.0
"""The rating scale's top when neither the adapter's arguments nor the single user give one."""


class UserResponse(NamedTuple):
    """One user's response to one slate."""

    choice: int
    """Slot clicked, ``-1`` for none."""
    rating: float = 0.0
    like: float = 0.0
    dwell: float = 0.0


@runtime_checkable
class SingleUser(Protocol):
    """The one-user model :class:`PerUserAdapter` lifts."""

    def reset(self, rng: np.random.Generator) -> None: ...
    def features(self) -> np.ndarray: ...
    def respond(self, slate: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> UserResponse: ...
    def update(self, slate: np.ndarray, response: UserResponse, rng: np.random.Generator) -> None: ...
    def left(self) -> bool: ...


class PerUserAdapter:
    """A batched ``UserModel`` whose state is a list of single-user objects made by ``factory``.

    ``n_items`` and ``n_user_features`` are taken from the arguments or, failing that, from the
    attributes of the same name on one user made by ``factory``; so is ``max_rating``, which falls
    back to :data:`DEFAULT_MAX_RATING` (the 1-5 stars of MovieLens). ``user_index`` is -1 (no logged
    users) unless the single user has an int attribute ``user_index``.
    """

    def __init__(self, factory: Callable[[], SingleUser], n_items: int | None = None,
                 n_user_features: int | None = None, n_logged_users: int = 0,
                 max_rating: float | None = None) -> None:
        probe = factory()
        if not isinstance(probe, SingleUser):
            missing = [m for m in ("reset", "features", "respond", "update", "left") if not hasattr(probe, m)]
            raise ConfigError(f"{type(probe).__name__} lacks {missing} of the single-user interface")
        self.factory = factory
        self.n_items = int(n_items if n_items is not None else _required(probe, "n_items"))
        self.n_user_features = int(n_user_features if n_user_features is not None
                                   else _required(probe, "n_user_features"))
        self.n_logged_users = int(n_logged_users)
        if max_rating is None:
            max_rating = getattr(probe, "max_rating", DEFAULT_MAX_RATING)  # the single user's is optional
        self.max_rating = float(max_rating)

    def sample(self, n: int, rng: np.random.Generator) -> list[Any]:
        users = [self.factory() for _ in range(n)]
        for user in users:
            user.reset(rng)
        return users

    def replace(self, state: list[Any], mask: np.ndarray, rng: np.random.Generator) -> None:
        for i in np.flatnonzero(mask):
            state[i] = self.factory()
            state[i].reset(rng)

    def features(self, state: list[Any]) -> np.ndarray:
        out = np.zeros((len(state), self.n_user_features), dtype=np.float32)
        for i, user in enumerate(state):
            out[i] = user.features()
        return out

    def user_index(self, state: list[Any]) -> np.ndarray:
        return np.array([int(getattr(user, "user_index", -1)) for user in state], dtype=np.int64)

    def respond(self, state: list[Any], slates: np.ndarray, valid: np.ndarray,
                rng: np.random.Generator) -> Responses:
        n, k = slates.shape
        choice = np.full(n, -1, dtype=np.int64)
        click, rating, like, dwell = (np.zeros((n, k), dtype=np.float32) for _ in range(4))
        for i, user in enumerate(state):
            r = UserResponse(*user.respond(slates[i], valid[i], rng))
            if r.choice < 0:
                continue
            if not (r.choice < k and valid[i, r.choice]):
                raise ConfigError(f"{type(user).__name__}.respond chose slot {r.choice}, which is not a valid "
                                  f"slot of its slate (k={k})")
            choice[i] = r.choice
            click[i, r.choice], rating[i, r.choice] = 1.0, r.rating
            like[i, r.choice], dwell[i, r.choice] = r.like, r.dwell
        return Responses(choice, click, rating, like, dwell)

    def update(self, state: list[Any], slates: np.ndarray, responses: Responses, rng: np.random.Generator) -> None:
        for i, user in enumerate(state):
            c = int(responses.choice[i])
            slot = max(c, 0)
            user.update(slates[i], UserResponse(c, float(responses.rating[i, slot]) if c >= 0 else 0.0,
                                                float(responses.like[i, slot]) if c >= 0 else 0.0,
                                                float(responses.dwell[i, slot]) if c >= 0 else 0.0), rng)

    def left(self, state: list[Any]) -> np.ndarray:
        return np.array([bool(user.left()) for user in state], dtype=bool)


def _required(probe: Any, name: str) -> int:
    if not hasattr(probe, name):
        raise ConfigError(f"pass {name}= to PerUserAdapter or give {type(probe).__name__} a {name} attribute")
    return getattr(probe, name)
