import numpy as np
import pytest

from agents.replay import EpisodeReturns, ReplayBuffer


def _obs(values: np.ndarray) -> dict[str, np.ndarray]:
    return {"x": values.astype(np.float32)[:, None], "candidates": np.tile(values.astype(np.int64)[:, None], (1, 3))}


def _add(buf: ReplayBuffer, values: np.ndarray) -> None:
    n = len(values)
    buf.add(_obs(values), np.zeros((n, 2), np.int64), np.full(n, -1), values.astype(np.float32), _obs(values + 100),
            np.zeros(n, np.float32))


def test_ring_overwrites_oldest_and_pairs_obs_with_next_obs() -> None:
    buf = ReplayBuffer(5, np.random.default_rng(0))
    _add(buf, np.arange(4))
    _add(buf, np.arange(4, 8))
    assert len(buf) == 5
    batch = buf.gather(np.arange(5))
    assert sorted(batch.reward.tolist()) == [3, 4, 5, 6, 7]
    np.testing.assert_array_equal(batch.next_obs["x"][:, 0], batch.obs["x"][:, 0] + 100)


def test_state_dict_round_trip_and_sampling_continue_identically() -> None:
    buf = ReplayBuffer(10, np.random.default_rng(0))
    _add(buf, np.arange(7))
    clone = ReplayBuffer(10, np.random.default_rng(0))
    clone.load_state_dict(buf.state_dict())
    _add(buf, np.arange(7, 12))
    _add(clone, np.arange(7, 12))
    np.testing.assert_array_equal(buf.sample(6).reward, clone.sample(6).reward)


def test_empty_buffer_and_bad_capacity() -> None:
    with pytest.raises(RuntimeError, match="empty"):
        ReplayBuffer(3, np.random.default_rng(0)).sample(1)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, np.random.default_rng(0))


def test_episode_returns_are_discounted_returns_to_go_per_user() -> None:
    tracker = EpisodeReturns(2, gamma=0.5)
    rewards = [np.array([1.0, 2.0]), np.array([0.0, 4.0]), np.array([2.0, 8.0])]
    dones = [np.array([False, False]), np.array([False, True]), np.array([True, False])]
    for t, (r, d) in enumerate(zip(rewards, dones)):
        tracker.add(_obs(np.array([t, 10 + t])), np.zeros((2, 1), np.int64), np.zeros(2, np.int64), r, d)
    data = tracker.pop()
    # user 1 ends at t=1: returns 2 + .5*4 = 4, 4; user 0 ends at t=2: 1 + .5*(0 + .5*2) = 1.5, 1, 2
    got = {(float(x), float(g)) for x, g in zip(data.obs["x"][:, 0], data.ret)}
    assert got == {(10.0, 4.0), (11.0, 4.0), (0.0, 1.5), (1.0, 1.0), (2.0, 2.0)}
    assert tracker.pending[1] and len(tracker) == 0  # user 1's new episode is still open
