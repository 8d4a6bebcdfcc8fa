"""RL agents vs myopic baselines in the ML-100K simulator (and the later-split and synthetic ones).

Per seed (one worker process each, ``--jobs`` at a time): SlateQ, SB3 DQN and REINFORCE train in the
simulator fitted on the earlier part of ML-100K; each trained policy, and the myopic baselines
(random, popularity, MF-BPR, NeuMF; fitted once on the same log), is evaluated with common random
numbers on that simulator and on the one fitted on the later part, which no policy trained against.
In the synthetic simulator (clickbait drains the users' time budget) SlateQ trains there and meets
popularity and the myopic oracle (greedy on the true utilities). Warm vs cold: SlateQ on every seed,
the other agents on seed 0, started from MF-BPR's exported embeddings. Intervals: 95% t-intervals over seeds.
Prints a markdown section (paste into BENCHMARKS.md) and writes CSVs and a learning-curve plot.

    python scripts/bench_agents.py [--seeds 5] [--jobs 2] [--slateq-steps 150000] [--dqn-steps 120000]
        [--reinforce-steps 150000] [--episodes 300] [--num-envs 64] [--out runs/bench_agents] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2, help="seeds trained at once (processes)")
    p.add_argument("--slateq-steps", type=int, default=150_000)
    p.add_argument("--dqn-steps", type=int, default=120_000)
    p.add_argument("--reinforce-steps", type=int, default=150_000)
    p.add_argument("--synthetic-steps", type=int, default=100_000, help="SlateQ's budget in the synthetic simulator")
    p.add_argument("--episodes", type=int, default=300, help="evaluation episodes per policy, simulator and seed")
    p.add_argument("--num-envs", type=int, default=64, help="users stepped together in training")
    p.add_argument("--dqn-gradient-steps", type=int, default=1, help="SB3 DQN gradient steps per batched env step")
    p.add_argument("--dqn-gamma", type=float, default=None, help="SB3 DQN's discount (default: make_sb3_dqn's)")
    p.add_argument("--agents", default="slateq,sb3-dqn,reinforce", help="comma-separated subset to train")
    p.add_argument("--no-warm", dest="warm", action="store_false", help="skip the warm-start runs")
    p.add_argument("--out", type=Path, default=Path("runs/bench_agents"))
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.slateq_steps, args.dqn_steps, args.reinforce_steps = 2, 3_000, 3_000, 3_000
        args.synthetic_steps, args.episodes = 3_000, 50
    return args


# ------------------------------------------------------------------ simulators
def simulators() -> dict[str, Any]:
    """name -> ``num_envs -> RecVectorEnv`` (slate 10, 100 candidates: the env defaults)."""
    from recsim_env.env.config import EnvConfig
    from recsim_env.env.vector import RecVectorEnv
    from recsim_env.fit.datasets import movielens_user_model
    from recsim_env.users.synthetic import SyntheticUserModel

    sims = {}
    for name, split in (("ml100k-train", "train"), ("ml100k-later", "later")):
        model, catalog = movielens_user_model(split=split)
        sims[name] = (model, catalog)
    synthetic = SyntheticUserModel()
    sims["synthetic"] = (synthetic, synthetic.catalog())
    return {name: (lambda n, m=m, c=c: RecVectorEnv(m, c, EnvConfig(), num_envs=n)) for name, (m, c) in sims.items()}


def myopic_baselines(seed: int) -> dict[str, Any]:
    """Baselines fitted on the earlier ML-100K log's leave-one-out split; they rank candidates greedily."""
    from baselines.mf import BPRMF
    from baselines.ncf import NeuMF
    from baselines.popularity import Popularity, RandomConfig, RandomScores
    from baselines.training import LoopConfig
    from recsim_env.data.splits import leave_one_out
    from recsim_env.fit.datasets import movielens_splits

    early, _ = movielens_splits()
    split = leave_one_out(early)
    models = {"random": RandomScores(RandomConfig(seed=seed), slate_size=10), "popularity": Popularity(slate_size=10),
              "mf-bpr": BPRMF(train=LoopConfig(seed=seed), slate_size=10),
              "neumf": NeuMF(train=LoopConfig(seed=seed), slate_size=10)}
    for model in models.values():
        model.fit(split)
    return models


def export_warm_start(model: Any, out: Path) -> Path:
    from baselines.embeddings import export_embeddings
    from recsim_env.fit.datasets import movielens_splits

    return export_embeddings(model, movielens_splits()[0], out / "mf_bpr_embeddings.npz")


