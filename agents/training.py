"""The one training loop for our own agents (SlateQ, REINFORCE), and the episode bookkeeping and
TensorBoard logging it shares with the SB3 DQN callback.

An agent plugs in by implementing :class:`TrainableAgent`: it picks slates (``act``), sees each
batched transition (``observe``) and decides itself when and how to learn (``update``) — an
off-policy learner samples its replay buffer, an on-policy one waits for finished episodes. The loop
owns everything else: stepping the batched env, episode statistics, logging, progress, atomic
checkpoints and resume (agent, counters, the env's users and every RNG state).

The env goes into a checkpoint as data, never as a pickle: an env with ``get_state()`` (as
:class:`~recsim_env.env.vector.RecVectorEnv`) gives arrays and plain values that ``set_state()`` takes
back, and a resumed run is then the uninterrupted one, bit for bit. An env without them (or whose
users cannot be exported) is not saved; a resumed run then starts fresh users, and drops what
belonged to the departed ones — the running episode sums and the agent's unfinished episodes
(``discard_unfinished_episodes``, where the agent has it) — with a warning, rather than splicing
two users' steps into one episode.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.replay import Transition
from recsim_env.env.vector import merge_final_info
from recsim_env.errors import ArtifactError, ConfigError

logger = logging.getLogger(__name__)

LOOP_FORMAT = 2
"""2: the env as ``get_state()`` data (1: a pickle), and the losses of the unlogged window."""


class TrainableAgent(Protocol):
    """What :func:`train` drives. An agent that keeps steps of unfinished episodes (REINFORCE) also
    has ``discard_unfinished_episodes() -> int``, called when a resumed run cannot restore the env's
    users, so that those steps are not joined to the next user's."""

    name: str
    """Agent class name written into checkpoints."""
    format_version: int

    def act(self, obs: dict[str, np.ndarray], explore: bool) -> np.ndarray: ...
    def observe(self, transition: Transition) -> None: ...
    def update(self, progress: float) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class TrainConfig:
    """Budget and bookkeeping of one training run."""

    total_steps: int = 200_000
    """User-steps to train for (a batched step of ``n`` users counts ``n``)."""
    log_interval: int = 10_000
    """User-steps between TensorBoard / log lines."""
    checkpoint_interval: int = 50_000
    """User-steps between checkpoints (0: only at the end)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        for name in ("total_steps", "log_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_interval < 0:
            raise ConfigError(f"TrainConfig.checkpoint_interval must be >= 0, got {self.checkpoint_interval}")


def _check_same_config(agent: Any, state: dict[str, Any], path: Path) -> None:
    """ConfigError unless the agent resuming ``path`` has the config its checkpoint was trained with
    (``load_state_dict`` restores weights and counters, not the config: resuming under another one
    would go on silently with other hyperparameters, or fail deep inside torch on a shape)."""
    saved, mine = state.get("config"), getattr(agent, "config", None)
    if saved is None or mine is None or saved == mine:
        return
    differ = [f.name for f in dataclasses.fields(mine) if getattr(saved, f.name, None) != getattr(mine, f.name)]
    was = ", ".join(f"{k}={getattr(saved, k, None)!r}" for k in differ)
    now = ", ".join(f"{k}={getattr(mine, k)!r}" for k in differ)
    raise ConfigError(f"checkpoint {path} was trained with {was}; this run asks for {now}: resume with the "
                      f"run's own config (recsim train: the same --set and --warm-start)")


def clicked_slots(info: dict[str, Any], n: int) -> np.ndarray:
    """``(n,)`` slot each user clicked (``-1`` none) from the step's per-slot ``info`` arrays
    (pass them through :func:`~recsim_env.env.vector.merge_final_info` first when episodes ended)."""
    if "choice" in info:
        return np.asarray(info["choice"], dtype=np.int64).reshape(n)
    click = np.asarray(info["click"]).reshape(n, -1)
    return np.where(click.any(axis=1), click.argmax(axis=1), -1).astype(np.int64)


def session_gaps(info: dict[str, Any], n: int) -> np.ndarray | None:
    """``(n,)`` days each user was away before the observation the step led to: a lifetime env's
    ``info["gap_days"]`` where the step ended a session and the user came back, else 0; None for an
    env without it (a session env)."""
    if "gap_days" not in info:
        return None
    gaps = np.asarray(info["gap_days"], dtype=np.float64).reshape(n)
    returned = np.asarray(info["returned"], dtype=bool).reshape(n)
    return np.where(returned, gaps, 0.0).astype(np.float32)


def final_observations(obs: dict[str, np.ndarray], info: dict[str, Any], done: np.ndarray) -> dict[str, np.ndarray]:
    """The observation each step led to: with SAME_STEP autoreset, rows of ended episodes hold the
    next user's first observation and the departed user's last one is in ``info["final_obs"]``."""
    if not done.any() or "final_obs" not in info:
        return obs
    final = info["final_obs"]
    out = {k: v.copy() for k, v in obs.items()}
    for i in np.flatnonzero(done):
        for key in out:
            # Gymnasium vector envs give an object array of per-env dicts; a native one may give a dict of arrays.
            out[key][i] = final[i][key] if isinstance(final, np.ndarray) else final[key][i]
    return out


class EpisodeTracker:
    """Running per-user episode sums; finished episodes are collected until :meth:`drain`."""

    def __init__(self, n: int) -> None:
        self.ret, self.clicks, self.likes, self.length = (np.zeros(n) for _ in range(4))
        self.finished: list[tuple[float, float, float, float]] = []

    def update(self, reward: np.ndarray, info: dict[str, Any], done: np.ndarray) -> None:
        n = len(reward)
        self.ret += reward
        self.clicks += clicked_slots(info, n) >= 0
        if "like" in info:
            self.likes += np.asarray(info["like"]).reshape(n, -1).sum(1)
        self.length += 1
        for i in np.flatnonzero(done):
            self.finished.append((self.ret[i], self.clicks[i] / self.length[i], self.likes[i] / self.length[i],
                                  self.length[i]))
        for arr in (self.ret, self.clicks, self.likes, self.length):
            arr[done] = 0.0

    def drain(self) -> dict[str, float]:
        if not self.finished:
            return {}
        ret, ctr, like, length = np.asarray(self.finished).mean(0)
        count = len(self.finished)
        self.finished = []
        return {"episode/return": ret, "episode/ctr": ctr, "episode/like_rate": like, "episode/length": length,
                "episode/count": float(count)}


class ScalarLogger:
    """TensorBoard scalars plus the learning curve kept in memory (and in checkpoints)."""

    def __init__(self, log_dir: Path | None) -> None:
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(log_dir))
        self.curve: list[dict[str, float]] = []

    def log(self, step: int, scalars: dict[str, float]) -> None:
        self.curve.append({"step": float(step), **{k: float(v) for k, v in scalars.items()}})
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class TrainResult:
    """What :func:`train` returns: the learning curve and the final step count."""

    steps: int
    curve: list[dict[str, float]]
    checkpoint: Path | None


def env_state(env: Any) -> dict[str, Any] | None:
    """``env.get_state()`` (arrays and plain values), or ``None``, with a warning, when it has none."""
    get_state = getattr(env, "get_state", None)
    if get_state is None:
        logger.warning("%s has no get_state(); a resumed run starts fresh users", type(env).__name__)
        return None
    try:
        return get_state()
    except NotImplementedError as exc:
        logger.warning("%s cannot give its state (%s); a resumed run starts fresh users", type(env).__name__, exc)
        return None


def _restore_env(env: Any, state: dict[str, Any] | None) -> bool:
    """Put the checkpoint's users back into ``env``; False when the checkpoint or the env cannot."""
    set_state = getattr(env, "set_state", None)
    if state is None or set_state is None:
        return False
    set_state(state)
    return True


