"""In-process online store: the embedded default (a dict with TTLs, guarded by a lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Sequence

from aihub.stores.online.base import OnlineStore

_MAX_ENTRIES = 100_000
_MAX_HEARD = 10_000


class MemoryOnlineStore(OnlineStore):
    shared = False
    backend_name = "memory"

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, dict[str, bytes]]] = {}
        self._generations: dict[str, int] = {}
        self._heard: dict[int, None] = {}  # this process's writes, oldest first
        self._lock = threading.Lock()
        self._now = time.monotonic

    def get_many(self, keys: Sequence[str], field: str) -> list[bytes | None]:
        now = self._now()
        out: list[bytes | None] = []
        entries = self._entries
        for key in keys:
            entry = entries.get(key)
            if entry is None or entry[0] <= now:
                out.append(None)
            else:
                out.append(entry[1].get(field))
        return out

    def generations(self, keys: Sequence[str]) -> list[int]:
        with self._lock:
            return [self._generations.get(k, 0) for k in keys]

    def put_many(self, items: Sequence[tuple[str, bytes, int]], field: str, *, ttl: int) -> None:
        if ttl <= 0:
            return
        now = self._now()
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._evict(now)
            for key, value, generation in items:
                if self._generations.get(key, 0) != generation:
                    continue
                entry = self._entries.get(key)
                if entry is None or entry[0] <= now:
                    entry = (now + ttl, {})
                    self._entries[key] = entry
                entry[1][field] = value

    def invalidate(self, keys: Sequence[str], *, seq: int | None = None) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
                self._generations[key] = self._generations.get(key, 0) + 1
            if seq is not None:
                self._heard[seq] = None
                if len(self._heard) > _MAX_HEARD:  # forgotten writes are dropped again: safe
                    del self._heard[next(iter(self._heard))]

    def heard(self, seqs: Collection[int]) -> set[int]:
        with self._lock:
            return {s for s in seqs if s in self._heard}

    def ping(self) -> None:
        return None

    def _evict(self, now: float) -> None:
        expired = [k for k, (exp, _) in self._entries.items() if exp <= now]
        for k in expired:
            del self._entries[k]
        if len(self._entries) >= _MAX_ENTRIES:  # still full: drop the oldest half
            for k in list(self._entries)[: _MAX_ENTRIES // 2]:
                del self._entries[k]
