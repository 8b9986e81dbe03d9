"""The online feature cache: serialized feature responses keyed per asset.

Layout: one entry per asset, ``features:{tenant-123:meter-001}:latest`` (the quick-start's
``features:{tenant}:{asset}:latest`` with the tenant and asset inside one pair of braces: a
Redis hash tag, so every key of an asset lands in the same Redis Cluster slot), holding one
field per (feature set, lookback, hour). Invalidation drops the whole entry.

Fills are guarded by a generation token so a slow reader can never write features it
computed before an ingest back into the cache after that ingest invalidated it:
``token = generation(key)`` before reading the store, ``put(..., generation=token)`` after.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence


def cache_key(tenant_id: str, asset_id: str) -> str:
    return f"features:{{{tenant_id}:{asset_id}}}:latest"


class OnlineStore(ABC):
    # True when every API replica sees the same cache (Redis); an in-process cache must
    # also watch the store for ingests made by other processes.
    shared: bool = False
    backend_name: str = "online"

    @abstractmethod
    def get_many(self, keys: Sequence[str], field: str) -> list[bytes | None]:
        """The value of ``field`` under each key, or ``None`` where absent or expired."""

    @abstractmethod
    def generations(self, keys: Sequence[str]) -> list[int]:
        """The current generation of each key (changes on every invalidation)."""

    @abstractmethod
    def put_many(self, items: Sequence[tuple[str, bytes, int]], field: str, *, ttl: int) -> None:
        """Store ``(key, value, generation)`` items whose key is still at that generation;
        the entry expires ``ttl`` seconds after its first field was stored."""

    @abstractmethod
    def invalidate(self, keys: Sequence[str], *, seq: int | None = None) -> None:
        """Drop the entries and advance their generations. ``seq``: the change-feed number
        of the write that made them stale, recorded as heard."""

    @abstractmethod
    def heard(self, seqs: Collection[int]) -> set[int]:
        """The writes among ``seqs`` whose invalidations reached this cache; entries the
        others changed may be stale (``FeatureService.follow_changes``)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``BackendUnavailable`` if the cache cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