def _drop_cut_episodes(agent: TrainableAgent, stats: EpisodeTracker, finished: list) -> None:
    """After a resume onto fresh users: forget the departed users' running sums and unfinished steps."""
    stats.finished = list(finished)  # whole episodes: still valid, and not yet logged
    discard = getattr(agent, "discard_unfinished_episodes", None)
    dropped = discard() if discard is not None else 0
    logger.warning("the checkpoint's env users could not be restored: resuming with fresh users, dropping the "
                   "running episode sums of %d users and %d steps of unfinished episodes", stats.ret.size, dropped)


def _check_same_step(env: Any) -> None:
    """:class:`ConfigError` unless ``env`` autoresets SAME_STEP (as :func:`recsim_env.evaluation.rollout.evaluate`
    requires): under NEXT_STEP the step after an episode's end only resets, and the loop would store
    it as a transition whose zero-filled info reads as a click in slot 0."""
    mode = getattr(env, "metadata", {}).get("autoreset_mode", gym.vector.AutoresetMode.SAME_STEP)
    if gym.vector.AutoresetMode(mode) != gym.vector.AutoresetMode.SAME_STEP:
        raise ConfigError(f"train needs a vector env with autoreset_mode SAME_STEP, got {mode!r}")


def train(agent: TrainableAgent, env: Any, config: TrainConfig, seed: int, out_dir: str | Path | None = None,
          resume: bool = False) -> TrainResult:
    """Train ``agent`` on the batched ``env`` (a Gymnasium ``VectorEnv`` with the contract's Dict
    observations and autoreset SAME_STEP) for ``config.total_steps`` user-steps.

    With ``out_dir``, TensorBoard logs go to ``out_dir/tb`` and checkpoints to ``out_dir/checkpoint.pt``;
    ``resume=True`` continues the run saved there (same counters, replay, RNG streams, env users;
    fresh users, without the cut episodes, for an env without ``get_state``: see the module docstring).
    """
    _check_same_step(env)
    torch.set_num_threads(1)
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / "checkpoint.pt" if out is not None else None
    scalars = ScalarLogger(out / "tb" if out is not None else None)
    n = int(env.num_envs)
    stats = EpisodeTracker(n)
    step = 0
    obs = None
    if resume:
        if ckpt_path is None:
            raise ConfigError("resume=True needs out_dir, where the checkpoint to resume lives")
        payload = load_checkpoint(ckpt_path, agent.name, agent.format_version)
        loop = payload["loop"]
        if loop.get("format") != LOOP_FORMAT:
            raise ArtifactError(f"checkpoint {ckpt_path} has training-loop format {loop.get('format', 1)}; this "
                                f"version resumes format {LOOP_FORMAT}: train again without resume")
        _check_same_config(agent, payload["agent"], ckpt_path)
        agent.load_state_dict(payload["agent"])
        step = loop["step"]
        scalars.curve = loop["curve"]
        resumed_losses = loop["losses"]
        if _restore_env(env, loop["env"]):
            obs = loop["obs"]
            stats.__dict__.update(loop["stats"])
        else:
            _drop_cut_episodes(agent, stats, loop["stats"]["finished"])
        logger.info("resumed %s at step %d from %s", agent.name, step, ckpt_path)
    if obs is None:
        obs, _ = env.reset(seed=int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
    losses: dict[str, list[float]] = resumed_losses if resume else {}
    next_log = (step // config.log_interval + 1) * config.log_interval
    next_ckpt = (
        (step // config.checkpoint_interval + 1) * config.checkpoint_interval if config.checkpoint_interval else None
    )
    bar = tqdm(total=config.total_steps, initial=step, disable=not config.progress, unit="step", desc=agent.name)
    clock = time.perf_counter()
    clock_step = step
    while step < config.total_steps:
        slate = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = env.step(slate)
        done = np.logical_or(terminated, truncated)
        reward = np.asarray(reward, dtype=np.float32)
        info = merge_final_info(info, done)
        agent.observe(
            Transition(
                obs,
                slate,
                clicked_slots(info, n),
                reward,
                final_observations(next_obs, info, done),
                np.asarray(terminated),
                np.asarray(truncated),
                gap_days=session_gaps(info, n),
            )
        )
        stats.update(reward, info, done)
        obs, step = next_obs, step + n
        for key, value in agent.update(step / config.total_steps).items():
            losses.setdefault(key, []).append(value)
        bar.update(n)
        if step >= next_log or step >= config.total_steps:
            rate = (step - clock_step) / max(time.perf_counter() - clock, 1e-9)
            row = {**stats.drain(), **{k: float(np.mean(v)) for k, v in losses.items()}, "time/env_steps_per_s": rate}
            scalars.log(step, row)
            bar.set_postfix(
                {k.split("/")[-1]: f"{v:.3g}" for k, v in row.items() if k in ("episode/return", "train/loss")}
            )
            losses = {}
            clock = time.perf_counter()
            clock_step = step
            next_log += config.log_interval
        if ckpt_path is not None and next_ckpt is not None and step >= next_ckpt and step < config.total_steps:
            _checkpoint(ckpt_path, agent, env, obs, step, scalars, stats, losses)
            next_ckpt += config.checkpoint_interval
    bar.close()
    if ckpt_path is not None:
        _checkpoint(ckpt_path, agent, env, obs, step, scalars, stats, losses)
    scalars.close()
    return TrainResult(steps=step, curve=scalars.curve, checkpoint=ckpt_path)


def _checkpoint(path: Path, agent: TrainableAgent, env: Any, obs: dict[str, np.ndarray], step: int,
                scalars: ScalarLogger, stats: EpisodeTracker, losses: dict[str, list[float]]) -> None:
    # The losses since the last log line: a resume between two log lines must average the same window.
    loop = {"format": LOOP_FORMAT, "step": step, "curve": scalars.curve, "losses": losses, "obs": obs,
            "env": env_state(env), "stats": dict(stats.__dict__)}
    save_checkpoint(path, agent.name, agent.format_version, {"agent": agent.state_dict(), "loop": loop})
