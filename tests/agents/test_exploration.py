import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.exploration import LinearSchedule, epsilon_mix, random_slates
from recsim_env.errors import ConfigError


def test_schedule_decays_linearly_then_holds() -> None:
    sched = LinearSchedule(1.0, 0.1, 0.5)
    assert sched(0, 100) == 1.0
    assert sched(25, 100) == pytest.approx(0.55)
    assert sched(50, 100) == pytest.approx(0.1) and sched(99, 100) == pytest.approx(0.1)


def test_schedule_in_progress_units_decays_over_its_fraction() -> None:
    """SlateQ calls it with progress in [0, 1] and total 1: epsilon must reach its end at ``fraction``
    (it used to decay over the whole run, a floor of 1 on ``fraction * total``)."""
    sched = LinearSchedule(1.0, 0.05, 0.3)
    assert sched(0.15, 1.0) == pytest.approx(0.525)
    assert sched(0.3, 1.0) == pytest.approx(0.05) and sched(0.9, 1.0) == pytest.approx(0.05)


@pytest.mark.parametrize("kwargs", [{"start": 1.5}, {"end": -0.1}, {"fraction": 0.0}])
def test_schedule_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="LinearSchedule"):
        LinearSchedule(**kwargs)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), c=st.integers(1, 20), data=st.data())
def test_random_slates_hold_distinct_valid_positions(n: int, c: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, c))
    slates = random_slates(n, c, k, np.random.default_rng(data.draw(st.integers(0, 99))))
    assert slates.shape == (n, k) and slates.min() >= 0 and slates.max() < c
    assert all(len(set(row)) == k for row in slates.tolist())


def test_epsilon_mix_extremes() -> None:
    greedy = np.tile(np.arange(3), (200, 1))
    rng = np.random.default_rng(0)
    assert np.array_equal(epsilon_mix(greedy, 0.0, 10, rng), greedy)
    mixed = epsilon_mix(greedy, 1.0, 10, rng)
    assert (mixed != greedy).any(axis=1).mean() > 0.9
