"""Executors: where the benchmark's units of work run.

An executor takes jobs, ``submit(key, function, argument)`` with ``function`` a module-level
callable and ``argument`` picklable, and :meth:`~SequentialExecutor.wait` hands back their
:class:`Outcome` as they finish:

- :class:`SequentialExecutor`: one job at a time in this process (the default);
- :class:`LocalExecutor`: ``jobs`` worker processes on this machine (``recsim benchmark --jobs N``);
- :class:`RayExecutor`: Ray tasks (``--backend ray``), on a local instance it starts and stops
  (bound to 127.0.0.1) or on a running cluster (``--ray-address``).

An outcome is the job's return value or the text of the exception it raised. A worker that dies
(``kill -9``, out of memory) fails the one job it held, and a fresh worker takes its place; the
others go on. Retries and ordering are the caller's (:mod:`recsim_env.benchmark.tasks`), which never
has more than :attr:`~SequentialExecutor.capacity` jobs submitted, so an interrupt loses at most that
many. Closing an executor stops its workers (and the Ray instance it started).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import socket
import traceback
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for
from typing import Any, Callable, Iterator, Protocol

import cloudpickle

from recsim_env.errors import ConfigError

logger = logging.getLogger(__name__)

BACKENDS = ("sequential", "local", "ray")
"""Executor names, as ``recsim benchmark --backend`` takes them."""

LOCAL_RAY_CPUS = 2
"""CPUs of a local Ray instance when ``jobs`` is not given: small, as the machine is shared."""

CONNECT_TIMEOUT_S = 3.0
"""How long a ``--ray-address`` may take to accept a connection before it is called unreachable."""


@dataclass(frozen=True)
class ExecutorConfig:
    """How a benchmark's work runs. Results do not depend on it (the same cells, seeds and numbers
    whichever executor runs them), so it is no part of :class:`~recsim_env.benchmark.config.BenchmarkConfig`
    and a rerun may change it freely."""

    backend: str = "sequential"
    """One of :data:`BACKENDS`."""
    jobs: int | None = None
    """Worker processes of ``local``; CPUs of the local Ray instance; on a Ray cluster, the most tasks
    in flight. ``None``: this machine's CPU count (``local``), :data:`LOCAL_RAY_CPUS` (local Ray), the
    cluster's CPUs."""
    ray_address: str = ""
    """A running Ray cluster: its head's ``host:port`` (``ray start --head`` prints it), ``ray://host:10001``
    or ``auto``; ``""`` starts a local instance for the run."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.jobs is not None and (isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1):
            raise ConfigError(f"jobs must be a positive integer, got {self.jobs!r}")
        if self.ray_address and self.backend != "ray":
            raise ConfigError(f"ray_address={self.ray_address!r} needs backend 'ray', got {self.backend!r}")

    @classmethod
    def from_options(cls, backend: str | None = None, jobs: int | None = None,
                     ray_address: str | None = None) -> "ExecutorConfig":
        """The command line's form: without ``backend``, an address means ``ray`` and ``jobs`` > 1 ``local``."""
        if backend is None:
            backend = "ray" if ray_address else "local" if jobs is not None and jobs > 1 else "sequential"
        return cls(backend, jobs, ray_address or "")


@dataclass(frozen=True)
class Outcome:
    """What became of one job: its ``value``, or ``error`` (the exception's traceback or how the worker died)."""

    key: str
    value: Any = None
    error: str | None = None


class Executor(Protocol):
    capacity: int
    """Most jobs submitted and not yet waited for."""
    shares_files: bool
    """Whether the jobs run on this machine (they may write into the run folder themselves)."""

    def submit(self, key: str, function: Callable[[Any], Any], argument: Any) -> None: ...

    def wait(self) -> list[Outcome]:
        """Block until at least one submitted job finished; the outcomes of all that did."""
        ...

    def close(self) -> None: ...


def make_executor(config: ExecutorConfig) -> "SequentialExecutor | LocalExecutor | RayExecutor":
    """The executor ``config`` names, started (a Ray one connected)."""
    if config.backend == "local":
        return LocalExecutor(config.jobs or os.cpu_count() or 1)
    if config.backend == "ray":
        return RayExecutor(config.jobs, config.ray_address)
    return SequentialExecutor()


