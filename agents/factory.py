"""Agents by name: build one for an env, train it (or resume), and load a trained one as a policy.

The names are those of ``recsim train --agent``: ``sb3-dqn``, ``slateq``, ``reinforce``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.checkpoint import checkpoint_agent, load_checkpoint
from agents.networks import ObservationSpec
from agents.reinforce import ReinforceAgent, ReinforceConfig
from agents.slateq import SlateQAgent, SlateQConfig
from agents.training import TrainConfig, TrainResult, train
from agents.warm_start import Embeddings, check_compatible, load_embeddings
from recsim_env.errors import ArtifactError, ConfigError

logger = logging.getLogger(__name__)

AGENTS = ("sb3-dqn", "slateq", "reinforce")
_CLASSES = {"slateq": SlateQAgent, "reinforce": ReinforceAgent}
CONFIGS = {"slateq": SlateQConfig, "reinforce": ReinforceConfig}
"""The config dataclass of each agent of ours (SB3 DQN takes keyword arguments instead)."""


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def config_fields(agent: str, pairs: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """``["gamma=0.98", "double_q=false"]`` -> ``{"gamma": 0.98, "double_q": False}``: fields of the agent's
    config (:data:`CONFIGS`), each value read as its field's type (int, float, bool, str). A ConfigError
    names the pair at fault (``flag``: the option they came from); the ranges are the config's own checks.
    """
    if agent not in CONFIGS:
        raise ConfigError(f"{flag} sets fields of {' / '.join(c.__name__ for c in CONFIGS.values())} "
                          f"(agents {', '.join(CONFIGS)}); {agent!r} takes none")
    config = CONFIGS[agent]
    kinds = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
             for f in dataclasses.fields(config)}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = (part.strip() for part in pair.partition("="))
        if not sep or not name:
            raise ConfigError(f"{flag} {pair!r}: give FIELD=VALUE, e.g. {flag} gamma=0.98")
        if name not in kinds:
            raise ConfigError(f"{flag} {pair!r}: {name!r} is not a {config.__name__} field "
                              f"(its fields: {', '.join(kinds)})")
        if name in out:
            raise ConfigError(f"{flag} {pair!r}: {name} is set twice")
        out[name] = _read_value(kinds[name], name, text, flag, config.__name__)
    return out


def _read_value(kind: str, name: str, text: str, flag: str, config: str) -> Any:
    if kind == "bool":
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
    elif kind == "str":
        if text:
            return text
        raise ConfigError(f"{flag}: {name} is empty")
    elif kind in ("int", "float"):
        try:
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            value = None
        if value is not None and math.isfinite(value):
            return value
    else:
        raise ConfigError(f"{flag}: {config}.{name} is a {kind}; set it from Python ({config}({name}=...))")
    what = {"int": "an int", "float": "a finite float"}.get(kind, "a bool")  # nan / inf slip past range checks
    raise ConfigError(f"{flag}: {name}={text!r} is not {what}"
                      + (f" (one of {', '.join(_TRUE + _FALSE)})" if kind == "bool" else ""))


def env_item_ids(env: Any) -> Any:
    """The env's original item ids (for warm-start vocabulary checks), or None when it has no catalog."""
    catalog = getattr(getattr(env, "unwrapped", env), "catalog", None)
    return None if catalog is None else catalog.item_ids


def read_warm_start(path: str | Path, env: Any, items_only_if_users_differ: bool = False) -> Embeddings:
    """Load a baselines' embeddings file and check it against ``env``'s items and users.

    With ``items_only_if_users_differ``, user vectors for another user space than the env's (a log
    of some of a simulator's users) are dropped, with a log line, instead of being an error."""
    emb = load_embeddings(path)
    spec = ObservationSpec.from_space(env.single_observation_space)
    if items_only_if_users_differ and emb.user is not None and spec.n_users > 0 and len(emb.user) != spec.n_users:
        logger.info("%s: %d user vectors for the env's %d logged users; warm-starting items only",
                    path, len(emb.user), spec.n_users)
        emb = replace(emb, user_embeddings=None, user_ids=None)
    check_compatible(emb, spec.n_items, spec.n_users, env_item_ids(env))
    return emb


