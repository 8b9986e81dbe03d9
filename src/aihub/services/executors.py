"""Where the tasks of a job run: in this process, on a pool of local processes, or on a Dask
cluster. One small interface, one class per kind.

``Executor.run(fn, tasks, on_done)`` calls ``fn(task)`` for every task, ``on_done`` with each
result as it completes (in this process, in completion order), and returns the results in
the order of ``tasks``. A task must be safe to run twice (a retry after a worker died):
export parts are written under deterministic names, so a second run overwrites the first.
``fn`` and the tasks must pickle for the pool and Dask (a module-level function and plain
dataclasses). Dask reschedules the tasks of a worker that died on another worker (up to
its ``distributed.scheduler.allowed-failures``); the local pool fails the job instead.
"""

from __future__ import annotations

import multiprocessing
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from aihub.errors import BackendUnavailable, InvalidInput, MissingDependency

__all__ = ["DaskExecutor", "Executor", "InlineExecutor", "ProcessExecutor", "make_executor"]

T = TypeVar("T")
R = TypeVar("R")
OnDone = Callable[[Any], None]


class Executor(ABC):
    """Runs independent tasks; ``workers`` is how many run at once (for partitioning)."""

    name: str = "executor"
    workers: int = 1

    @abstractmethod
    def run(self, fn: Callable[[T], R], tasks: Sequence[T], on_done: OnDone | None = None
            ) -> list[R]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers or connections this executor started."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlineExecutor(Executor):
    """One task after the other in this process (the default)."""

    name = "inline"

    def run(self, fn: Callable[[T], R], tasks: Sequence[T], on_done: OnDone | None = None
            ) -> list[R]:
        out = []
        for task in tasks:
            result = fn(task)
            if on_done:
                on_done(result)
            out.append(result)
        return out


class ProcessExecutor(Executor):
    """A pool of ``workers`` local processes, started fresh (``spawn``: nothing of this
    process's connections or threads is inherited) for one job."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise InvalidInput("--workers: must be at least 1")
        self.workers = workers

    def run(self, fn: Callable[[T], R], tasks: Sequence[T], on_done: OnDone | None = None
            ) -> list[R]:
        results: dict[int, R] = {}
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.workers, max(len(tasks), 1)),
                                 mp_context=context) as pool:
            futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            try:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    if on_done:
                        on_done(results[futures[future]])
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return [results[i] for i in range(len(tasks))]


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: the scheduler at ``address`` (``tcp://host:8786``), or a
    ``distributed.Client`` the caller made (e.g. on a ``LocalCluster``). Workers need aihub
    installed and must reach the database and the export storage (S3, or a directory that
    every worker mounts at the same path)."""

    name = "dask"

    def __init__(self, address: str | None = None, *, client: Any = None) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise MissingDependency("exports on Dask need 'dask[distributed]'") from exc
        if client is None and not address:
            raise InvalidInput("--dask: give the scheduler's address, e.g. tcp://host:8786")
        self._own = client is None
        try:
            self.client = client if client is not None else Client(address, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise BackendUnavailable("dask", f"no scheduler answers at {address}") from exc
        except ValueError as exc:  # not an address Dask understands
            raise InvalidInput(f"--dask: '{address}' is not a scheduler address, e.g. "
                               "tcp://host:8786") from exc
        self.workers = max(1, sum(self.client.nthreads().values()))

    def run(self, fn: Callable[[T], R], tasks: Sequence[T], on_done: OnDone | None = None
            ) -> list[R]:
        from distributed import as_completed as dask_completed

        # pure=False: every task runs (and reruns on failure) as itself, never deduplicated.
        futures = self.client.map(fn, list(tasks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, R] = {}
        try:
            for future in dask_completed(futures):
                results[index[future.key]] = future.result()
                if on_done:
                    on_done(results[index[future.key]])
        except BaseException:
            self.client.cancel(futures)
            raise
        return [results[i] for i in range(len(tasks))]

    def close(self) -> None:
        if self._own:
            self.client.close()


def make_executor(*, workers: int | None = None, dask: str | None = None) -> Executor:
    """The executor a command asks for: Dask at ``dask``, else ``workers`` local processes
    (more than one), else this process."""
    if dask:
        return DaskExecutor(dask)
    if workers is not None and workers > 1:
        return ProcessExecutor(workers)
    return InlineExecutor()
