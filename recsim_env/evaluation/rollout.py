"""Policy rollouts in a batched env with common random numbers, and per-episode metrics with intervals.

:func:`evaluate` runs ``n_episodes`` complete sessions of any object with an SB3-style
``predict(observation, state, episode_start, deterministic)`` in a :class:`gymnasium.vector.VectorEnv`
(many users stepped at once) and returns an :class:`EpisodeStats`.

Common random numbers
    Episodes run in *waves*: each wave resets the vector env with a seed derived only from
    ``(seed, wave)``, so every policy evaluated with the same ``seed`` and ``n_episodes`` meets the
    same simulated users. Each slot counts only the episode it started at the wave's reset; the
    episodes that SAME_STEP autoreset starts afterwards are stepped but not counted. Counting them
    would bias the sample towards short sessions (a slot whose users leave early would contribute
    more episodes) and would break common random numbers, since which user a replacement is depends
    on when the earlier one left. How far the numbers stay common after the first step depends on the
    env: ``RecVectorEnv`` splits its reset seed into separate streams for users, candidates and
    responses, so two policies also see the same candidate sets at every step while the slot's user
    is in session in both; only the responses (which depend on what was shown) differ. An env that
    draws everything from one generator keeps only the users (and the first candidates) common.

Per-episode metrics (one row per episode in :attr:`EpisodeStats.episodes`)
    ``return`` (sum of rewards), ``session_length`` (steps), ``ctr`` (clicks per slate shown),
    ``like_rate`` (likes / conversions per slate shown), ``mean_rating`` (mean rating of clicked
    items, NaN without a click), ``dwell`` (dwell seconds per episode; only when the env reports
    it), ``diversity`` (intra-list diversity of the slates over the catalogue's genre features),
    ``novelty`` (mean self-information of the shown items under the logged popularity), and
    ``clicks`` (items consumed: the unit of logged session lengths). Catalogue
    ``coverage`` (share of items shown at least once) and ``personalization`` (1 - the mean overlap of
    the slates the users in session at one step of a wave are shown, averaged over the steps of all
    waves: :func:`~recsim_env.evaluation.metrics.personalization`) are properties of a whole
    evaluation, one value per seed. Responses are read from ``info`` (``click``, ``like``, ``rating``,
    ``dwell``: per-slot arrays); with SAME_STEP autoreset a finished slot's responses come from ``info["final_info"]``.
    A lifetime env's episodes (:mod:`recsim_env.env.lifetime`) add the long-term metrics of
    :mod:`recsim_env.evaluation.longterm` (return rate, days to return, sessions per user, lifetime clicks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from recsim_env.data.catalog import ItemCatalog
from recsim_env.env.vector import merge_final_info
from recsim_env.errors import ConfigError
from recsim_env.evaluation import longterm, metrics

logger = logging.getLogger(__name__)

EPISODE_METRICS = ("return", "ctr", "like_rate", "mean_rating", "dwell", "session_length", "diversity", "novelty")
"""Per-episode metric columns, in report order."""
SEED_METRICS = ("coverage", "personalization")
"""Metrics of a whole evaluation (one value per seed)."""
METRICS = EPISODE_METRICS + SEED_METRICS
"""Every metric :func:`evaluate` produces in any env."""
ALL_METRICS = METRICS + longterm.LONGTERM_METRICS
"""Those and the long-term metrics it adds in a lifetime env."""
CATALOG_METRICS = ("diversity", "novelty", "coverage")
"""The metrics read from an item catalogue: NaN, with one warning per :func:`evaluate` call, without one."""
RESPONSE_KEYS = ("click", "like", "rating", "dwell")
MAX_WAVE_STEPS = 100_000
"""A wave whose episodes have not all ended after this many steps is an error (an env without a step cap)."""


class Policy(Protocol):
    """Stable-Baselines3's ``PolicyPredictor`` shape: anything with this method can be evaluated."""

    def predict(self, observation: dict[str, np.ndarray], state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        ...


EnvSource = VectorEnv | gym.Env | Callable[[int], VectorEnv | gym.Env]
"""A vector env, a single env, or a factory ``num_envs -> env`` (called once per evaluation)."""


@dataclass(frozen=True, eq=False)
class EpisodeStats:
    """Tidy results of one or more evaluations."""

    episodes: pd.DataFrame
    """One row per episode: ``seed``, ``episode``, ``user_index`` and the :data:`EPISODE_METRICS`."""
    seeds: pd.DataFrame
    """One row per seed: ``seed``, ``episodes`` and the per-seed :data:`SEED_METRICS`."""

    def per_seed(self) -> pd.DataFrame:
        """Per-seed means of the episode metrics (NaNs skipped) beside the per-seed metrics."""
        cols = [c for c in EPISODE_METRICS if c in self.episodes.columns]
        means = self.episodes.groupby("seed", sort=True)[cols].mean()
        return self.seeds.set_index("seed").join(means).reset_index()

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """``metric, mean, ci_low, ci_high, n``: t-intervals over seeds (over episodes with one seed)."""
        table = self.per_seed() if self.seeds["seed"].nunique() > 1 else self.episodes.assign(
            **{m: float(self.seeds[m].iloc[0]) for m in SEED_METRICS if m in self.seeds})
        out = summarize(table, [c for c in METRICS if c in table.columns], confidence)
        if longterm.has_longterm(self.episodes):  # a lifetime env's episodes: the long-term metrics too
            out = pd.concat([out, longterm.summarize_longterm(self.episodes, confidence)], ignore_index=True)
        return out

    @staticmethod
    def concat(parts: Sequence["EpisodeStats"]) -> "EpisodeStats":
        return EpisodeStats(pd.concat([p.episodes for p in parts], ignore_index=True),
                            pd.concat([p.seeds for p in parts], ignore_index=True))


BOUNDED = {"ctr": (0.0, 1.0), "like_rate": (0.0, 1.0), "diversity": (0.0, 1.0), "coverage": (0.0, 1.0),
           "personalization": (0.0, 1.0), "return": (None, None), "session_length": (1.0, None)}
"""Natural ranges: a t-interval from few seeds can overshoot them, so its ends are clipped there."""


def summarize(table: pd.DataFrame, columns: Sequence[str], confidence: float = 0.95) -> pd.DataFrame:
    """Mean and t-interval of each column over the table's rows (NaNs dropped; all-NaN -> NaN row).

    Interval ends are clipped to the metric's natural range (:data:`BOUNDED`; names containing ``@``
    are ranking metrics in [0, 1])."""
    rows = []
    for col in columns:
        values = table[col].dropna().to_numpy(dtype=np.float64)
        if values.size:
            mean, low, high = metrics.mean_confidence_interval(values, confidence)
            lo_bound, hi_bound = BOUNDED.get(col, (0.0, 1.0) if "@" in col else (None, None))
            low, high = (max(low, lo_bound) if lo_bound is not None else low,
                         min(high, hi_bound) if hi_bound is not None else high)
        else:
            mean = low = high = float("nan")
        rows.append({"metric": col, "mean": mean, "ci_low": low, "ci_high": high, "n": int(values.size)})
    return pd.DataFrame(rows, columns=["metric", "mean", "ci_low", "ci_high", "n"])


def evaluate(policy: Policy, env: EnvSource, n_episodes: int = 100, seed: int | Sequence[int] = 0, *,
             catalog: ItemCatalog | None = None, max_envs: int = 512, deterministic: bool = True,
             progress: bool = False) -> EpisodeStats:
    """Roll ``policy`` out for ``n_episodes`` complete episodes per seed (see the module docstring).

    ``env`` is a vector env (its ``num_envs`` users run at once), a single env (wrapped in a
    SAME_STEP :class:`~gymnasium.vector.SyncVectorEnv`) or a factory called with
    ``min(n_episodes, max_envs)``. ``seed`` may be a list: one evaluation per seed. ``catalog`` gives
    the genre features and popularity for diversity / novelty / coverage; by default it is the env's
    own ``catalog`` attribute (without one those metrics are NaN and a warning says so). A policy with a
    ``bind(action_space)`` method and ``slate_size=None`` is bound to the env's action space first.

    Examples:
        >>> import numpy as np
        >>> from recsim_env import EnvConfig, RecVectorEnv, SyntheticUserModel, evaluate
        >>> model = SyntheticUserModel()
        >>> venv = RecVectorEnv(model, model.catalog(), EnvConfig(slate_size=3, n_candidates=10), num_envs=4)
        >>> class FirstThree:  # any object with SB3's predict() is a policy
        ...     def predict(self, observation, state=None, episode_start=None, deterministic=True):
        ...         return np.tile(np.arange(3), (len(observation["candidates"]), 1)), None
        >>> stats = evaluate(FirstThree(), venv, n_episodes=8, seed=0)
        >>> len(stats.episodes), stats.summary()["metric"].tolist()[:3]
        (8, ['return', 'ctr', 'like_rate'])
    """
    if int(n_episodes) != n_episodes or n_episodes < 1:
        raise ConfigError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if max_envs < 1:
        raise ConfigError(f"max_envs must be >= 1, got {max_envs!r}")
    if not callable(getattr(policy, "predict", None)):
        raise ConfigError(f"policy {policy!r} has no predict(observation, state, episode_start, deterministic)")
    venv = _as_vector_env(env, min(int(n_episodes), max_envs))
    # A supervised ranker learns no slate size from its data: one that has not been told it takes the
    # env's (the optional ``bind(action_space)`` hook); one told another size fails on the env's check.
    if callable(getattr(policy, "bind", None)) and getattr(policy, "slate_size", 0) is None:
        policy.bind(venv.single_action_space)
    catalog = catalog if catalog is not None else find_catalog(venv)
    if catalog is None:
        # The columns stay (NaN) so that tables over several simulators keep one shape; say so once here
        # rather than let a NaN pass for a measurement.
        logger.warning("evaluate: %s are NaN: no item catalog (pass catalog= or give the env a catalog "
                       "attribute) to read genre features and popularity from", ", ".join(CATALOG_METRICS))
    seeds = [seed] if isinstance(seed, (int, np.integer)) else list(seed)
    parts = [_evaluate_seed(policy, venv, int(n_episodes), int(s), catalog, deterministic, progress) for s in seeds]
    return EpisodeStats.concat(parts)


def find_catalog(venv: VectorEnv) -> ItemCatalog | None:
    """The env's item catalogue, looked up on the vector env, its unwrapped form, or its first sub-env."""
    candidates = [venv, getattr(venv, "unwrapped", None)]
    for sub in getattr(venv, "envs", ())[:1]:
        candidates += [sub, sub.unwrapped]
    for obj in candidates:
        cat = getattr(obj, "catalog", None)
        if isinstance(cat, ItemCatalog):
            return cat
    return None


def _as_vector_env(env: EnvSource, num_envs: int) -> VectorEnv:
    if isinstance(env, VectorEnv):
        return env
    if isinstance(env, gym.Env):
        return SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.SAME_STEP)
    if callable(env):
        return _as_vector_env(env(num_envs), num_envs)
    raise ConfigError(f"env must be a gymnasium VectorEnv, Env or a factory num_envs -> env, got {type(env).__name__}")


