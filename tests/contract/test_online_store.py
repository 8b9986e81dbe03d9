"""One contract for every OnlineStore backend (in-process, Redis): fields per key, TTL
from the first field, generation-guarded fills, invalidation, batch reads."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aihub.stores.online.base import OnlineStore, cache_key


@pytest.fixture(params=["memory", "redis"])
def online(request: pytest.FixtureRequest) -> Iterator[OnlineStore]:
    if request.param == "memory":
        from aihub.stores.online.memory import MemoryOnlineStore

        store: OnlineStore = MemoryOnlineStore()
    else:
        from aihub.stores.online.redis import RedisOnlineStore
        from tests.conftest import REDIS_TEST_URL

        store = RedisOnlineStore(REDIS_TEST_URL, prefix=request.getfixturevalue("redis_prefix"))
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


def test_stale_fill_is_refused(online: OnlineStore) -> None:
    token = online.generations([K1])[0]
    online.invalidate([K1])  # an ingest lands while the reader computes
    online.put_many([(K1, b"stale", token)], "f", ttl=60)
    assert online.get_many([K1], "f") == [None]
    put(online, K1, b"fresh")
    assert online.get_many([K1], "f") == [b"fresh"]


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
