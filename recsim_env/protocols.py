"""The seams: interfaces only. Everything else in the library talks to these, never to a concrete class.

Shapes use ``n`` for the number of simulated users stepped together and ``k`` for the slate size.
Item indices are the contiguous indices of an :class:`~recsim_env.data.log.InteractionLog` /
:class:`~recsim_env.data.catalog.ItemCatalog`; ``-1`` means "no item" (padding, or the no-click option).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


class Responses(NamedTuple):
    """What ``n`` users did with their slates in one step. Per-slot arrays are ``(n, k)`` float32,
    zero in every slot but the chosen one."""

    choice: np.ndarray
    """``(n,)`` int64: the slot each user picked, ``-1`` for the no-click option."""
    click: np.ndarray
    """``(n, k)``: 1 in the clicked slot."""
    rating: np.ndarray
    """``(n, k)``: the rating given to the clicked item (in the log's rating scale)."""
    like: np.ndarray
    """``(n, k)``: 1 where the clicked item was liked / converted (rating >= the like threshold)."""
    dwell: np.ndarray
    """``(n, k)``: dwell time in seconds on the clicked item (0 where the model has no dwell)."""


@runtime_checkable
class ChoiceModel(Protocol):
    """How a user picks at most one slot of a slate from the items' utilities."""

    def probabilities(self, utilities: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``(n, k)`` utilities and a ``(n, k)`` bool mask of real slots -> ``(n, k + 1)`` choice
        probabilities; the last column is the no-click option. Rows sum to 1."""
        ...

    def sample(self, utilities: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n,)`` int64 chosen slot per user, ``-1`` for no click."""
        ...


@runtime_checkable
class UserModel(Protocol):
    """A population of simulated users, stepped as a batch.

    The state is model-specific (any object holding arrays over the ``n`` users); the env only passes
    it back. Every method draws randomness from the ``rng`` it is given and from nowhere else.
    """

    n_items: int
    """Number of items users choose among."""
    n_user_features: int
    """Length of :meth:`features`' rows."""
    n_logged_users: int
    """Size of the logged-user index space that :meth:`user_index` draws from (0 if none)."""
    max_rating: float
    """Top of the scale of :attr:`Responses.rating`, a finite number > 0: the env observes the last
    rating divided by it (clipped to [0, 1]). A model without ratings (every rating 0) says 1.0."""

    def sample(self, n: int, rng: np.random.Generator) -> Any:
        """State of ``n`` new users."""
        ...

    def replace(self, state: Any, mask: np.ndarray, rng: np.random.Generator) -> None:
        """Replace the users where ``mask`` is true by new ones, in place (autoreset)."""
        ...

    def features(self, state: Any) -> np.ndarray:
        """``(n, n_user_features)`` float32 observable user features."""
        ...

    def user_index(self, state: Any) -> np.ndarray:
        """``(n,)`` int64 index of the logged user each simulated user was drawn from (-1: none)."""
        ...

    def respond(self, state: Any, slates: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> Responses:
        """Users' responses to ``(n, k)`` item-index slates; ``valid`` masks empty/duplicate slots."""
        ...

    def update(self, state: Any, slates: np.ndarray, responses: Responses, rng: np.random.Generator) -> None:
        """Advance the users' state after a step (interest drift, fatigue, patience), in place."""
        ...

    def left(self, state: Any) -> np.ndarray:
        """``(n,)`` bool: which users have ended their session."""
        ...



@runtime_checkable
class ReturningUserModel(UserModel, Protocol):
    """A :class:`UserModel` whose users come back: the seam of the lifetime env.

    ``left`` then means "this *session* ended" (not churn). Between sessions the lifetime env asks how
    long each user stays away and then opens the user's next session; the user keeps their identity,
    interests and history, and only per-session state is reset.
    """

    def return_gaps(self, state: Any, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Days until each of ``rows`` (whose session just ended) starts their next session, ``(len(rows),)``
        float64; ``np.inf`` for a user who never returns."""
        ...

    def start_session(self, state: Any, rows: np.ndarray, days_elapsed: np.ndarray, rng: np.random.Generator) -> None:
        """Open a new session for ``rows`` after ``days_elapsed`` days away (per-session state reset in place)."""
        ...


@runtime_checkable
class RewardFn(Protocol):
    """Maps a step's responses to one scalar reward per user."""

    def __call__(self, responses: Responses) -> np.ndarray:
        """``(n,)`` float32 rewards."""
        ...


@runtime_checkable
class Recommender(Protocol):
    """Anything that acts in a recommendation env: baselines and agents alike.

    Shaped like Stable-Baselines3's ``PolicyPredictor`` so that one evaluation function serves all.
    ``observation`` is the env's Dict observation, batched (leading axis ``n``) or not; the action is
    ``(n, slate_size)`` (or ``(slate_size,)``) candidate positions, in display order.
    """

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        ...
