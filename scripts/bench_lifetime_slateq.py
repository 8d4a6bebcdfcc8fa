"""``recsim benchmark`` with SlateQ (or REINFORCE) variants registered beside ``slateq`` (``reinforce``): other
discounts or n-step returns for training over lifetimes, chosen on ``ml100k-train-lifetime`` only (issue #12's
lifetime target).

    python scripts/bench_lifetime_slateq.py --variant gamma=0.98,n_step=10 -- \\
        benchmark --quick --policies neumf,slateq,slateq-gamma0.98-n_step10 \\
        --simulators ml100k-train-lifetime --out runs/lifetime-gamma
    python scripts/bench_lifetime_slateq.py --agent reinforce --variant gamma=0.99 -- benchmark ... reinforce-gamma0.99

Each ``--variant`` registers a policy ``<agent>-<field><value>-...`` that trains the agent through the benchmark's
own builder (:func:`recsim_env.benchmark.policies.agent_builder`) with those fields of its config
(:class:`~agents.slateq.SlateQConfig`, :class:`~agents.reinforce.ReinforceConfig`) and the agent's budget;
everything after ``--`` is the ``recsim`` command line. Figures: BENCHMARKS.md, "SlateQ trained in the lifetime
simulators" and "All three agents trained in the fitted lifetime simulators".
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

AGENTS = ("slateq", "reinforce")
"""The agents whose config a variant sets (:data:`agents.factory.CONFIGS`)."""


def parse_variant(text: str, agent: str = "slateq") -> dict[str, Any]:
    """``"gamma=0.98,n_step=10"`` -> ``{"gamma": 0.98, "n_step": 10}`` (each a field of the agent's config,
    read by :func:`agents.factory.config_fields`)."""
    from agents.factory import config_fields
    from recsim_env.errors import ConfigError

    try:
        return config_fields(agent, text.split(","), "--variant")
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None


def register_variant(values: dict[str, Any], agent: str = "slateq") -> str:
    from agents.factory import CONFIGS
    from recsim_env.benchmark.policies import agent_builder
    from recsim_env.benchmark.registry import PolicySpec, register_policy

    name = f"{agent}-" + "-".join(f"{k}{v}" for k, v in values.items())
    register_policy(PolicySpec(name, agent_builder(agent, CONFIGS[agent](**values)), "agent",
                               f"{agent} with {values}", default=False))
    return name


def main() -> int:
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", choices=AGENTS, default="slateq", help="whose config the variants set")
    parser.add_argument("--variant", action="append", default=[], help="config fields, e.g. gamma=0.98,n_step=10")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    for text in args.variant:
        print("registered", register_variant(parse_variant(text, args.agent), args.agent), file=sys.stderr)
    from recsim_env.cli.main import main as recsim

    return recsim(rest)


if __name__ == "__main__":
    sys.exit(main())
