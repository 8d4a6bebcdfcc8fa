"""``recsim benchmark`` with SlateQ variants registered beside ``slateq``: other discounts or n-step returns
for training over lifetimes, chosen on ``ml100k-train-lifetime`` only (issue #12's lifetime target).

    python scripts/bench_lifetime_slateq.py --variant gamma=0.98,n_step=10 -- \\
        benchmark --quick --policies neumf,slateq,slateq-gamma0.98-n_step10 \\
        --simulators ml100k-train-lifetime --out runs/lifetime-gamma

Each ``--variant`` registers a policy ``slateq-<field><value>-...`` that trains SlateQ through the benchmark's
own builder (:func:`recsim_env.benchmark.policies.agent_builder`) with those
:class:`~agents.slateq.SlateQConfig` fields and SlateQ's budget; everything after ``--`` is the
``recsim`` command line. Figures: BENCHMARKS.md, "SlateQ trained in the lifetime simulators".
"""

from __future__ import annotations

import argparse
import dataclasses
import sys


def parse_variant(text: str) -> dict[str, float | int]:
    """``"gamma=0.98,n_step=10"`` -> ``{"gamma": 0.98, "n_step": 10}`` (each a SlateQConfig field)."""
    from agents.slateq import SlateQConfig

    fields = {f.name: f.type for f in dataclasses.fields(SlateQConfig)}
    out: dict[str, float | int] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name not in fields:
            raise SystemExit(f"--variant: {name!r} is not a SlateQConfig field")
        kind = int if fields[name] in ("int", int) else float
        try:
            out[name] = kind(value)
        except ValueError:
            raise SystemExit(f"--variant: {name}={value!r} is not a {kind.__name__} "
                             f"(give FIELD=VALUE pairs, e.g. gamma=0.98,n_step=10)") from None
    return out


def register_variant(values: dict[str, float | int]) -> str:
    from agents.slateq import SlateQConfig
    from recsim_env.benchmark.policies import agent_builder
    from recsim_env.benchmark.registry import PolicySpec, register_policy

    name = "slateq-" + "-".join(f"{k}{v}" for k, v in values.items())
    register_policy(PolicySpec(name, agent_builder("slateq", SlateQConfig(**values)), "agent",
                               f"SlateQ with {values}", default=False))
    return name


def main() -> int:
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", default=[], help="SlateQConfig fields, e.g. gamma=0.98,n_step=10")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    for text in args.variant:
        print("registered", register_variant(parse_variant(text)), file=sys.stderr)
    from recsim_env.cli.main import main as recsim

    return recsim(rest)


if __name__ == "__main__":
    sys.exit(main())
