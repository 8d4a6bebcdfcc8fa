"""Every agent trains on a user simulator of one's own: exactly the README's ``MyUser`` example.

The README says the agents work unchanged on a model lifted by ``PerUserAdapter``; such a model has
no logged users (``n_logged_users == 0``), which SlateQ and REINFORCE once crashed on at their first
``act()``. The example is read from the README itself, so the test follows what users copy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.factory import load_agent, train_agent
from agents.known_users import KnownUsers
from agents.training import TrainConfig
from recsim_env import EnvConfig, PerUserAdapter, RecVectorEnv, evaluate

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Plug in your own user simulator"
TINY = TrainConfig(total_steps=96, log_interval=48, progress=False)


def readme_example() -> dict[str, Any]:
    """The namespace of the README's first Python block under :data:`HEADING`, run as written."""
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"{README} has no section {HEADING!r}"
    block = re.search(r"```python\n(.*?)```", text.split(HEADING, 1)[1], flags=re.DOTALL)
    assert block is not None, f"no ```python block under {HEADING!r} in {README}"
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(block.group(1), f"{README}:{HEADING}", "exec"), namespace)  # noqa: S102 - the repo's own README
    return namespace


@pytest.fixture(scope="module")
def my_user() -> type:
    return readme_example()["MyUser"]


def own_vector_env(my_user: type, num_envs: int = 4) -> RecVectorEnv:
    return RecVectorEnv(PerUserAdapter(my_user), None, EnvConfig(n_candidates=20, slate_size=5), num_envs=num_envs)


def test_the_readme_example_has_no_logged_users(my_user: type) -> None:
    # the case under test: the adapter's default, and so the example's
    assert PerUserAdapter(my_user).n_logged_users == 0


@pytest.mark.parametrize("name", ["slateq", "reinforce", "sb3-dqn"])
def test_every_agent_trains_on_the_readme_user_model(name: str, my_user: type, tmp_path: Path) -> None:
    policy, result = train_agent(name, own_vector_env(my_user), TINY, seed=0, out_dir=tmp_path)
    assert result.steps >= TINY.total_steps
    obs, _ = own_vector_env(my_user).reset(seed=1)
    slates = policy.predict(obs)[0]
    assert slates.shape == (4, 5)
    assert ((slates >= 0) & (slates < 20)).all()
    # the saved agent reloads and acts the same, and evaluate scores it over the same model
    np.testing.assert_array_equal(load_agent(result.checkpoint).predict(obs)[0], slates)
    stats = evaluate(policy, own_vector_env(my_user), n_episodes=4, seed=0)
    # MyUser clicks slot 0 of every slate for 10 steps: a return of 10 whatever the agent shows
    assert np.allclose(stats.episodes["return"], 10.0)


def test_masking_with_no_logged_users_reads_every_user_as_no_user() -> None:
    known = KnownUsers(0)
    known.add(np.array([[-1], [3]]))
    out = known.mask({"user_index": torch.tensor([[-1], [3]])}, drop=np.array([True, False]))
    assert out["user_index"][:, 0].tolist() == [-1, -1]
