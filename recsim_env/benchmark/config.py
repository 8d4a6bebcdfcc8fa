"""`BenchmarkConfig`: what ``recsim benchmark`` runs, as a typed frozen object with a TOML file form.

A config file holds any subset of the fields; ``[budgets]`` is a table::

    policies = ["popularity", "neumf", "slateq"]
    simulators = ["ml100k-train", "synthetic"]
    seeds = 3
    out_dir = "runs/my-benchmark"

    [budgets]
    epochs = 5
    agent_steps = 50000

Precedence: defaults < ``quick`` budgets < the file < command-line overrides. Unknown field, policy,
simulator or metric names are a :class:`~recsim_env.errors.ConfigError` that lists the valid ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import tomllib

from recsim_env.benchmark.defaults import DEFAULT_SIMULATORS, POLICIES, SIMULATORS
from recsim_env.errors import ConfigError
from recsim_env.evaluation.rollout import ALL_METRICS


@dataclass(frozen=True)
class Budgets:
    """How long each kind of policy trains."""

    epochs: int = 30
    """Cap on the epochs of the torch baselines (MF-BPR, NeuMF, LightGCN, content) below their tuned recipe's own
    count (:mod:`baselines.recipes`); early stopping may end sooner."""
    agent_steps: int = 200_000
    """User-steps each RL agent trains for (a batched step of ``n`` users counts ``n``)."""
    train_envs: int = 64
    """Simulated users stepped together while an agent trains."""
    synthetic_log_users: int = 500
    """Users whose sessions make up the synthetic simulator's generated log."""
    slateq_steps: int = 0
    """User-steps SlateQ trains for; 0: ``agent_steps``. SlateQ steps several times faster than SB3 DQN,
    so a budget in minutes can give it the steps its long-term learning needs."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lowest = 0 if f.name == "slateq_steps" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                kind = "a non-negative" if lowest == 0 else "a positive"
                raise ConfigError(f"budgets.{f.name} must be {kind} integer, got {value!r}")

    def steps_for(self, agent: str) -> int:
        """User-steps the RL agent named ``agent`` (a benchmark policy name) trains for."""
        return self.slateq_steps if agent == "slateq" and self.slateq_steps else self.agent_steps

    @classmethod
    def quick(cls) -> "Budgets":
        """Smoke-run budgets: the whole ``--quick`` pipeline fits in minutes on two cores."""
        return cls(epochs=4, agent_steps=24_000, train_envs=32, synthetic_log_users=300,
                   slateq_steps=QUICK_SLATEQ_STEPS)


QUICK_SLATEQ_STEPS = 200_000
"""SlateQ's ``--quick`` budget (issue #12): measured in the synthetic simulator, SlateQ still loses to
random slates at 24k steps and wins by 200k (BENCHMARKS.md, "SlateQ time-to-quality")."""


QUICK_DEFAULTS = {"seeds": 3, "episodes": 200, "retrain_per_seed": False}
"""Fields ``quick`` changes unless the file or the command line sets them."""


WARM_START_SOURCES = ("mf-bpr", "neumf", "lightgcn", "content")
"""Baselines whose embeddings can warm-start the agents (they export ``embeddings()``)."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """One benchmark run: which policies, on which simulators, how many seeds, where the report goes."""

    policies: tuple[str, ...] = tuple(name for name, spec in POLICIES.items() if spec.default)
    """Policy names (see :data:`recsim_env.benchmark.registry.POLICIES`; by default those marked ``default``,
    all but ``planner``); ``oracle`` and ``planner`` run where a simulator has the true model."""
    simulators: tuple[str, ...] = DEFAULT_SIMULATORS
    """Simulator names (see :data:`recsim_env.benchmark.registry.SIMULATORS`); by default the session
    simulators, without the lifetime ones (``ml100k-train-lifetime``, ``ml100k-later-lifetime``,
    ``synthetic-lifetime``), which are named to run."""
    metrics: tuple[str, ...] = ALL_METRICS
    """Metrics shown in the terminal table and the markdown report (the CSV keeps them all)."""
    seeds: int = 5
    """Seeds per (policy, simulator): each trains the policy anew and evaluates it on its own users."""
    episodes: int = 500
    """Evaluation episodes per (policy, simulator, seed)."""
    slate_size: int = 10
    """Items per slate."""
    n_candidates: int = 100
    """Candidates the env offers per step."""
    out_dir: str = "runs/benchmark"
    """Run directory: results, report, plots, TensorBoard logs; an existing one is resumed."""
    quick: bool = False
    """A smoke run: :meth:`Budgets.quick`, 3 seeds, 200 episodes, policies trained once (unless set)."""
    retrain_per_seed: bool = True
    """Train each policy anew per seed (intervals cover training and evaluation noise); ``False``
    trains once (seed 0) and evaluates that policy on every seed's users (evaluation noise only)."""
    offline: bool = True
    """Also compute the offline NCF-protocol metrics (HR@10, NDCG@10) of the supervised baselines."""
    max_envs: int = 512
    """Most users stepped at once during evaluation."""
    warm_start: str = "mf-bpr"
    """The baseline (one of :data:`WARM_START_SOURCES`) fitted on each context's training log whose
    user/item embeddings start the RL agents' towers; ``""`` trains the agents from scratch."""
    budgets: Budgets = field(default_factory=Budgets)
    """Training budgets."""

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        for name, valid in (("policies", POLICIES), ("simulators", SIMULATORS), ("metrics", ALL_METRICS)):
            _check_names(name, getattr(self, name), valid)
        for name in ("seeds", "episodes", "slate_size", "n_candidates", "max_envs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.slate_size > self.n_candidates:
            raise ConfigError(f"slate_size={self.slate_size} exceeds n_candidates={self.n_candidates}")
        if self.warm_start not in ("",) + WARM_START_SOURCES:
            raise ConfigError(f"warm_start must be one of {list(WARM_START_SOURCES)} or '' (cold agents), "
                              f"got {self.warm_start!r}")
        if not isinstance(self.budgets, Budgets):
            raise ConfigError(f"budgets must be a Budgets, got {type(self.budgets).__name__}")

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir).expanduser()

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, file: str | Path | None = None, quick: bool = False, **overrides: Any) -> "BenchmarkConfig":
        """Defaults, then quick budgets, then the TOML ``file``, then ``overrides`` (``None`` values skipped)."""
        values: dict[str, Any] = {"quick": True} if quick else {}
        if file is not None:
            values.update(read_toml(file))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "BenchmarkConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        values = dict(values)
        quick = values.get("quick", False)
        _check_type("quick", quick, "bool")  # read before __post_init__ could refuse it
        budgets = _budgets(values.pop("budgets", {}), quick)
        if quick:
            for name, value in QUICK_DEFAULTS.items():
                values.setdefault(name, value)
        for name in ("policies", "simulators", "metrics"):
            if name in values:
                values[name] = _names(name, values[name])
        return cls(**values, budgets=budgets)

    def with_overrides(self, **overrides: Any) -> "BenchmarkConfig":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    # ------------------------------------------------------------------ TOML
    def to_toml(self) -> str:
        """The exact configuration as TOML; :func:`read_toml` of it rebuilds an equal config."""
        data = asdict(self)
        budgets = data.pop("budgets")
        lines = [f"{k} = {_toml_value(v)}" for k, v in data.items()]
        lines += ["", "[budgets]"] + [f"{k} = {_toml_value(v)}" for k, v in budgets.items()]
        return "\n".join(lines) + "\n"