class _Closing:
    """Context-manager form of ``close``: an interrupt still stops the workers."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class SequentialExecutor(_Closing):
    """Runs each job in this process when waited for, in submission order; an interrupt propagates."""

    capacity = 1
    shares_files = True

    def __init__(self) -> None:
        self._queue: deque[tuple[str, Callable[[Any], Any], Any]] = deque()

    def submit(self, key: str, function: Callable[[Any], Any], argument: Any) -> None:
        self._queue.append((key, function, argument))

    def wait(self) -> list[Outcome]:
        key, function, argument = self._queue.popleft()
        try:
            return [Outcome(key, value=function(argument))]
        except Exception:  # a failing job is reported, not fatal; KeyboardInterrupt is not an Exception
            return [Outcome(key, error=traceback.format_exc())]

    def close(self) -> None:
        self._queue.clear()


# ---------------------------------------------------------------- local process pool
def _serve(connection: Any) -> None:
    """A worker process: run the jobs that arrive on ``connection`` until an empty message or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops the workers
    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):  # the driver is gone
            return
        if not message:
            return
        try:
            function, argument = cloudpickle.loads(message)
            reply = ("ok", cloudpickle.dumps(function(argument)))
        except Exception:
            reply = ("error", traceback.format_exc())
        try:
            connection.send_bytes(pickle.dumps(reply))
        except OSError:
            return


WORKER_THREADS = {"OMP_NUM_THREADS": "1"}
"""Each local worker's OpenMP and BLAS pools get one thread (unless the variable is set), as Ray does
for its workers: ``jobs`` workers each with a thread per core oversubscribe the machine (the quick
benchmark's first task ran 1.7x slower under ``--jobs 2`` than on Ray), and the results do not change."""


@contextmanager
def _environment(defaults: dict[str, str]) -> Iterator[None]:
    """``defaults`` in ``os.environ`` for the block, where not set already."""
    added = [name for name in defaults if name not in os.environ]
    os.environ.update({name: defaults[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@dataclass(eq=False)
class _Worker:
    process: Any
    connection: Any


class LocalExecutor(_Closing):
    """``jobs`` worker processes, started on first use with ``spawn`` (a fresh interpreter: no
    inherited threads or torch state) and kept for the next jobs, so each imports the library and
    loads what it caches once. Jobs travel by cloudpickle, so policies and simulators registered in
    the driver at run time (closures included) run in the workers too."""

    shares_files = True

    def __init__(self, jobs: int) -> None:
        self.capacity = jobs
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []
        self._busy: dict[_Worker, str] = {}

    def submit(self, key: str, function: Callable[[Any], Any], argument: Any) -> None:
        worker = self._idle.pop() if self._idle else self._start()
        self._busy[worker] = key
        try:
            worker.connection.send_bytes(cloudpickle.dumps((function, argument)))
        except OSError:
            pass  # the worker died between jobs: wait() sees its sentinel and reports the job

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs,), name="recsim-benchmark-worker")
        with _environment(WORKER_THREADS):  # a spawned child reads its thread counts from the environment
            process.start()
        theirs.close()
        return _Worker(process, ours)

    def wait(self) -> list[Outcome]:
        busy = list(self._busy)
        ready = set(wait_for([w.connection for w in busy] + [w.process.sentinel for w in busy]))
        return [self._collect(w) for w in busy if w.connection in ready or w.process.sentinel in ready]

    def _collect(self, worker: _Worker) -> Outcome:
        key = self._busy.pop(worker)
        try:
            if worker.connection.poll():
                status, payload = pickle.loads(worker.connection.recv_bytes())
                self._idle.append(worker)
                return Outcome(key, value=cloudpickle.loads(payload)) if status == "ok" else Outcome(key, error=payload)
        except (EOFError, OSError):
            pass  # it died mid-reply
        worker.process.join(timeout=10)
        worker.connection.close()
        return Outcome(key, error=f"worker process {worker.process.pid} died ({_exit_reason(worker.process.exitcode)})")

    def close(self) -> None:
        for worker in self._idle:
            try:
                worker.connection.send_bytes(b"")
            except OSError:
                pass
        for worker in self._busy:  # jobs in flight are abandoned: their cells are not written
            worker.process.kill()
        for worker in [*self._idle, *self._busy]:
            worker.process.join(timeout=10)
            worker.connection.close()
        self._idle.clear()
        self._busy.clear()


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


# ---------------------------------------------------------------- Ray
def _call(function: Callable[[Any], Any], argument: Any) -> Any:
    return function(argument)


def import_ray() -> Any:
    """Ray, or a :class:`ConfigError` that names the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ConfigError('--backend ray needs Ray, an optional extra: pip install -e ".[ray]" '
                          '(or pip install "ray>=2.40")') from None
    return ray


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast on a Ray address nothing answers at: Ray itself retries a dead address for minutes."""
    if address == "auto":  # read from the local session Ray started; ray.init says when there is none
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r} is not host:port (e.g. 10.0.0.5:6379, ray://10.0.0.5:10001 "
                          f"or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(f"no Ray cluster reachable at --ray-address {address} ({exc.strerror or exc}); start one "
                          f"there with `ray start --head`, or drop --ray-address to start a local instance") from None


