"""Periodic work on a daemon thread of its own, started and stopped by the app's lifespan:
nothing periodic ever runs on a request's path or on the event loop."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("aihub.background")


class PeriodicTask:
    """Calls ``run_once`` every ``interval`` seconds (the first time after ``first_delay``)
    until ``stop``. An exception is logged and the next round tries again: the thread never
    dies. ``rounds`` counts finished rounds; ``wait_for_rounds`` lets a caller (a test) wait
    for one instead of sleeping."""

    name = "aihub-periodic"

    def __init__(self, interval: float, *, first_delay: float | None = None) -> None:
        self.interval = interval
        self.first_delay = interval if first_delay is None else first_delay
        self.rounds = 0
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def wait_for_rounds(self, rounds: int, timeout: float) -> bool:
        """Wait until ``rounds`` rounds have finished; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self.rounds >= rounds, timeout=timeout)

    def _run(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                self.run_once()
            except Exception:  # never let the thread die
                log.exception("%s: round failed", self.name)
            with self._done:
                self.rounds += 1
                self._done.notify_all()
