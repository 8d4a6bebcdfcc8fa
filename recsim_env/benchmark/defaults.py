"""The policies, simulators and training contexts that ship with recsim-env, registered.

:mod:`~recsim_env.benchmark.registry` holds the types and the empty tables; importing this module
fills them (:mod:`~recsim_env.benchmark.policies`, :mod:`~recsim_env.benchmark.simulators` register on
import). Everything that looks a name up in the tables imports them from here, so the registry never
imports its own builders.
"""

from __future__ import annotations

from recsim_env.benchmark import policies as _policies  # noqa: F401  (registers the policies)
from recsim_env.benchmark import simulators as _simulators  # noqa: F401  (registers the simulators)
from recsim_env.benchmark.registry import (
    CONTEXTS,
    POLICIES,
    SIMULATORS,
    policy_spec,
    simulator_spec,
)

DEFAULT_SIMULATORS = tuple(name for name, spec in SIMULATORS.items() if spec.default)
"""The simulators a config runs when it names none (the lifetime ones are opt-in)."""

__all__ = ["CONTEXTS", "DEFAULT_SIMULATORS", "POLICIES", "SIMULATORS", "policy_spec", "simulator_spec"]
