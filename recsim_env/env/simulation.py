"""`SlateSimulation`: the batched step both envs run — ``RecEnv`` with one user, ``RecVectorEnv`` with N.

It owns the per-user bookkeeping the observation needs (history of consumed items, click counts,
step counters, this step's candidates) and turns a ``(n, slate_size)`` action of candidate positions
into the user model's ``respond`` / ``update`` calls. Every array operation is over all ``n`` users
at once; the only per-user Python code in a step is none.

Duplicates: a slate that repeats an item (the same candidate position twice, or two positions whose
candidates are the same item) shows it once, in its first slot; every later repeat is an *empty*
slot — item ``-1`` in ``info["slate"]``, masked out of the choice, never clicked. With
``duplicates="error"`` such an action raises :class:`~recsim_env.errors.ActionError` instead.

Randomness: three independent streams spawned from the reset seed (:class:`RandomStreams`) — users
(initial draws and autoreset replacements), candidates, and responses (the user model's ``respond``
and ``update``). Each step draws every row's next candidates with one call on the candidate stream,
whatever the policy did, so two policies run from the same seed see the same candidate sets in a
row for as long as that row's user is still in session (common random numbers).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from recsim_env.env.candidates import make_candidate_generator
from recsim_env.errors import ActionError, ConfigError
from recsim_env.protocols import Responses, RewardFn, UserModel

if TYPE_CHECKING:
    from recsim_env.data.catalog import ItemCatalog
    from recsim_env.env.config import EnvConfig

RESPONSE_KEYS = ("click", "rating", "like", "dwell")


def rating_scale(user_model: UserModel) -> float:
    """The model's ``max_rating`` (the protocol's top of the rating scale), checked once here: a missing
    or non-positive one would otherwise turn every rating observation into NaN or inf later."""
    if not hasattr(user_model, "max_rating"):
        raise ConfigError(f"{type(user_model).__name__} has no max_rating, the UserModel protocol's top of the "
                          f"rating scale (the env observes rating / max_rating); say 1.0 for a model without ratings")
    try:
        scale = float(user_model.max_rating)
    except (TypeError, ValueError):
        scale = float("nan")
    if not np.isfinite(scale) or scale <= 0:
        raise ConfigError(f"{type(user_model).__name__}.max_rating must be a finite number > 0, got "
                          f"{user_model.max_rating!r}")
    return scale


class RandomStreams(NamedTuple):
    """The env's independent random streams, so that what a policy does cannot shift another stream."""

    users: np.random.Generator
    """New users: the reset's draw and every autoreset replacement."""
    candidates: np.random.Generator
    """Each step's candidate items (one draw for all rows, whatever the action)."""
    responses: np.random.Generator
    """The user model's ``respond`` and ``update`` (choices, ratings, state noise)."""

    @classmethod
    def from_seed(cls, seed: int | None) -> "RandomStreams":
        """Streams spawned from ``SeedSequence(seed)`` (``None``: fresh OS entropy)."""
        children = np.random.SeedSequence(seed).spawn(len(cls._fields))
        return cls(*(np.random.default_rng(child) for child in children))


class UserStateView:
    """What the single and the vector env share over their simulation (``self._sim``)."""

    _sim: "SlateSimulation"

    @property
    def user_state(self) -> Any:
        """The user model's current state object, e.g. for an oracle's
        ``user_model.true_utilities(env.user_state, ...)``.

        Hidden from policies (it is not in the observation); read-only by convention and live: the
        model updates it in place each step, row ``i`` being the user behind observation row ``i``."""
        return self._sim.state


