"""Run one function over many items on local processes or on a Ray cluster: the backends of
``hwsim sweep`` and of ``hwsim report energy-accuracy``.

A backend is a context manager whose :meth:`~Backend.map` yields ``(index, result)`` pairs as the
items finish (in any order), so the caller can advance a progress bar and still put the results
back in order. The function and the items are pickled, so the function must be defined at module
level. Both backends run the same function on the same items, so their results are identical.

* ``local``: ``workers`` processes of this machine (``forkserver`` start: a clean interpreter per
  worker, safe next to the progress bar's thread); ``workers=1`` runs in this process.
* ``ray``: Ray tasks; connects to the cluster at ``$RAY_ADDRESS`` when set, else starts a local
  instance of ``workers`` CPUs (and stops it at the end); an instance this process already started
  (``ray.init()`` before the call, as the tests do) is used as it is.

A :class:`~hwsim.errors.HwsimError` raised inside a task reaches the caller as itself.
"""

from __future__ import annotations

import multiprocessing
from abc import ABC, abstractmethod
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from types import TracebackType
from typing import Any, TypeVar

from contract import ContractError
from hwsim.errors import ConfigError, HwsimError

__all__ = ["BACKENDS", "Backend", "Local", "Ray", "default_workers", "make_backend"]

#: Backend names, as ``--backend`` takes them.
BACKENDS = ("local", "ray")

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The CPUs this process may run on (the ``--workers`` default)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Backend(ABC):
    """The interface: enter, :meth:`map` any number of times, exit (which frees the workers)."""

    workers: int
    #: Whether :meth:`map` runs the function in this process (so it may take a closure).
    in_process: bool = False

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Free the workers (nothing to free by default)."""

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """``(i, fn(items[i]))`` for every item, in the order they finish."""


class Local(Backend):
    """``workers`` processes of this machine, started on the first :meth:`map` that needs them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.in_process = workers == 1
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        if self.workers == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, fn(item)
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=multiprocessing.get_context("forkserver"))
        pending: dict[Future, int] = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()


class Ray(Backend):
    """Ray tasks on the cluster at ``$RAY_ADDRESS``, else on a local instance of ``workers`` CPUs,
    joined or started on the first :meth:`map` that has work (a run served by a cache starts none)."""

    def __init__(self, workers: int) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray, which is not installed; "
                              "pip install 'hwsim[ray]' (or use --backend local)") from None
        self.workers = workers
        self._ray = ray
        self._started = False

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def _connect(self) -> None:
        ray = self._ray
        if not ray.is_initialized():
            import logging

            local = {} if os.environ.get("RAY_ADDRESS") else {"num_cpus": self.workers}
            ray.init(logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False, **local)
            self._started = True

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        if not items:
            return
        self._connect()
        ray = self._ray
        remote = ray.remote(fn)
        pending: dict[Any, int] = {remote.remote(item): i for i, item in enumerate(items)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, (HwsimError, ContractError)):
                        raise exc.cause from None
                    raise
                yield pending.pop(ref), result


def make_backend(name: str, workers: int | None = None) -> Backend:
    """The backend ``name`` (:data:`BACKENDS`) with ``workers`` workers (default
    :func:`default_workers`); ConfigError for an unknown name, a worker count below 1, or Ray
    missing."""
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"--workers must be 1 or more, not {workers}")
    if name == "local":
        return Local(workers)
    if name == "ray":
        return Ray(workers)
    raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
