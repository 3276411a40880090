"""Where work runs: in this process, in a pool of local processes, or on Ray.

A ``Pool`` takes jobs (picklable, each independent) and a picklable function, and
yields ``(job, result)`` as jobs finish, keeping at most a few jobs per worker in
flight so that a long job list is never materialised on the workers at once. The
arena's results never depend on which pool ran them: every job carries its own
seeds (see ``arena.match``).

``connect_ray(address)`` is the one way the arena joins Ray (``--ray [ADDRESS]``):
``None`` starts or joins a local Ray, an address joins that cluster; an address that
cannot be reached is a one-line ``UsageError`` within ``RAY_CONNECT_TIMEOUT_S``,
never a hang, and Ray not installed is a one-line error saying how to install it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from arena.errors import UsageError

J = TypeVar("J")
R = TypeVar("R")

RAY_CONNECT_TIMEOUT_S = 30.0
"""How long ``connect_ray`` waits for a cluster before it gives up."""

RAY_INSTALL = "pip install 'adversarial-arena[ray]' (ray[tune]==2.60.0)"

PASSED_ENV = ("ARENA_ZOO_DIR", "ARENA_ATARI_DIR", "ARENA_HOME", "MUJOCO_GL", "PYOPENGL_PLATFORM")
"""Settings a Ray worker needs to find what the driver finds: passed to every job."""


PRELOAD = ("numpy", "torch", "gymnasium", "stable_baselines3")
"""What the fork server imports once, so that a process it forks (a grid cell, an
evaluation or simulation worker) does not pay seconds of imports again. None of them
reads the arena's settings when imported (mujoco reads ``MUJOCO_GL``: not here), and
none starts a thread on import, so forking after them is safe."""


def forkserver() -> Any:
    """The one multiprocessing context the arena starts local processes with. The
    preload takes effect when the server starts: in the first pool of the process."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


class Pool(Protocol):
    def imap_unordered(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[J, R]]: ...


class InProcess:
    """Jobs one after another, in this process."""

    def imap_unordered(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[J, R]]:
        for job in jobs:
            yield job, fn(job)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


class LocalPool:
    """``workers`` local processes (forkserver; one torch thread each)."""

    def __init__(self, workers: int):
        self.workers = workers

    def imap_unordered(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[J, R]]:
        with cf.ProcessPoolExecutor(self.workers, forkserver(), _one_thread) as pool:
            pending: dict[cf.Future, Any] = {}
            for job in jobs:  # at most two jobs per worker in flight
                pending[pool.submit(fn, job)] = job
                while len(pending) >= 2 * self.workers:
                    yield from _finished(pending)
            while pending:
                yield from _finished(pending)


def _finished(pending: dict[cf.Future, Any]) -> Iterator[tuple[Any, Any]]:
    done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
    for fut in done:
        job = pending.pop(fut)
        yield job, fut.result()


def _on_ray_worker(fn: Callable[[J], R], job: J, cwd: str, env: dict[str, str]) -> R:
    """Run ``fn(job)`` as a local worker would: the driver's directory (relative paths
    in specs mean the same on every node of a cluster with shared storage), its
    settings, one torch thread."""
    os.environ.update(env)
    if os.path.isdir(cwd):
        os.chdir(cwd)
    _one_thread()
    return fn(job)


def _warm() -> None:
    import arena.match  # noqa: F401  (torch, the games, the policies)


class RayPool:
    """Jobs as Ray tasks (one CPU each) on the Ray that ``connect_ray`` joined; at
    most two per CPU of the cluster in flight."""

    def __init__(self, address: str | None = None):
        self.ray = connect_ray(address)
        # warm the workers while the driver prepares its jobs: a new job's workers
        # start bare, and importing the arena (torch, the games) takes seconds
        warm = self.ray.remote(num_cpus=1)(_warm)
        cpus = max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        self._warming = [warm.remote() for _ in range(cpus)]

    def imap_unordered(self, fn: Callable[[J], R], jobs: Iterable[J]) -> Iterator[tuple[J, R]]:
        ray = self.ray
        task = ray.remote(num_cpus=1, max_retries=3)(_on_ray_worker)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        cwd, env = os.getcwd(), passed_env()
        pending: dict[Any, Any] = {}

        def wait_one() -> Iterator[tuple[Any, Any]]:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                yield job, _ray_get(ray, ref)

        for job in jobs:
            pending[task.remote(fn, job, cwd, env)] = job
            while len(pending) >= 2 * cpus:
                yield from wait_one()
        while pending:
            yield from wait_one()

    def close(self) -> None:
        """Leave Ray now (the cluster's workers for this job go at once), not at exit."""
        self.ray.shutdown()


def _ray_get(ray: Any, ref: Any) -> Any:
    """The task's value; an arena error raised on a worker comes back as itself (one
    line), not as Ray's wrapped traceback."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.as_instanceof_cause()
        original = getattr(exc, "cause", None)
        raise (original if isinstance(original, Exception) else cause) from None


def passed_env() -> dict[str, str]:
    return {k: os.environ[k] for k in PASSED_ENV if k in os.environ}


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray, which is not installed: {RAY_INSTALL}") from None
    return ray


def _reachable(address: str, timeout: float) -> None:
    """``UsageError`` unless a TCP connection to ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``) opens within ``timeout`` seconds."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--ray {address}: expected HOST:PORT (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"--ray {address}: cannot reach a Ray cluster there ({reason})") from None


def connect_ray(address: str | None = None, *, timeout: float = RAY_CONNECT_TIMEOUT_S) -> Any:
    """Join Ray once per process and return the ``ray`` module: ``None`` starts a
    local Ray (or joins the one ``ray start`` left on this machine), ``ADDRESS`` joins
    that cluster. Unreachable: ``UsageError``, one line, within ``timeout`` (a closed
    port at once; an open one that is not Ray within Ray's own ~20 s)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address not in (None, "auto"):
        _reachable(address, min(timeout, 10.0))
    kwargs: dict[str, Any] = {
        "address": address,
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "ERROR",
    }  # no job-wide runtime_env: it would keep Ray from pre-starting workers; each job
    # carries the settings it needs (``passed_env``)
    if address is None and "RAY_ADDRESS" not in os.environ:
        # a Ray of our own on this machine: a small object store (jobs pass little data)
        kwargs["object_store_memory"] = 256 * 2**20
    where = address or "a local Ray"
    try:  # Ray's own connection timeout (about 20 s) bounds this
        with _quiet_fd(2):  # Ray's start-up and retry chatter: the error says it all
            ray.init(**kwargs)
    except Exception as exc:
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UsageError(f"--ray {where}: cannot join: {message}") from None
    return ray


@contextlib.contextmanager
def _quiet_fd(fd: int) -> Iterator[None]:
    """Send what is written to file descriptor ``fd`` (by Python or C++) nowhere."""
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def pool_for(workers: int, ray: str | bool | None = None) -> Pool:
    """The pool a command's flags ask for: ``--ray [ADDRESS]`` (``ray`` True or an
    address), else ``workers`` local processes (1: this process)."""
    if ray:
        return RayPool(None if ray is True else str(ray))
    return InProcess() if workers <= 1 else LocalPool(workers)