def wave_seed(seed: int, wave: int) -> int:
    """The reset seed of one wave: a function of ``(seed, wave)`` only, so all policies share it."""
    return int(np.random.SeedSequence([seed, wave]).generate_state(1)[0])


def _evaluate_seed(policy: Policy, venv: VectorEnv, n_episodes: int, seed: int, catalog: ItemCatalog | None,
                   deterministic: bool, progress: bool) -> EpisodeStats:
    mode = venv.metadata.get("autoreset_mode", AutoresetMode.SAME_STEP)
    if AutoresetMode(mode) != AutoresetMode.SAME_STEP:
        # NEXT_STEP would insert a dead step after each episode end; evaluation assumes SAME_STEP.
        raise ConfigError(f"evaluate needs a vector env with autoreset_mode SAME_STEP, got {mode!r}")
    n_envs = venv.num_envs
    waves = []
    bar = _progress_bar(progress, n_episodes, seed)
    for wave in range(-(-n_episodes // n_envs)):
        count = min(n_envs, n_episodes - wave * n_envs)
        waves.append(_run_wave(policy, venv, wave_seed(seed, wave), count, deterministic))
        bar.update(count)
    bar.close()
    return _stats(waves, seed, catalog)


def _progress_bar(enabled: bool, total: int, seed: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"episodes (seed {seed})", unit="ep", disable=not enabled, leave=False)


@dataclass
class _Wave:
    """Accumulated per-slot sums of one wave and the slates shown while each counted episode ran."""

    user_index: np.ndarray
    sums: dict[str, np.ndarray]
    slates: list[np.ndarray]
    active: list[np.ndarray]
    has_dwell: bool


def _run_wave(policy: Policy, venv: VectorEnv, reset_seed: int, count: int, deterministic: bool) -> _Wave:
    obs, _ = venv.reset(seed=reset_seed)
    n = venv.num_envs
    active = np.arange(n) < count  # slots whose first episode is counted and still running
    episode_start = np.ones(n, dtype=bool)
    state = None
    sums = {k: np.zeros(n) for k in ("return", "session_length", *RESPONSE_KEYS)}
    wave = _Wave(_user_index(obs, n), sums, [], [], has_dwell=False)
    for _ in range(MAX_WAVE_STEPS):
        if not active.any():
            return wave
        action, state = policy.predict(obs, state, episode_start, deterministic)
        candidates = np.asarray(obs["candidates"])
        # The raw action goes to the env first: its ActionError names a bad slot better than numpy would.
        obs, reward, terminated, truncated, info = venv.step(action)
        done = np.asarray(terminated) | np.asarray(truncated)
        info = merge_final_info(info, done)
        shown = _per_slot(info, "slate", n)  # the env's record: repeated items blanked to -1
        if shown is None:
            shown = np.take_along_axis(candidates, np.asarray(action, dtype=np.int64).reshape(n, -1), axis=1)
        wave.slates.append(shown.astype(np.int64))
        wave.active.append(active.copy())
        sums["return"] += np.where(active, reward, 0.0)
        sums["session_length"] += active
        for key in RESPONSE_KEYS:
            values = _per_slot(info, key, n)
            if values is not None:
                sums[key] += np.where(active, values.sum(axis=1), 0.0)
                wave.has_dwell |= key == "dwell"
        if longterm.is_lifetime(info):
            longterm.accumulate(sums, info, active)
        active &= ~done
        episode_start = done
    raise ConfigError(f"{int(active.sum())} episodes still running after {MAX_WAVE_STEPS} steps: "
                      f"the env needs a step cap (truncation) for evaluation")


def _user_index(obs: dict[str, np.ndarray], n: int) -> np.ndarray:
    if "user_index" not in obs:
        return np.full(n, -1, dtype=np.int64)
    return np.asarray(obs["user_index"]).reshape(n, -1)[:, 0].astype(np.int64)


def _per_slot(info: dict[str, Any], key: str, n: int) -> np.ndarray | None:
    """``(n, k)`` per-slot values of a merged step info's ``key``, or None when the env has none."""
    value = info.get(key)
    return None if value is None else np.array(value, dtype=np.float64).reshape(n, -1)


def _stats(waves: list[_Wave], seed: int, catalog: ItemCatalog | None) -> EpisodeStats:
    frames, all_slates, overlaps = [], [], []
    for w in waves:
        counted = w.active[0]
        steps = w.sums["session_length"][counted]
        clicks = w.sums["click"][counted]
        frame = pd.DataFrame({
            "user_index": w.user_index[counted],
            "return": w.sums["return"][counted],
            "ctr": clicks / np.maximum(steps, 1),
            "like_rate": w.sums["like"][counted] / np.maximum(steps, 1),
            "mean_rating": np.where(clicks > 0, w.sums["rating"][counted] / np.maximum(clicks, 1), np.nan),
            "session_length": steps,
            "clicks": clicks,
        })
        if w.has_dwell:
            frame.insert(4, "dwell", w.sums["dwell"][counted])
        per_episode = _episode_slates(w)
        frame["diversity"], frame["novelty"] = _slate_metrics(per_episode, catalog)
        if "session_ends" in w.sums:
            frame = frame.assign(**longterm.episode_columns(w.sums, counted))
        frames.append(frame)
        all_slates += per_episode
        overlaps.append(metrics.slate_overlap_by_step(np.stack(w.slates), np.stack(w.active)))
    episodes = pd.concat(frames, ignore_index=True)
    episodes.insert(0, "episode", np.arange(len(episodes)))
    episodes.insert(0, "seed", seed)
    coverage = (metrics.catalog_coverage(np.concatenate(all_slates), catalog.n_items)
                if catalog is not None else float("nan"))
    overlap = np.concatenate(overlaps)
    personalization = float(1.0 - overlap.mean()) if overlap.size else float("nan")  # steps weigh alike
    return EpisodeStats(episodes, pd.DataFrame({"seed": [seed], "episodes": [len(episodes)], "coverage": [coverage],
                                                "personalization": [personalization]}))


def _episode_slates(w: _Wave) -> list[np.ndarray]:
    """The ``(steps, k)`` slates each counted episode showed, in slot order."""
    slates = np.stack(w.slates)  # (T, n, k)
    active = np.stack(w.active)  # (T, n)
    return [slates[active[:, slot], slot] for slot in np.flatnonzero(active[0])]


def _slate_metrics(per_episode: list[np.ndarray], catalog: ItemCatalog | None) -> tuple[np.ndarray, np.ndarray]:
    if catalog is None:
        nan = np.full(len(per_episode), np.nan)
        return nan, nan.copy()
    features = catalog.genres
    diversity = np.array([metrics.intra_list_diversity(s, features) for s in per_episode])
    novelty = np.array([metrics.novelty(s, catalog.popularity) for s in per_episode])
    return diversity, novelty