class SlateSimulation:
    """``n`` simulated users with their candidates and history, stepped as arrays."""

    def __init__(self, user_model: UserModel, catalog: "ItemCatalog | None", config: "EnvConfig",
                 reward_fn: RewardFn, n: int) -> None:
        if catalog is not None and catalog.n_items != user_model.n_items:
            raise ConfigError(f"catalog has {catalog.n_items} items but the user model has {user_model.n_items}")
        if config.n_candidates > user_model.n_items:
            raise ConfigError(f"n_candidates={config.n_candidates} exceeds the {user_model.n_items} items")
        self.model, self.config, self.reward_fn, self.n = user_model, config, reward_fn, n
        popularity = catalog.popularity if catalog is not None else None
        self.candidate_generator = make_candidate_generator(
            config.candidates, user_model.n_items, config.n_candidates, popularity, config.popularity_share)
        if config.include_candidate_features and catalog is None:
            raise ConfigError("include_candidate_features=True needs an ItemCatalog for the item features")
        self.item_features = catalog.content_features() if config.include_candidate_features else None
        self.max_rating = rating_scale(user_model)
        k, c = config.slate_size, config.n_candidates
        self._earlier = np.tril(np.ones((k, k), dtype=bool), -1)  # [j, i]: slot i comes before slot j
        # Row offsets turn (n, k) positions into indices of the flattened (n, C) candidates: a flat
        # gather is several times cheaper than take_along_axis.
        self._row_offsets = (np.arange(n, dtype=np.int64) * c)[:, None]
        # Scratch for duplicate detection; int32 halves the randomly written table (n < 2**31 / k).
        self._slot_ids = np.arange(n * k, dtype=np.int32)
        self._first_slot = np.empty(n * c, dtype=np.int32)
        # `valid` of a slate without repeats, shared across steps: read-only, so a model that wrote
        # to its input would fail loudly instead of corrupting later steps.
        self._no_repeat = np.ones((n, k), dtype=bool)
        self._no_repeat.setflags(write=False)
        self.state: Any = None
        self.streams: RandomStreams | None = None

    # --- lifecycle --------------------------------------------------------------------------------
    def reset(self, seed: int | None) -> None:
        """New users; ``seed`` re-spawns the random streams, ``None`` continues them (fresh entropy at first)."""
        if seed is not None or self.streams is None:
            self.streams = RandomStreams.from_seed(seed)
        n, h = self.n, self.config.history_length
        self.state = self.model.sample(n, self.streams.users)
        self.steps = np.zeros(n, dtype=np.int64)
        self.clicks = np.zeros(n, dtype=np.float64)
        self.last_click = np.zeros(n, dtype=np.float32)
        self.last_rating = np.zeros(n, dtype=np.float32)
        self.history_items = np.full((n, h), -1, dtype=np.int64)
        self.history_responses = np.zeros((n, h, 3), dtype=np.float32)
        self.candidates = self.candidate_generator(n, self.streams.candidates)

    def replace(self, rows: np.ndarray) -> None:
        """New users in ``rows`` (their candidates were already drawn for the next step)."""
        mask = np.zeros(self.n, dtype=bool)
        mask[rows] = True
        self.model.replace(self.state, mask, self.streams.users)
        for array, value in ((self.steps, 0), (self.clicks, 0.0), (self.last_click, 0.0),
                             (self.last_rating, 0.0), (self.history_items, -1), (self.history_responses, 0.0)):
            array[rows] = value

    # --- state export (checkpoints) ---------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Everything a later step depends on, as numpy arrays and plain values (no objects): the
        env's counters and histories, this step's candidates, the user state's arrays and every
        random stream's ``bit_generator.state``. The candidate generator keeps nothing between steps
        (its tables follow from the config); its draws come from the candidate stream.

        Raises :class:`NotImplementedError` before the first reset, or for a user state that is not a
        dataclass or dict of arrays (e.g. :class:`~recsim_env.users.adapter.PerUserAdapter`'s list
        of user objects)."""
        if self.streams is None:
            raise NotImplementedError("the simulation has no state before its first reset")
        arrays = {name: getattr(self, name).copy() for name in _SIM_ARRAYS}
        streams = {name: stream.bit_generator.state for name, stream in zip(RandomStreams._fields, self.streams)}
        return {"arrays": arrays, "streams": streams, "user_state": _user_state_arrays(self.state)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`get_state`'s output (of a simulation of the same model, config and ``n``).

        Raises :class:`ConfigError` naming the entry whose shape or dtype differs from this simulation's."""
        if self.streams is None:
            self.reset(0)  # builds arrays, user state and streams of the right shapes, overwritten below
        arrays = _matching(state["arrays"], {name: getattr(self, name) for name in _SIM_ARRAYS}, "state['arrays']")
        template = _user_state_arrays(self.state)
        user_arrays = _matching(state["user_state"], template, "state['user_state']")
        for name, stream in zip(RandomStreams._fields, self.streams):
            stream.bit_generator.state = state["streams"][name]
        for name, value in arrays.items():
            setattr(self, name, value)
        if isinstance(self.state, dict):
            self.state = dict(user_arrays)
        else:
            self.state = dataclasses.replace(self.state, **user_arrays)

    def set_streams(self, states: dict[str, Any]) -> None:
        """Set every random stream's ``bit_generator.state`` from ``states`` (by stream name, as
        :meth:`get_state`'s ``"streams"``; other names are not this simulation's and are left): a planner's
        copy meets the same draws at one step of every rollout."""
        for name, stream in zip(RandomStreams._fields, self.streams):
            stream.bit_generator.state = states[name]

    # --- one step ---------------------------------------------------------------------------------
    def step(self, action: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Show the slates; returns ``(reward, terminated, truncated, info)`` with ``(n, ...)`` arrays."""
        positions = self.check_action(action)
        flat = positions + self._row_offsets
        slates = self.candidates.take(flat)  # ndarray.take: ~2x cheaper than the same fancy index
        valid = self._first_occurrences(flat)
        if valid is not self._no_repeat:
            slates[~valid] = -1
        rng = self.streams.responses
        responses = self.model.respond(self.state, slates, valid, rng)
        reward = np.asarray(self.reward_fn(responses), dtype=np.float32)
        self.model.update(self.state, slates, responses, rng)
        self._record(slates, responses)
        terminated = np.array(self.model.left(self.state), dtype=bool)
        truncated = (self.steps >= self.config.step_cap) & ~terminated
        self.candidates = self.candidate_generator(self.n, self.streams.candidates)
        info = {"click": responses.click, "rating": responses.rating, "like": responses.like,
                "dwell": responses.dwell, "choice": responses.choice, "slate": slates}
        return reward, terminated, truncated, info

    def check_action(self, action: Any) -> np.ndarray:
        """``(n, slate_size)`` int64 positions, or :class:`ActionError` naming the offending slot."""
        a = np.asarray(action)
        expected = (self.n, self.config.slate_size)
        if a.shape != expected:
            if self.n == 1 and a.shape == expected[1:]:
                a = a.reshape(expected)  # the single env's (slate_size,) action
            else:
                raise ActionError(f"action must have shape {expected[1:] if self.n == 1 else expected} "
                                  f"(candidate positions per slot), got shape {a.shape}")
        if a.dtype.kind not in "iu":
            raise ActionError(self._dtype_message(a))
        n_candidates = self.config.n_candidates
        # One reduction for both bounds: seen as unsigned, a negative position is a huge one.
        if a.view(f"u{a.itemsize}").max() >= n_candidates:
            user, slot = np.argwhere((a < 0) | (a >= n_candidates))[0]
            raise ActionError(f"{self._where(user, slot)} holds candidate position {a[user, slot]}, "
                              f"outside [0, {n_candidates})")
        return a.astype(np.int64, copy=False)

    def _dtype_message(self, a: np.ndarray) -> str:
        if a.dtype.kind == "f":
            bad = np.argwhere(~np.isfinite(a))
            if len(bad):
                return f"{self._where(*bad[0])} is {a[tuple(bad[0])]}: actions must be finite integers"
            return (f"actions must be integer candidate positions, got dtype {a.dtype} "
                    f"(first slot value {a.flat[0]!r}); cast with .astype(int) if that is meant")
        return f"actions must be integer candidate positions, got dtype {a.dtype}"

    def _where(self, user: int, slot: int) -> str:
        return f"slot {slot}" if self.n == 1 else f"env {user}, slot {slot}"

    def _first_occurrences(self, flat: np.ndarray) -> np.ndarray:
        """``(n, k)`` bool: True where the slot's candidate does not appear in an earlier slot.

        Candidates within a row are distinct items, so a repeated position is exactly a repeated item.
        """
        if self.n < 64:
            # Few users: the (n, k, k) pairwise comparison is the fewest numpy calls.
            repeat = ((flat[:, :, None] == flat[:, None, :]) & self._earlier).any(axis=2)
        else:
            # Many users, O(n·k): scatter slot ids forward, so the *last* slot of each candidate wins.
            # A slot that reads back another id has a later repeat; none at all (the common case: a
            # policy's slate of distinct positions) means every slot is a first occurrence, and costs
            # one scatter and one contiguous gather instead of the reversed, strided pair below.
            ids = flat.ravel()
            self._first_slot[ids] = self._slot_ids
            if (self._first_slot.take(ids) == self._slot_ids).all():
                return self._no_repeat
            # Some repeat: scatter in reverse so the first slot of each candidate wins.
            self._first_slot[ids[::-1]] = self._slot_ids[::-1]
            repeat = (self._first_slot.take(ids) != self._slot_ids).reshape(flat.shape)
        if self.config.duplicates == "error" and repeat.any():
            user, slot = np.argwhere(repeat)[0]
            position = flat[user, slot] - self._row_offsets[user, 0]
            raise ActionError(f"{self._where(user, slot)} repeats candidate position {position} shown in an "
                              f"earlier slot (EnvConfig.duplicates='error')")
        return ~repeat

    def _record(self, slates: np.ndarray, responses: Responses) -> None:
        self.steps += 1
        clicked_rows = responses.choice >= 0
        # Dense passes over n for the counters: cheaper than a fancy read-modify-write per array.
        np.copyto(self.last_click, clicked_rows)
        self.clicks += self.last_click
        self.last_rating.fill(0.0)
        rows = clicked_rows.nonzero()[0]
        if not len(rows):
            return
        # Flat indices of the clicked (row, slot) pairs: one 1-D `take` per response array instead of
        # a 2-D fancy index each.
        clicked = rows * self.config.slate_size + responses.choice[rows]
        rating = responses.rating.take(clicked)
        self.last_rating[rows] = rating
        # Shift the clicked rows' histories on a gathered copy and write each row back once.
        items = self.history_items.take(rows, axis=0)
        items[:, :-1] = items[:, 1:]
        items[:, -1] = slates.take(clicked)
        self.history_items[rows] = items
        history = self.history_responses.take(rows, axis=0)
        history[:, :-1] = history[:, 1:]
        newest = history[:, -1]
        newest[:, 0] = rating
        newest[:, 1] = responses.like.take(clicked)
        newest[:, 2] = responses.dwell.take(clicked)
        self.history_responses[rows] = history

    # --- observation ------------------------------------------------------------------------------
    def observe(self, rows: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        """Arrays for the given rows of users that the env never writes to after returning them."""
        steps = self.steps[rows]
        context = np.empty((len(steps), 4), dtype=np.float32)
        context[:, 0] = steps / self.config.step_cap
        context[:, 1] = self.clicks[rows] / np.maximum(steps, 1)
        context[:, 2] = self.last_click[rows]
        # Ratings outside [0, max_rating] (a model's own scale) must not leave the Box(0, 1).
        np.minimum(np.maximum(self.last_rating[rows] / self.max_rating, 0.0), 1.0, out=context[:, 3])
        # Candidates are drawn into a fresh array every step and only read afterwards: no copy.
        candidates = self.candidates[rows]
        obs = {
            "user_index": np.array(self.model.user_index(self.state), dtype=np.int64)[rows].reshape(-1, 1),
            "user_features": np.array(self.model.features(self.state)[rows], dtype=np.float32),
            "history_items": self.history_items[rows].copy(),
            "history_responses": self.history_responses[rows].copy(),
            "candidates": candidates,
            "context": context,
        }
        if self.item_features is not None:
            obs["candidate_features"] = self.item_features[candidates]
        return obs


_SIM_ARRAYS = ("steps", "clicks", "last_click", "last_rating", "history_items", "history_responses", "candidates")
"""The simulation's own per-user arrays that carry over from one step to the next."""


def _user_state_arrays(state: Any) -> dict[str, np.ndarray | None]:
    """A user state's fields as copied arrays; the state must be a dataclass or dict of arrays (or ``None``)."""
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        fields = {field.name: getattr(state, field.name) for field in dataclasses.fields(state)}
    elif isinstance(state, dict):
        fields = dict(state)
    else:
        raise NotImplementedError(f"a user state of type {type(state).__name__} cannot be exported: only a "
                                  f"dataclass or dict of numpy arrays can")
    for name, value in fields.items():
        if value is not None and not isinstance(value, np.ndarray):
            raise NotImplementedError(f"user state field {name!r} is a {type(value).__name__}, not a numpy array: "
                                      f"the state cannot be exported")
    return {name: None if value is None else value.copy() for name, value in fields.items()}


def _matching(saved: dict[str, Any], current: dict[str, np.ndarray | None], where: str) -> dict[str, Any]:
    """Copies of ``saved``'s arrays, checked against ``current``'s names, shapes and dtypes."""
    if set(saved) != set(current):
        raise ConfigError(f"{where} has entries {sorted(saved)}, this simulation {sorted(current)}")
    restored: dict[str, Any] = {}
    for name, value in saved.items():
        mine = current[name]
        if (value is None) != (mine is None):
            raise ConfigError(f"{where}[{name!r}] is {'None' if value is None else 'an array'}, this simulation's "
                              f"{'None' if mine is None else 'an array'}")
        if mine is not None and (np.shape(value) != mine.shape or np.asarray(value).dtype != mine.dtype):
            raise ConfigError(f"{where}[{name!r}] has shape {np.shape(value)} and dtype {np.asarray(value).dtype}, "
                              f"this simulation's {mine.shape} and {mine.dtype}")
        restored[name] = None if value is None else np.array(value, copy=True)
    return restored


class SingleUserSimulation(SlateSimulation):
    """:class:`SlateSimulation` for exactly one user: what :class:`~recsim_env.env.rec_env.RecEnv` steps.

    The user model sees the same ``(1, k)`` arrays and the same random streams as a one-row batch;
    only the env's own bookkeeping is specialised. With one user, each numpy call costs far more
    than the arithmetic it does, so the action is checked as a Python list, the counters are Python
    numbers and the observation is built unbatched (no ``(1, ...)`` arrays to index back down).
    """

    def __init__(self, user_model: UserModel, catalog: "ItemCatalog | None", config: "EnvConfig",
                 reward_fn: RewardFn) -> None:
        super().__init__(user_model, catalog, config, reward_fn, n=1)
    def reset(self, seed: int | None) -> None:
        super().reset(seed)
        self._steps, self._clicks, self._last_click, self._last_rating = 0, 0.0, 0.0, 0.0
        self._history_items = self.history_items[0]
        self._history_responses = self.history_responses[0]
        self._candidates = self.candidates[0]

    def replace(self, rows: np.ndarray) -> None:
        raise NotImplementedError("a single-user simulation starts a new user with reset()")

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError("a single-user simulation keeps its counters as Python numbers; export a batched one")

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError(
            "a single-user simulation keeps its counters as Python numbers; restore a batched one"
        )

    def step(self, action: Any) -> tuple[float, bool, bool, dict]:  # type: ignore[override]
        """Show the slate; returns ``(reward, terminated, truncated, info)`` as Python scalars / ``(k,)`` arrays."""
        positions = self._positions(action)
        slate = self._candidates.take(positions)
        if len(set(positions)) == len(positions):
            valid = self._no_repeat
        else:
            valid = self._first_occurrences(np.asarray(positions, dtype=np.int64)[None])
            slate[~valid[0]] = -1
        slates = slate[None]
        rng = self.streams.responses
        responses = self.model.respond(self.state, slates, valid, rng)
        reward = float(self.reward_fn(responses)[0])
        self.model.update(self.state, slates, responses, rng)
        choice = responses.choice[0]
        self._steps += 1
        self._record(int(choice), slate, responses)
        terminated = bool(self.model.left(self.state)[0])
        truncated = self._steps >= self.config.step_cap and not terminated
        self._candidates = self.candidate_generator(1, self.streams.candidates)[0]
        info = {"click": responses.click[0], "rating": responses.rating[0], "like": responses.like[0],
                "dwell": responses.dwell[0], "choice": choice, "slate": slate}
        return reward, terminated, truncated, info

    def _positions(self, action: Any) -> list[int]:
        """The action's candidate positions as a list; anything unusual takes the batched checks' errors."""
        if type(action) is np.ndarray and action.shape == (self.config.slate_size,) and action.dtype.kind in "iu":
            positions = action.tolist()
            if min(positions) >= 0 and max(positions) < self.config.n_candidates:
                return positions
        return self.check_action(action)[0].tolist()

    def _record(self, choice: int, slate: np.ndarray, responses: Responses) -> None:  # type: ignore[override]
        if choice < 0:
            self._last_click = self._last_rating = 0.0
            return
        rating = float(responses.rating[0, choice])
        self._clicks += 1.0
        self._last_click, self._last_rating = 1.0, rating
        items, history = self._history_items, self._history_responses
        items[:-1] = items[1:]
        items[-1] = slate[choice]
        history[:-1] = history[1:]
        history[-1] = (rating, float(responses.like[0, choice]), float(responses.dwell[0, choice]))

    def observe_one(self) -> dict[str, np.ndarray]:
        """The single user's observation (unbatched), from arrays nothing writes to afterwards."""
        steps = self._steps
        rating = min(max(self._last_rating / self.max_rating, 0.0), 1.0)
        context = np.array((steps / self.config.step_cap, self._clicks / max(steps, 1), self._last_click, rating),
                           dtype=np.float32)
        obs = {
            "user_index": np.array(self.model.user_index(self.state), dtype=np.int64),
            "user_features": np.array(self.model.features(self.state)[0], dtype=np.float32),
            "history_items": self._history_items.copy(),
            "history_responses": self._history_responses.copy(),
            "candidates": self._candidates,
            "context": context,
        }
        if self.item_features is not None:
            obs["candidate_features"] = self.item_features[self._candidates]
        return obs
