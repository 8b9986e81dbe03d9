"""An LRU cache of loaded models keyed by artifact sha256.

Keyed by digest, not by model_id: two versions with the same bytes share one entry, and
an alias (``:production``) that moves to another version can never serve the old model.
``MODEL_CACHE_SIZE`` bounds the entries (0 disables caching), ``MODEL_CACHE_TTL`` the
seconds an entry lives after loading (0 means no expiry).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aihub.metrics import model_cache_hit, model_cache_miss

V = TypeVar("V")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0


class ModelCache(Generic[V]):
    def __init__(self, *, max_size: int, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.ttl = ttl
        self.clock = clock
        self.stats = CacheStats()
        self._items: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, digest: str) -> bool:
        return self._peek(digest) is not None

    def _peek(self, digest: str) -> V | None:
        with self._lock:
            item = self._items.get(digest)
            if item is None:
                return None
            value, loaded_at = item
            if self.ttl and self.clock() - loaded_at >= self.ttl:
                del self._items[digest]
                self.stats.expirations += 1
                return None
            self._items.move_to_end(digest)
            return value

    def get(self, digest: str, load: Callable[[], V]) -> V:
        """The cached value for ``digest``, or ``load()`` it (once, even when many
        requests miss together) and keep it."""
        value = self._peek(digest)
        if value is not None:
            self.stats.hits += 1
            model_cache_hit()
            return value
        with self._lock:
            gate = self._loading.setdefault(digest, threading.Lock())
        with gate:
            value = self._peek(digest)
            if value is not None:
                self.stats.hits += 1
                model_cache_hit()
                return value
            self.stats.misses += 1
            model_cache_miss()
            value = load()
            self._store(digest, value)
        with self._lock:
            self._loading.pop(digest, None)
        return value

    def _store(self, digest: str, value: V) -> None:
        if self.max_size <= 0:
            return
        with self._lock:
            self._items[digest] = (value, self.clock())
            self._items.move_to_end(digest)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)
                self.stats.evictions += 1

    def invalidate(self, digest: str) -> None:
        with self._lock:
            self._items.pop(digest, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