def read_toml(path: str | Path) -> dict[str, Any]:
    """The fields of a TOML config file; a missing or malformed file is a :class:`ConfigError`."""
    path = Path(path).expanduser()
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition; say where the bad byte is
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _budgets(value: Any, quick: bool) -> Budgets:
    base = Budgets.quick() if quick else Budgets()
    if isinstance(value, Budgets):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"budgets must be a table of {', '.join(f.name for f in fields(Budgets))}, got {value!r}")
    known = {f.name for f in fields(Budgets)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown budgets field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return replace(base, **value)


def _check_type(field_name: str, value: Any, annotation: Any) -> None:
    """Refuse a value whose type is not the bool / str field's: TOML's ``"no"`` is truthy, so
    ``bool(value)`` would read it as true. Int fields are checked with their range; others pass."""
    if annotation in ("bool", bool) and not isinstance(value, bool):
        raise ConfigError(f"{field_name} must be true or false, got {value!r}")
    if annotation in ("str", str) and not isinstance(value, str):
        raise ConfigError(f"{field_name} must be a string, got {value!r}")


def _names(field_name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{field_name} must be a list of names, got {value!r}")
    names = tuple(str(v).strip() for v in value if str(v).strip())
    if not names:
        raise ConfigError(f"{field_name} must name at least one entry")
    return names


def _check_names(field_name: str, names: tuple[str, ...], valid: Any) -> None:
    if isinstance(names, str) or not isinstance(names, tuple) or not names:
        raise ConfigError(f"{field_name} must be a non-empty tuple of names, got {names!r}")
    unknown = [n for n in names if n not in valid]
    if unknown:
        singular = {"policies": "policy", "simulators": "simulator", "metrics": "metric"}[field_name]
        raise ConfigError(f"unknown {singular} name(s) {', '.join(map(repr, unknown))}; "
                          f"valid: {', '.join(valid)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{field_name} names an entry twice: {', '.join(names)}")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"cannot write non-finite number {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string with \u escapes is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} value {value!r} to TOML")
