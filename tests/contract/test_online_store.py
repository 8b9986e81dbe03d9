"""One contract for every OnlineStore backend: in-process, one Redis server, and a real
3-master Redis Cluster this session starts itself (tests/redis_cluster.py). Fields per key,
TTL from the first field, generation-guarded fills (also racing invalidations from another
thread), invalidation, heard markers, batch reads across many cluster slots."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from aihub.stores.online.base import OnlineStore, cache_key
from tests.redis_cluster import RedisClusterServers


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def online(request: pytest.FixtureRequest) -> Iterator[OnlineStore]:
    if request.param == "memory":
        from aihub.stores.online.memory import MemoryOnlineStore

        store: OnlineStore = MemoryOnlineStore()
    elif request.param == "redis":
        from aihub.stores.online.redis import RedisOnlineStore
        from tests.conftest import REDIS_TEST_URL

        store = RedisOnlineStore(REDIS_TEST_URL, prefix=request.getfixturevalue("redis_prefix"))
    else:
        from aihub.stores.online.redis import RedisOnlineStore

        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        store = RedisOnlineStore(None, cluster_nodes=cluster.addresses,
                                 prefix=request.getfixturevalue("cluster_prefix"))
        assert store.cluster
    yield store
    store.close()


K1, K2 = cache_key("t1", "m1"), cache_key("t1", "m2")


def put(store: OnlineStore, key: str, value: bytes, field: str = "f", ttl: int = 60) -> None:
    store.put_many([(key, value, store.generations([key])[0])], field, ttl=ttl)


def test_miss_then_hit(online: OnlineStore) -> None:
    assert online.get_many([K1], "f") == [None]
    put(online, K1, b"v1")
    assert online.get_many([K1], "f") == [b"v1"]
    assert online.get_many([K1], "other") == [None]


def test_batch_reads_keep_order(online: OnlineStore) -> None:
    keys = [cache_key("t1", f"m{i}") for i in range(100)]
    gens = online.generations(keys)
    online.put_many([(k, k.encode(), g) for k, g in zip(keys[::2], gens[::2], strict=True)],
                    "f", ttl=60)
    got = online.get_many(keys, "f")
    assert got == [k.encode() if i % 2 == 0 else None for i, k in enumerate(keys)]
    assert online.get_many([], "f") == []


def test_batch_across_many_slots_and_tenants(online: OnlineStore) -> None:
    """305 assets of four tenants: on a cluster they span 300 slots on every master, and
    some slots hold two of them (one script per slot)."""
    keys = [cache_key(f"tenant-{t}", f"meter-{i:03d}") for i in range(100) for t in range(3)]
    keys += [same_slot_as(k) for k in keys[:5]]  # and a few pairs sharing a slot
    slots = {key_slot(k.encode()) for k in keys}
    assert len(slots) == 300 < len(keys)
    gens = online.generations(keys)
    assert gens == [0] * len(keys)
    online.put_many([(k, k.encode(), g) for k, g in zip(keys, gens, strict=True)], "f", ttl=60)
    assert online.get_many(keys, "f") == [k.encode() for k in keys]
    assert online.get_many(keys[::-1], "f") == [k.encode() for k in keys[::-1]]
    online.invalidate(keys[::3], seq=7)
    assert online.get_many(keys, "f") == [None if i % 3 == 0 else k.encode()
                                          for i, k in enumerate(keys)]
    assert online.generations(keys) == [1 if i % 3 == 0 else 0 for i in range(len(keys))]


def same_slot_as(key: str) -> str:
    """The cache key of another asset whose keys hash to the same cluster slot as ``key``."""
    slot = key_slot(key.encode())
    return next(k for i in range(1_000_000)
                if key_slot((k := cache_key("tenant-x", f"a{i}")).encode()) == slot)


def test_fields_share_one_entry(online: OnlineStore) -> None:
    put(online, K1, b"a", field="forecast_basic|168|1")
    put(online, K1, b"b", field="anomaly_detection|168|1")
    assert online.get_many([K1], "forecast_basic|168|1") == [b"a"]
    online.invalidate([K1])
    assert online.get_many([K1], "anomaly_detection|168|1") == [None]


def test_invalidate_advances_generation_and_drops_only_that_key(online: OnlineStore) -> None:
    put(online, K1, b"1")
    put(online, K2, b"2")
    before = online.generations([K1, K2])
    online.invalidate([K1])
    after = online.generations([K1, K2])
    assert after[0] != before[0] and after[1] == before[1]
    assert online.get_many([K1, K2], "f") == [None, b"2"]


def test_invalidation_after_a_write_marks_it_heard(online: OnlineStore) -> None:
    """Following the change feed skips writes whose invalidation landed."""
    put(online, K1, b"1")
    online.invalidate([K1], seq=41)
    online.invalidate([K2])  # no write number: nothing is marked
    online.invalidate([], seq=43)  # a write that touched no cached asset
    assert online.get_many([K1], "f") == [None]
    assert online.heard({40, 41, 42, 43}) == {41, 43}
    assert online.heard(set()) == set()


def test_heard_markers_of_many_writes(online: OnlineStore) -> None:
    """One marker per write: on a cluster they spread over every master."""
    for seq in range(1000, 1200, 2):
        online.invalidate([cache_key("t1", f"m{seq}")], seq=seq)
    assert online.heard(set(range(1000, 1200))) == set(range(1000, 1200, 2))


def test_stale_fill_is_refused(online: OnlineStore) -> None:
    token = online.generations([K1])[0]
    online.invalidate([K1])  # an ingest lands while the reader computes
    online.put_many([(K1, b"stale", token)], "f", ttl=60)
    assert online.get_many([K1], "f") == [None]
    put(online, K1, b"fresh")
    assert online.get_many([K1], "f") == [b"fresh"]


def test_stale_fill_of_a_batch_is_refused_per_asset(online: OnlineStore) -> None:
    keys = [cache_key("t1", f"m{i}") for i in range(50)]
    tokens = online.generations(keys)
    online.invalidate(keys[10:20])
    online.put_many([(k, b"v", g) for k, g in zip(keys, tokens, strict=True)], "f", ttl=60)
    assert online.get_many(keys, "f") == [None if 10 <= i < 20 else b"v"
                                          for i in range(len(keys))]


def test_a_fill_racing_invalidations_never_caches_stale_data(online: OnlineStore) -> None:
    """Readers compute from a "database" (a version counter) while a writer bumps it and
    invalidates, as an ingest does after its commit. Once an invalidation returns, no read
    may ever see a value older than the version it invalidated for."""
    keys = [cache_key("race", f"m{i}") for i in range(4)]
    version = [0]
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            tokens = online.generations(keys)
            seen = version[0]  # read the database after taking the tokens
            online.put_many([(k, str(seen).encode(), g) for k, g in zip(keys, tokens,
                                                                        strict=True)],
                            "f", ttl=60)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 1.5
        rounds = 0
        while time.monotonic() < deadline or rounds < 50:
            version[0] += 1  # commit
            committed = version[0]
            online.invalidate(keys, seq=committed)
            rounds += 1
            for key, value in zip(keys, online.get_many(keys, "f"), strict=True):
                if value is not None and int(value) < committed:
                    errors.append(f"{key}: served version {int(value)} after {committed}")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert not errors, errors[:5]
    # The readers did fill the cache meanwhile (the race was real, not all refused).
    for _ in range(2):
        tokens = online.generations(keys)
        online.put_many([(k, b"x", g) for k, g in zip(keys, tokens, strict=True)], "f", ttl=60)
    assert online.get_many(keys, "f") == [b"x"] * len(keys)


def test_ttl_counts_from_the_first_field(online: OnlineStore) -> None:
    put(online, K1, b"a", field="x", ttl=1)
    time.sleep(0.6)
    put(online, K1, b"b", field="y", ttl=1)  # must not extend the entry's life
    time.sleep(0.7)
    assert online.get_many([K1], "x") == [None]
    assert online.get_many([K1], "y") == [None]


def test_zero_ttl_stores_nothing(online: OnlineStore) -> None:
    put(online, K1, b"a", ttl=0)
    assert online.get_many([K1], "f") == [None]


def test_ping(online: OnlineStore) -> None:
    assert online.ping() is None
