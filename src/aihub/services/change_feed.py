"""Reads the store's change feed and drops the cache entries of writes the cache never
heard of.

Every write invalidates the cache itself right after its commit and records its number as
heard. Writes whose invalidation never reached this cache (another process's, with an
in-process cache; a writer cut off from Redis that then went away) are found here: the
store returns every committed change after the cursor (``TimeSeriesStore.changes_since``:
none is skipped, whatever the commit order), and the entries of those not heard are
dropped. The store may return a change again while older transactions are still open;
``ChangeFeed`` remembers what its last read returned and skips those repeats.
"""

from __future__ import annotations

import threading

from aihub.metrics import record_stale_drops
from aihub.stores.online.base import OnlineStore, cache_key
from aihub.stores.timeseries.base import TimeSeriesStore


class ChangeFeed:
    def __init__(self, store: TimeSeriesStore, online: OnlineStore) -> None:
        self.store = store
        self.online = online
        self._cursor: int | None = None
        self._seen: dict[tuple[str, str], int] = {}  # what the last read returned
        self._lock = threading.Lock()

    def follow(self) -> int:
        """Handle the changes committed since the last call; the first call only sets
        where following starts. Returns how many cache entries were dropped."""
        with self._lock:
            batch = self.store.changes_since(self._cursor)
            if self._cursor is None:  # what committed before following started is seen
                self._seen = {(c.tenant_id, c.asset_id): c.seq for c in batch.changes}
                self._cursor = batch.cursor
                return 0
            fresh = [c for c in batch.changes
                     if self._seen.get((c.tenant_id, c.asset_id)) != c.seq]
            keys: list[str] = []
            if fresh:
                heard = self.online.heard({c.seq for c in fresh})
                keys = [cache_key(c.tenant_id, c.asset_id) for c in fresh if c.seq not in heard]
                if keys:
                    self.online.invalidate(keys)
                    record_stale_drops(len(keys))
            # Advanced only once handled: a store or cache error leaves it to the next call.
            self._seen = {(c.tenant_id, c.asset_id): c.seq for c in batch.changes}
            self._cursor = batch.cursor
            return len(keys)