# ------------------------------------------------------------------ one seed
def _train(name: str, factory: Any, steps: int, seed: int, n_envs: int, warm: Path | None = None,
           agent_config: Any = None) -> tuple[Any, dict]:
    import torch

    from agents.factory import read_warm_start, train_agent
    from agents.training import TrainConfig

    torch.set_num_threads(1)
    env = factory(n_envs)
    emb = read_warm_start(warm, env) if warm is not None else None
    start = time.perf_counter()
    policy, result = train_agent(name, env, TrainConfig(total_steps=steps, log_interval=max(steps // 25, n_envs),
                                                        checkpoint_interval=0, progress=False), seed, None, False, emb,
                                 agent_config)
    wall = time.perf_counter() - start
    return policy, {"wall_s": wall, "steps": result.steps, "steps_per_s": result.steps / wall,
                    "curve": with_wall_clock(result.curve)}


def with_wall_clock(curve: list[dict[str, float]]) -> list[dict[str, float]]:
    """Each logged row with ``time/wall_s``, the training seconds up to it (from each window's
    ``time/env_steps_per_s``), so return can be read against wall-clock time as well as env steps."""
    rows = []
    seconds = 0.0
    last_step = 0.0
    for row in curve:
        rate = row.get("time/env_steps_per_s", 0.0)
        seconds += (row["step"] - last_step) / rate if rate > 0 else 0.0
        last_step = row["step"]
        rows.append({**row, "time/wall_s": seconds})
    return rows


def _evaluate(policy: Any, factory: Any, episodes: int, seed: int) -> dict[str, float]:
    from recsim_env.evaluation.rollout import evaluate

    per_seed = evaluate(policy, factory, n_episodes=episodes, seed=seed).per_seed().iloc[0]
    return {k: float(per_seed[k]) for k in ("return", "ctr", "like_rate", "session_length") if k in per_seed}


def run_seed(seed: int, args: argparse.Namespace, warm: str | None) -> dict[str, Any]:
    """Train the agents of one seed and evaluate them on every simulator (in a worker process)."""
    sims = simulators()
    rows, runs = [], []
    budgets = {"slateq": args.slateq_steps, "sb3-dqn": args.dqn_steps, "reinforce": args.reinforce_steps}
    configs = {"sb3-dqn": {"gradient_steps": args.dqn_gradient_steps,
                           **({} if args.dqn_gamma is None else {"gamma": args.dqn_gamma})}}
    for name, steps in budgets.items():
        if name not in args.agents.split(","):
            continue
        # SlateQ, the headline agent, runs warm on every seed; the others warm on seed 0 (the curves).
        inits = [None] + ([Path(warm)] if warm is not None and (name == "slateq" or seed == 0) else [])
        for init in inits:
            policy, info = _train(name, sims["ml100k-train"], steps, seed, args.num_envs, init, configs.get(name))
            label = name if init is None else f"{name}-warm"
            runs.append({"agent": name, "seed": seed, "init": "cold" if init is None else "warm (MF-BPR)", **info})
            if init is None or name == "slateq":
                for sim in ("ml100k-train", "ml100k-later"):
                    rows.append({"policy": label, "simulator": sim, "seed": seed,
                                 **_evaluate(policy, sims[sim], args.episodes, seed)})
    if "slateq" not in args.agents.split(","):
        return {"rows": rows, "runs": runs}
    policy, info = _train("slateq", sims["synthetic"], args.synthetic_steps, seed, args.num_envs)
    runs.append({"agent": "slateq@synthetic", "seed": seed, "init": "cold", **info})
    rows.append({"policy": "slateq", "simulator": "synthetic", "seed": seed,
                 **_evaluate(policy, sims["synthetic"], args.episodes, seed)})
    return {"rows": rows, "runs": runs}


# ------------------------------------------------------------------ baselines side
def evaluate_baselines(args: argparse.Namespace, models: dict[str, Any]) -> list[dict[str, Any]]:
    from recsim_env.benchmark.policies import OraclePolicy

    sims = simulators()
    rows = []
    for seed in range(args.seeds):
        for name, model in models.items():
            for sim in ("ml100k-train", "ml100k-later"):
                rows.append(
                    {"policy": name, "simulator": sim, "seed": seed, **_evaluate(model, sims[sim], args.episodes, seed)}
                )
        venv = sims["synthetic"](min(args.episodes, 512))
        rows.append({"policy": "oracle-myopic", "simulator": "synthetic", "seed": seed,
                     **_evaluate(OraclePolicy(10).bind_env(venv), venv, args.episodes, seed)})
        rows.append({"policy": "random", "simulator": "synthetic", "seed": seed,
                     **_evaluate(models["random"], sims["synthetic"], args.episodes, seed)})
    return rows


# ------------------------------------------------------------------ report
def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    from recsim_env.evaluation.metrics import mean_confidence_interval

    out = []
    for (sim, policy), group in rows.groupby(["simulator", "policy"], sort=False):
        row = {"simulator": sim, "policy": policy, "seeds": len(group)}
        for metric in ("return", "ctr", "session_length"):
            mean, low, high = mean_confidence_interval(group[metric].to_numpy())
            row.update({metric: mean, f"{metric}_low": low, f"{metric}_high": high})
        out.append(row)
    return pd.DataFrame(out)


def margin_line(summary: pd.DataFrame, sim: str, agent: str, myopic: list[str]) -> str:
    table = summary[summary.simulator == sim].set_index("policy")
    if agent not in table.index:
        return ""
    best = table.loc[[p for p in myopic if p in table.index], "return"].idxmax()
    a, b = table.loc[agent], table.loc[best]
    ratio = a["return"] / b["return"]
    apart = a["return_low"] > b["return_high"]
    return (f"- {sim}: {agent} {a['return']:.2f} [{a['return_low']:.2f}, {a['return_high']:.2f}] vs best myopic "
            f"{best} {b['return']:.2f} [{b['return_low']:.2f}, {b['return_high']:.2f}]: ratio {ratio:.3f}, "
            f"intervals {'do not overlap' if apart else 'overlap'}")


def markdown(
    summary: pd.DataFrame, runs: pd.DataFrame, args: argparse.Namespace, loads: list[float], wall: float
) -> str:
    lines = [
        "| simulator | policy | seeds | mean episode return [95% CI] | CTR | session length |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        lines.append(f"| {r.simulator} | {r.policy} | {r.seeds} | {r['return']:.2f} [{r.return_low:.2f}, "
                     f"{r.return_high:.2f}] | {r.ctr:.3f} | {r.session_length:.1f} |")
    myopic = ["random", "popularity", "mf-bpr", "neumf", "oracle-myopic"]
    lines += ["", *[m for m in (margin_line(summary, s, a, myopic) for a in ("slateq", "slateq-warm", "sb3-dqn")
                                for s in ("ml100k-train", "ml100k-later", "synthetic")) if m]]
    lines += ["", "| agent | init | seeds | training wall s (median) | env-steps/s (median) | final training return |",
              "|---|---|---|---|---|---|"]
    for (agent, init), g in runs.groupby(["agent", "init"], sort=False):
        final = [
            next((c["episode/return"] for c in reversed(curve) if "episode/return" in c), np.nan) for curve in g.curve
        ]
        lines.append(f"| {agent} | {init} | {len(g)} | {g.wall_s.median():.0f} | {g.steps_per_s.median():.0f} | "
                     f"{np.nanmean(final):.2f} |")
    lines += ["", f"Whole run {wall / 60:.1f} min, {args.jobs} seeds at a time; 1-min load average "
                  f"{loads[0]:.1f} at the start, {loads[1]:.1f} at the end (2 cores shared with other engineers)."]
    return "\n".join(lines)


def plot_curves(runs: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seed0 = runs[(runs.seed == 0) & ~runs.agent.str.contains("@")]
    fig, axes = plt.subplots(1, seed0.agent.nunique(), figsize=(5 * seed0.agent.nunique(), 3.5), squeeze=False)
    for ax, (agent, g) in zip(axes[0], seed0.groupby("agent", sort=False)):
        for _, run in g.iterrows():
            pts = [(c["step"], c["episode/return"]) for c in run.curve if "episode/return" in c]
            ax.plot(*zip(*pts), label=run.init)
        ax.set_title(agent)
        ax.set_xlabel("user-steps")
        ax.set_ylabel("training episode return")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    import torch

    torch.set_num_threads(1)
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    models = myopic_baselines(0)
    warm = str(export_warm_start(models["mf-bpr"], args.out)) if args.warm else None
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_seed, seed, args, warm) for seed in range(args.seeds)]
        rows = evaluate_baselines(args, models)
        results = [f.result() for f in futures]
    rows += [r for res in results for r in res["rows"]]
    runs = pd.DataFrame([r for res in results for r in res["runs"]])
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "per_seed.csv", index=False)
    summary = summarize(table)
    summary.to_csv(args.out / "summary.csv", index=False)
    runs.drop(columns="curve").to_csv(args.out / "training.csv", index=False)
    (args.out / "curves.json").write_text(json.dumps(runs[["agent", "init", "seed", "curve"]].to_dict("records")))
    plot_curves(runs, args.out / "learning_curves.png")
    print(markdown(summary, runs, args, [load_start, os.getloadavg()[0]], time.perf_counter() - start))


if __name__ == "__main__":
    main()