@contextmanager
def _loopback(enabled: bool) -> Iterator[None]:
    """Keep Ray on 127.0.0.1 while it starts or connects: it swaps a loopback address for the
    machine's reachable one (and its servers listen on every interface) unless its multi-node
    switch, the one that is off on macOS and Windows, is off."""
    if not enabled:
        yield
        return
    from ray._private import ray_constants

    saved = (os.environ.get(_RAY_CLUSTER_SWITCH), getattr(ray_constants, "ENABLE_RAY_CLUSTER", True))
    os.environ[_RAY_CLUSTER_SWITCH] = "0"  # the servers Ray starts read it too
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop(_RAY_CLUSTER_SWITCH, None)
        else:
            os.environ[_RAY_CLUSTER_SWITCH] = saved[0]
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]


_RAY_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rpartition(":")[0]
    return host == "localhost" or host.startswith("127.")


class RayExecutor(_Closing):
    """Jobs as Ray tasks of one CPU each. Without ``address`` it starts a local instance on 127.0.0.1
    with ``jobs`` CPUs (no dashboard) and stops it on close; with one it connects to that cluster and
    only disconnects. Ray's own task retries are off: a crashed worker's task comes back as a failed
    outcome, and the caller's retry policy is the same whichever executor runs."""

    def __init__(self, jobs: int | None = None, address: str = "") -> None:
        ray = import_ray()
        self._ray = ray
        if address:
            check_reachable(address)
            try:
                with _loopback(_is_loopback(address)):
                    ray.init(address=address, logging_level=logging.WARNING)
            except Exception as exc:  # a version mismatch, a refused token...: name the address
                hint = "" if os.environ.get("RAY_AUTH_MODE") else (
                    "; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token here and "
                    "its token (the head's ~/.ray/auth_token, or RAY_AUTH_TOKEN)")
                raise ConfigError(f"could not join the Ray cluster at --ray-address {address}: {exc}{hint}") from None
        else:
            with _loopback(True):
                ray.init(address="local", num_cpus=jobs or LOCAL_RAY_CPUS, include_dashboard=False,
                         _node_ip_address="127.0.0.1", logging_level=logging.WARNING)
        self.node_addresses = sorted({node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")})
        self.capacity = jobs or max(int(ray.cluster_resources().get("CPU", 1)), 1)
        self.shares_files = not address  # a cluster's nodes may not see this machine's run folder
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_call)
        self._refs: dict[Any, str] = {}

    def submit(self, key: str, function: Callable[[Any], Any], argument: Any) -> None:
        self._refs[self._remote.remote(function, argument)] = key

    def wait(self) -> list[Outcome]:
        refs = list(self._refs)
        self._ray.wait(refs, num_returns=1)
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        return [self._collect(ref) for ref in ready]

    def _collect(self, ref: Any) -> Outcome:
        key = self._refs.pop(ref)
        try:
            return Outcome(key, value=self._ray.get(ref))
        except self._ray.exceptions.RayTaskError as exc:  # the job raised: Ray's text carries its traceback
            return Outcome(key, error=str(exc))
        except self._ray.exceptions.RayError as exc:  # the worker or its node died
            return Outcome(key, error=f"Ray worker died ({type(exc).__name__}: {exc})")

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._ray.is_initialized():
            self._ray.shutdown()  # stops the instance this executor started, disconnects from a cluster
