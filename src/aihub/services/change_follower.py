"""Follows the store's change feed in the background, for replicas sharing a cache.

Every write (ingest, weather, asset change) invalidates the shared cache itself right after
its commit; this thread is the safety net for writes whose invalidation could not reach
Redis and whose process then went away (a CLI run, a replica that died): within about one
interval, every live replica drops what those writes made stale
(``FeatureService.follow_changes``).
"""

from __future__ import annotations

import logging
import threading

from aihub.errors import AihubError
from aihub.services.features import FeatureService

log = logging.getLogger("aihub.change_follower")


class ChangeFollower:
    def __init__(self, features: FeatureService, interval: float) -> None:
        self.features = features
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Set where following starts (now), then poll every ``interval`` seconds."""
        self._follow()
        self._thread = threading.Thread(target=self._run, name="aihub-change-follower",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._follow()

    def _follow(self) -> None:
        try:
            dropped = self.features.follow_changes()
        except AihubError as exc:  # the database is down: /ready says so; try next time
            log.debug("change feed not followed: %s", exc)
            return
        except Exception:  # never let the thread die
            log.exception("change feed not followed")
            return
        if dropped:
            log.warning("dropped %d cache entries of writes whose invalidation never "
                        "reached the shared cache", dropped)