def build_agent(name: str, env: Any, seed: int = 0, warm_start: Embeddings | None = None, config: Any = None) -> Any:
    """An untrained agent for the batched ``env`` (an SB3 ``DQN`` for ``sb3-dqn``)."""
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; choose one of {list(AGENTS)}")
    if name == "sb3-dqn":
        from agents.sb3_dqn import DEFAULT_CREDIT, DEFAULT_FILL, batched_discrete_env, make_sb3_dqn

        kwargs = dict(config or {})
        # The view's rules, not DQN arguments.
        view = batched_discrete_env(env, fill=kwargs.pop("fill", DEFAULT_FILL),
                                    credit=kwargs.pop("credit", DEFAULT_CREDIT))
        return make_sb3_dqn(view, seed=seed, warm_start=warm_start, **kwargs)
    spec = ObservationSpec.from_space(env.single_observation_space)
    slate_size = len(env.single_action_space.nvec)
    return _CLASSES[name](spec, slate_size, config or CONFIGS[name](), seed=seed, warm_start=warm_start)


def train_agent(
    name: str,
    env: Any,
    config: TrainConfig,
    seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    warm_start: Embeddings | None = None,
    agent_config: Any = None,
) -> tuple[Any, TrainResult]:
    """Build (or resume from ``out_dir``) and train an agent; returns it as a slate policy and the result."""
    if name == "sb3-dqn":
        from agents.sb3_dqn import (
            SB3SlatePolicy,
            batched_discrete_env,
            fill_scorer,
            load_sb3_checkpoint,
            train_sb3_dqn,
        )

        curve = None
        if resume:
            if out_dir is None:
                raise ConfigError("--resume needs --out, the directory holding the checkpoint")
            model, curve = load_sb3_checkpoint(Path(out_dir) / "checkpoint.pt", batched_discrete_env(env))
        else:
            model = build_agent(name, env, seed, warm_start, agent_config)
        result = train_sb3_dqn(model, config, out_dir, curve)
        return SB3SlatePolicy(model, len(env.single_action_space.nvec), fill_scorer(model)), result
    agent = build_agent(name, env, seed, warm_start, agent_config)
    return agent, train(agent, env, config, seed, out_dir, resume)


def load_agent(path: str | Path) -> Any:
    """A trained agent from its checkpoint, ready to ``predict``.

    SB3 DQN: its pick in slot 0, the fill it trained with after."""
    kind = checkpoint_agent(path)
    if kind == "SB3DQN":
        from agents.sb3_dqn import SB3SlatePolicy, fill_scorer, load_sb3_checkpoint

        model, _ = load_sb3_checkpoint(path)
        return SB3SlatePolicy(model, model.slate_size, fill_scorer(model))
    for cls in _CLASSES.values():
        if cls.name == kind:
            return cls.from_state(load_checkpoint(path, cls.name, cls.format_version)["agent"])
    raise ArtifactError(f"checkpoint {path} was written by {kind!r}, which this version cannot load")


def check_fits(policy: Any, env: Any, source: str | Path, env_name: str) -> None:
    """ConfigError unless a loaded agent's shapes match ``env``'s (batched) spaces, naming the field."""
    spec = ObservationSpec.from_space(env.single_observation_space)
    slate_size = len(env.single_action_space.nvec)
    if hasattr(policy, "spec"):  # SlateQ, REINFORCE
        have = {**vars(policy.spec), "slate_size": policy.slate_size}
    else:  # SB3 DQN: one Q per candidate; the Discrete view's other keys are the env's own
        have = {"n_candidates": int(policy.model.action_space.n), "slate_size": policy.slate_size}
    want = {**vars(spec), "slate_size": slate_size}
    for field, value in have.items():
        if field == "lifetime" and not value:
            continue  # an agent that does not read the lifetime keys acts in any env (it ignores them)
        if want[field] != value:
            raise ConfigError(f"{source}: the agent was trained with {field}={value}, but {env_name} has "
                              f"{field}={want[field]}; evaluate it in an env of the shape it was trained in")
