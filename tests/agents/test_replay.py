import numpy as np
import pytest

from agents.replay import EpisodeReturns, NStepReturns, ReplayBuffer, Transition


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


def _one_step(t: int, reward: list[float], terminated: list[bool]) -> Transition:
    """Two env slots; slot 0's observation reads t, slot 1's t + 100, the next observation one more."""
    obs, nxt = {"x": np.array([[t], [t + 100]])}, {"x": np.array([[t + 1], [t + 101]])}
    return Transition(obs, np.zeros((2, 1), np.int64), np.array([0, -1]), np.array(reward, np.float32), nxt,
                      np.array(terminated), np.zeros(2, bool))


def test_n_step_returns_sum_rewards_until_n_steps_or_the_episode_end() -> None:
    acc = NStepReturns(3, 0.5)
    rewards = [[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]]
    ends = [[False, False], [False, True], [False, False], [False, False], [True, False]]
    out = set()
    for t in range(5):
        for done in acc.add(_one_step(t, rewards[t], ends[t])):
            for i in range(len(done.reward)):
                out.add((int(done.obs["x"][i, 0]), float(done.reward[i]), int(done.next_obs["x"][i, 0]),
                         bool(done.terminated[i]), int(done.horizon[i]), int(done.choice[i])))
    assert out == {
        (0, 1 + 0.5 * 2 + 0.25 * 3, 3, False, 3, 0), (1, 2 + 0.5 * 3 + 0.25 * 4, 4, False, 3, 0),
        (2, 3 + 0.5 * 4 + 0.25 * 5, 5, True, 3, 0), (3, 4 + 0.5 * 5, 5, True, 2, 0), (4, 5.0, 5, True, 1, 0),
        # slot 1: the user left at t=1, so the steps before bootstrap nothing past it; the next user's start at t=2
        (100, 10 + 0.5 * 20, 102, True, 2, -1), (101, 20.0, 102, True, 1, -1), (102, 30 + 0.5 * 40 + 0.25 * 50, 105,
                                                                                 False, 3, -1),
    }
    assert acc.discard() == 2 and acc.add(_one_step(5, [0, 0], [False, False])) == []  # slot 1's t=3, 4


def test_n_step_state_round_trips_and_the_buffer_keeps_the_horizon() -> None:
    acc = NStepReturns(4, 0.9)
    for t in range(2):
        acc.add(_one_step(t, [1.0, 2.0], [False, False]))
    clone = NStepReturns(2, 0.1)
    clone.load_state_dict(acc.state_dict())
    finished = [acc.add(_one_step(t, [1.0, 2.0], [False, t == 3])) for t in (2, 3)]
    again = [clone.add(_one_step(t, [1.0, 2.0], [False, t == 3])) for t in (2, 3)]
    for mine, theirs in zip(finished, again):
        assert [d.reward.tolist() for d in mine] == [d.reward.tolist() for d in theirs]
    buf = ReplayBuffer(8, np.random.default_rng(0))
    for done in finished[1]:
        buf.add(done.obs, done.slate, done.choice, done.reward, done.next_obs, done.terminated.astype(np.float32),
                done.horizon)
    assert sorted(buf.gather(np.arange(len(buf))).horizon.tolist()) == [1, 2, 3, 4, 4]  # t=0: both slots
    with pytest.raises(ValueError, match="n must be"):
        NStepReturns(1, 0.9)


def test_gap_days_are_stored_when_given_and_never_half_given() -> None:
    buf = ReplayBuffer(8, np.random.default_rng(0))
    t = _one_step(0, [1, 2], [False, False])
    buf.add(t.obs, t.slate, t.choice, t.reward, t.next_obs, t.terminated, gap_days=np.array([0.0, 3.5]))
    assert sorted(buf.gather(np.array([0, 1])).gap_days.tolist()) == [0.0, 3.5]
    with pytest.raises(ValueError, match="gap_days given: False, but the buffer stores them"):
        buf.add(t.obs, t.slate, t.choice, t.reward, t.next_obs, t.terminated)
    plain = ReplayBuffer(8, np.random.default_rng(0))
    plain.add(t.obs, t.slate, t.choice, t.reward, t.next_obs, t.terminated)
    assert plain.gather(np.array([0])).gap_days is None
    with pytest.raises(ValueError, match="does not store them"):
        plain.add(t.obs, t.slate, t.choice, t.reward, t.next_obs, t.terminated, gap_days=np.zeros(2))
