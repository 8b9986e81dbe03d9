"""Stream worker processes (``--processes N`` / ``AIHUB_MQTT_PROCESSES``): each worker is
a whole stream (its own MQTT session, batches, commits and GIL), sharing the
subscriptions.

Worker k connects as ``<client id>`` (k = 0) or ``<client id>-<k>`` and subscribes the
readings and weather filters as MQTT 5 shared subscriptions (``$share/<client id>/...``):
the broker hands each message to one worker. Cumulative registers stay with worker 0,
unshared, because their conversion reads each asset's totals in order
(``StreamConfig.subscriptions``). Every guarantee of one stream holds per worker: a
message is acknowledged after its batch committed, and a worker that dies is started
again with the same session, which the broker re-delivers its unacknowledged messages to
(and keeps its share of new ones for, meanwhile).

``WorkerPool`` starts, watches and stops workers ``first..N-1`` (``aihub stream mqtt``
runs them all, ``aihub serve`` runs worker 0 in the API process and the rest here); each
worker reports its status every second, so ``GET /ai/stream/status`` can add them up.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from aihub.streams.config import StreamConfig

__all__ = ["WorkerPool", "run_workers"]

_RESTART_PAUSE = 1.0  # seconds before a worker that died is started again
_REPORT_EVERY = 0.25  # seconds between a worker's status reports


def _worker(config: StreamConfig, events: Any, stop: MpEvent) -> None:
    """One worker process: a stream until the pool says stop (or its parent is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: parent decides
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from aihub.cli.app import services
    from aihub.streams.runner import build_stream

    parent = os.getppid()
    with services() as svc:
        stream = build_stream(svc, config)
        stream.start()
        if stream.wait_subscribed(60):
            events.put(("subscribed", config.worker))
        try:
            while not stop.wait(_REPORT_EVERY) and os.getppid() == parent:
                events.put(("status", config.worker, stream.status.snapshot()))
        finally:
            stream.stop()
            events.put(("stopped", config.worker, stream.status.snapshot()))


class WorkerPool:
    """Workers ``first`` .. ``config.processes - 1`` of ``config``, each a process."""

    def __init__(self, config: StreamConfig, *, first: int = 0,
                 warn: Callable[[str], Any] | None = None) -> None:
        self.config = config
        self.first = first
        self.warn = warn or (lambda _m: None)
        self._ctx = mp.get_context("spawn")
        self._events = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self._procs: dict[int, Any] = {}
        self.subscribed: set[int] = set()
        self.status: dict[int, dict[str, Any]] = {}  # each worker's latest report
        self.committed_before: dict[int, int] = {}  # by workers that were started again
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    @property
    def size(self) -> int:
        return self.config.processes - self.first

    def start(self) -> None:
        for k in range(self.first, self.config.processes):
            self._launch(k)

    def _launch(self, k: int) -> None:
        proc = self._ctx.Process(target=_worker, name=f"aihub-stream-{k}",
                                 args=(self.config.for_worker(k), self._events, self._stop))
        proc.start()
        self._procs[k] = proc

    def poll(self, timeout: float = 0.5) -> None:
        """Take the workers' reports; start a worker that died again."""
        with contextlib.suppress(queue.Empty):
            self._take(self._events.get(timeout=timeout))
            while True:
                self._take(self._events.get_nowait())
        for k, proc in list(self._procs.items()):
            if not proc.is_alive() and not self._stop.is_set():
                self.warn(f"stream worker {k} exited ({proc.exitcode}); starting it again")
                self._retire_status(k)
                time.sleep(_RESTART_PAUSE)
                self._launch(k)

    def _take(self, event: tuple[Any, ...]) -> None:
        kind, k = event[0], event[1]
        if kind == "subscribed":
            self.subscribed.add(k)
        elif kind in ("status", "stopped"):
            self.status[k] = event[2]

    def _retire_status(self, k: int) -> None:
        old = self.status.pop(k, None)
        if old is not None:
            self.committed_before[k] = self.committed_before.get(k, 0) + \
                int(old["messages_committed"])
        self.subscribed.discard(k)

    def reports(self) -> list[dict[str, Any]]:
        """Each worker's latest status, its committed count including the runs before
        a restart."""
        return [{**s, "messages_committed": self.committed(k)}
                for k, s in sorted(self.status.items())]

    def committed(self, k: int) -> int:
        return self.committed_before.get(k, 0) + \
            int(self.status.get(k, {}).get("messages_committed", 0))

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop every worker (each commits and acknowledges what it received); whether
        all exited cleanly."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._stop.set()
        for proc in self._procs.values():
            proc.join(timeout)
            if proc.is_alive():
                proc.terminate()
                proc.join(10)
        with contextlib.suppress(queue.Empty):
            while True:
                self._take(self._events.get(timeout=0.2))
        return all(p.exitcode == 0 for p in self._procs.values())

    def watch_in_background(self) -> None:
        """Poll in a thread of this process until ``stop`` (``aihub serve``)."""
        def run() -> None:
            while not self._done.is_set():
                self.poll()

        self._thread = threading.Thread(target=run, name="aihub-stream-workers", daemon=True)
        self._thread.start()


def run_workers(config: StreamConfig, done: Any, say: Callable[[str], Any],
                warn: Callable[[str], Any]) -> int:
    """``aihub stream mqtt --processes N``: every worker, until ``done`` is set; the exit
    code."""
    pool = WorkerPool(config, warn=warn)
    pool.start()
    topics = ", ".join(config.subscriptions()[0])
    say(f"streaming from {config.url} as '{config.client_id}' in {config.processes} "
        f"processes: {topics}")
    announced = False
    while not done.is_set():
        pool.poll()
        if not announced and len(pool.subscribed) == pool.size:
            say("subscribed")
            announced = True
    clean = pool.stop()
    each = ", ".join(f"worker {k}: {pool.committed(k)}" for k in range(config.processes))
    dead = max((int(s["dead_letters"]) for s in pool.status.values()), default=0)
    say(f"stopped: {sum(pool.committed(k) for k in range(config.processes))} messages "
        f"stored ({each}), {dead} dead letters in total")
    return 0 if clean else 1
