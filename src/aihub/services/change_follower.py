"""Follows the store's change feed in the background, in every API process.

Every write (ingest, weather, asset change) invalidates the online cache of its own process
(and a shared Redis cache) right after its commit. What no process-local cache hears is a
write made by another process: a CLI import into the same SQLite file, another replica's
ingest on PostgreSQL with the in-process cache, or, with Redis, a writer whose invalidation
could not reach Redis and that then went away. This thread looks at the change feed every
``AIHUB_CHANGE_FOLLOW_INTERVAL`` seconds (default 0.5) and drops what those writes made
stale (``FeatureService.follow_changes``), so a request never waits for the database to
learn whether its cached features are still current.
"""

from __future__ import annotations

import logging

from aihub.errors import AihubError
from aihub.services.background import PeriodicTask
from aihub.services.features import FeatureService

log = logging.getLogger("aihub.change_follower")


class ChangeFollower(PeriodicTask):
    name = "aihub-change-follower"

    def __init__(self, features: FeatureService, interval: float) -> None:
        super().__init__(interval)
        self.features = features

    def start(self) -> None:
        """Set where following starts (now), then look every ``interval`` seconds."""
        self.run_once()
        super().start()

    def run_once(self) -> None:
        try:
            dropped = self.features.follow_changes()
        except AihubError as exc:  # the database is down: /ready says so; try next time
            log.debug("change feed not followed: %s", exc)
            return
        if dropped and self.features.online.shared:  # an invalidation got lost on the way
            log.warning("dropped %d cache entries of writes whose invalidation never "
                        "reached the shared cache", dropped)
        elif dropped:  # the in-process cache hears only its own process: expected
            log.debug("dropped %d cache entries of writes made by other processes", dropped)
