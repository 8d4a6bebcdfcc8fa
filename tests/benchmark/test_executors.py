"""The benchmark's executors: the same results in this process, in local processes and on Ray; a
killed worker or a failing task costs only its own cells; bad executor options fail at once.

The fake context and policies here are module-level functions (not conftest closures), so worker
processes import them by name; each training leaves a file, so trainings are counted across processes.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pandas as pd
import pytest
from fake_vector_env import FakeRecVectorEnv, FirstSlotsPolicy, OraclePolicy, fake_catalog
from tinylog import make_tiny_log

from recsim_env.benchmark import registry
from recsim_env.benchmark.executors import ExecutorConfig, LocalExecutor
from recsim_env.benchmark.registry import BuiltPolicy, ContextData, ContextSpec, PolicySpec, Simulator, SimulatorSpec
from recsim_env.benchmark.run import BenchmarkConfig, load_results, run_benchmark
from recsim_env.cli.main import main
from recsim_env.data.splits import leave_one_out
from recsim_env.errors import ConfigError, TasksFailedError


def _load(config):
    log = make_tiny_log(n_users=12, n_items=30, per_user=6)
    return ContextData(log=log, split=leave_one_out(log), catalog=fake_catalog())


def _simulator(name):
    return lambda data, config: Simulator(name, FakeRecVectorEnv, fake_catalog())


def _run_root(ctx):
    return ctx.out_dir.parents[3]  # <run>/train/<context>/<policy>/seed-<s>


def _trained(ctx):
    """Leave a file per training: counted later, whichever process trained."""
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    (ctx.out_dir / f"trained-{os.getpid()}-{time.monotonic_ns()}").touch()


def build_fav(ctx):
    _trained(ctx)
    return BuiltPolicy(OraclePolicy(), curve=pd.DataFrame({"step": [1, 2], "episode/return": [0.5, 1.0 + ctx.seed]}))


def build_first(ctx):
    _trained(ctx)
    return BuiltPolicy(FirstSlotsPolicy())


def build_killer(ctx):
    """SIGKILLs its own process while ``kill-always`` exists, and once on first sight of ``kill-once``."""
    _trained(ctx)
    root = _run_root(ctx)
    once = root / "kill-once"
    if (root / "kill-always").exists() or (once.exists() and _claim(once)):
        os.kill(os.getpid(), signal.SIGKILL)
    return BuiltPolicy(FirstSlotsPolicy())


def build_flaky(ctx):
    """Raises on first sight of ``fail-once``; always while ``fail-always`` exists."""
    _trained(ctx)
    root = _run_root(ctx)
    if (root / "fail-always").exists():
        raise ValueError("broken on purpose")
    if (root / "fail-once").exists() and _claim(root / "fail-once"):
        raise RuntimeError("flaky on purpose")
    return BuiltPolicy(FirstSlotsPolicy())


def _claim(marker):
    try:
        marker.unlink()
        return True
    except FileNotFoundError:
        return False


@pytest.fixture
def fake_context(monkeypatch):
    monkeypatch.setitem(registry.CONTEXTS, "fake", ContextSpec("fake", _load, train_simulator="fake-a"))
    for name in ("fake-a", "fake-b"):
        monkeypatch.setitem(registry.SIMULATORS, name, SimulatorSpec(name, "fake", _simulator(name)))
    for name, build, kind in (("fav", build_fav, "baseline"), ("first", build_first, "agent"),
                              ("killer", build_killer, "agent"), ("flaky", build_flaky, "agent")):
        monkeypatch.setitem(registry.POLICIES, name, PolicySpec(name, build, kind))


def _config(root, **values):
    base = dict(policies=("fav", "first"), simulators=("fake-a", "fake-b"), seeds=2, episodes=8, out_dir=str(root))
    base.update(values)
    return BenchmarkConfig.from_dict(base)


def _cells(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "cells").rglob("*")) if p.is_file()}


def _trainings(root):
    """(policy, seed) -> how many times it was trained in ``root``."""
    counts: dict[tuple[str, int], int] = {}
    for path in (root / "train" / "fake").glob("*/seed-*/trained-*"):
        key = (path.parts[-3], int(path.parts[-2].removeprefix("seed-")))
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_local_processes_give_the_sequential_results_and_a_rerun_may_change_executor(tmp_path, fake_context,
                                                                                     monkeypatch):
    sequential = _config(tmp_path / "sequential")
    run_benchmark(sequential, progress=False)
    local = _config(tmp_path / "local")
    run_benchmark(local, progress=False, executor=ExecutorConfig("local", jobs=2))
    # As on a cluster without a shared file system: the workers record their writes, the driver replays them.
    monkeypatch.setattr(LocalExecutor, "shares_files", False)
    replayed = _config(tmp_path / "replayed")
    run_benchmark(replayed, progress=False, executor=ExecutorConfig("local", jobs=2))
    for run in (local, replayed):
        for name in ("results.csv", "per_seed.csv", "episodes.csv"):
            assert (run.out_path / name).read_bytes() == (sequential.out_path / name).read_bytes(), name
        assert _cells(run.out_path) == _cells(sequential.out_path)
        assert _trainings(run.out_path) == {(p, s): 1 for p in ("fav", "first") for s in (0, 1)}
    run_benchmark(local, progress=False)  # the executor is no part of the run's config: resumed, not refused
    assert _trainings(local.out_path) == {(p, s): 1 for p in ("fav", "first") for s in (0, 1)}


def test_a_killed_worker_loses_only_its_task_and_a_rerun_recomputes_nothing_finished(tmp_path, fake_context):
    config = _config(tmp_path / "run", policies=("fav", "first", "killer"))
    config.out_path.mkdir(parents=True)
    (config.out_path / "kill-always").touch()
    with pytest.raises(TasksFailedError) as failed:
        run_benchmark(config, progress=False, executor=ExecutorConfig("local", jobs=2))
    message = str(failed.value)
    assert "killer on fake, training seed 0: worker process" in message and "killed by SIGKILL" in message
    assert "killer on fake, training seed 1" in message and "fav" not in message and "first" not in message
    finished = _cells(config.out_path)
    assert {path.split("/")[2] for path in finished} == {"fav", "first"} and len(finished) == 2 * 2 * 2 * 2
    assert not list(config.out_path.rglob("*.tmp"))
    missing = load_results(config).missing
    assert sorted(missing) == [("killer", sim, seed) for sim in ("fake-a", "fake-b") for seed in (0, 1)]
    assert "## Unfinished cells" in (config.out_path / "report.md").read_text()
    assert _trainings(config.out_path)[("killer", 0)] == 2  # tried, retried once
    (config.out_path / "kill-always").unlink()
    (config.out_path / "kill-once").touch()  # the rerun's first killer task dies once more, then is retried
    run_benchmark(config, progress=False, executor=ExecutorConfig("local", jobs=2))
    cells = _cells(config.out_path)
    assert all(cells[path] == data for path, data in finished.items())  # finished cells untouched
    assert len(cells) == 3 * 2 * 2 * 2 and load_results(config).missing == []
    trainings = _trainings(config.out_path)
    assert {key: n for key, n in trainings.items() if key[0] != "killer"} == {
        (p, s): 1 for p in ("fav", "first") for s in (0, 1)}  # nothing finished was trained again
    assert sorted([trainings[("killer", 0)], trainings[("killer", 1)]]) == [3, 4]  # 2 failed + (1 or 2) now


def test_a_failing_task_is_retried_once_then_named_and_the_others_finish(tmp_path, fake_context, capsys):
    root = tmp_path / "run"
    root.mkdir()
    (root / "fail-once").touch()
    argv = ["benchmark", "--policies", "first,flaky", "--simulators", "fake-a", "--seeds", "1", "--episodes", "4",
            "--out", str(root)]
    assert main(argv) == 0  # the flaky task failed once and its retry passed
    assert _trainings(root) == {("first", 0): 1, ("flaky", 0): 2}
    (root / "fail-always").touch()
    assert main([*argv[:5], "--seeds", "2", *argv[7:]]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 tasks failed twice" in err and "flaky on fake, training seed 1: ValueError: broken on purpose" in err
    assert sorted(_cells(root)) == [f"cells/fake-a/{p}/seed-{s}.{ext}" for p in ("first", "flaky") for s in (0, 1)
                                    for ext in ("csv", "json") if (p, s) != ("flaky", 1)]
    assert "- flaky on fake-a, seed 1" in (root / "report.md").read_text()


def test_jobs_below_one_and_a_ray_address_without_ray_backend_are_refused(tmp_path, capsys):
    for jobs in ("0", "-2", "two"):
        with pytest.raises(SystemExit) as exited:
            main(["benchmark", "--jobs", jobs, "--out", str(tmp_path)])
        assert exited.value.code == 2
        assert f"argument --jobs: must be a positive integer, got '{jobs}'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused at parse time, before the run folder
    assert ExecutorConfig.from_options(jobs=2).backend == "local"
    assert ExecutorConfig.from_options(jobs=1).backend == "sequential"
    assert ExecutorConfig.from_options(ray_address="10.0.0.5:6379").backend == "ray"
    with pytest.raises(ConfigError, match="ray_address='10.0.0.5:6379' needs backend 'ray'"):
        ExecutorConfig.from_options("local", 2, "10.0.0.5:6379")


def test_max_envs_reaches_the_run_config_and_below_one_is_refused(tmp_path, fake_context, capsys):
    from recsim_env.benchmark.config import read_toml

    for value in ("0", "-1", "many"):
        with pytest.raises(SystemExit) as exited:
            main(["benchmark", "--max-envs", value, "--out", str(tmp_path / "refused")])
        assert exited.value.code == 2
        assert f"argument --max-envs: must be a positive integer, got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    root = tmp_path / "run"
    argv = ["benchmark", "--policies", "first", "--simulators", "fake-a", "--seeds", "1", "--episodes", "4",
            "--max-envs", "3", "--out", str(root)]
    assert main(argv) == 0
    assert read_toml(root / "config.toml")["max_envs"] == 3


def test_backend_ray_without_ray_names_the_extra(tmp_path, fake_context, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    argv = ["benchmark", "--policies", "fav", "--simulators", "fake-a", "--seeds", "1", "--out", str(tmp_path / "r"),
            "--backend", "ray"]
    assert main(argv) == 2
    assert 'needs Ray, an optional extra: pip install -e ".[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "r" / "cells").exists()


def test_an_unreachable_ray_address_fails_in_seconds_and_names_it(tmp_path, fake_context, capsys):
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["benchmark", "--policies", "fav", "--simulators", "fake-a", "--seeds", "1", "--out", str(tmp_path / "r"),
            "--ray-address", f"127.0.0.1:{port}"]
    started = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert f"no Ray cluster reachable at --ray-address 127.0.0.1:{port} (Connection refused)" in err
    assert not (tmp_path / "r" / "cells").exists()


def test_synthetic_benchmark_on_a_local_ray_instance_matches_the_sequential_run(tmp_path):
    """Real policies (an agent warm-started from MF-BPR included) on the synthetic simulator, tiny budgets:
    the same bytes in this process, in two local processes and on a local Ray instance of 2 CPUs."""
    values = {"policies": ["random", "popularity", "oracle", "mf-bpr", "slateq", "reinforce"],
              "simulators": ["synthetic"], "seeds": 2, "episodes": 32, "slate_size": 5, "n_candidates": 20,
              "budgets": {"synthetic_log_users": 120, "agent_steps": 64, "train_envs": 8, "epochs": 1}}
    runs = {}
    for name, executor in (("sequential", None), ("local", ExecutorConfig("local", jobs=2)),
                           ("ray", ExecutorConfig("ray", jobs=2))):
        config = BenchmarkConfig.from_dict({**values, "out_dir": str(tmp_path / name)})
        run_benchmark(config, progress=False, executor=executor)
        runs[name] = config.out_path
    for name in ("local", "ray"):
        for table in ("results.csv", "episodes.csv", "offline.csv"):
            assert (runs[name] / table).read_bytes() == (runs["sequential"] / table).read_bytes(), (name, table)
        # Each training seed's warm start was fitted once (one fit's TensorBoard files, as in this process),
        # by the first agent, and shared with the second.
        for seed in (0, 1):
            shared = runs[name] / "train" / "synthetic" / "shared" / f"seed-{seed}"
            assert [p.name for p in shared.iterdir() if p.is_file()] == ["warm_start_mf-bpr.npz"]
            assert len(_fit_logs(shared)) == len(_fit_logs(runs["sequential"] / shared.relative_to(runs[name]))) > 0


def _fit_logs(folder):
    return list(folder.rglob("events.out.tfevents.*"))



def _pid(_):
    return os.getpid()


def _kill_self(_):
    os.kill(os.getpid(), signal.SIGKILL)


def _raise(message):
    raise ValueError(message)


def _omp_threads(_):
    return os.environ.get("OMP_NUM_THREADS")


def test_local_workers_run_one_thread_per_pool_and_the_driver_keeps_its_environment(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with LocalExecutor(1) as executor:
        executor.submit("threads", _omp_threads, None)
        (outcome,) = executor.wait()
    assert outcome.value == "1" and "OMP_NUM_THREADS" not in os.environ


def test_a_local_ray_instance_listens_on_loopback_reports_crashes_and_stops_at_close():
    import ray

    from recsim_env.benchmark.executors import RayExecutor

    outcomes = {}
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this file
    try:
        with RayExecutor(jobs=1) as executor:
            assert executor.node_addresses == ["127.0.0.1"] and executor.capacity == 1
            for key, function in (("pid", _pid), ("kill", _kill_self), ("raise", _raise)):
                executor.submit(key, function, "broken on purpose")
                outcomes.update({outcome.key: outcome for outcome in executor.wait()})
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert outcomes["pid"].error is None and outcomes["pid"].value != os.getpid()
    assert outcomes["kill"].error.startswith("Ray worker died (")
    assert "ValueError: broken on purpose" in outcomes["raise"].error
    assert not ray.is_initialized()  # close stopped the instance it started
