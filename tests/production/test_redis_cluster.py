"""The Redis online store's key layout and its Redis Cluster mode beyond the contract suite:
where the keys live, how cluster mode is configured, a master that stops answering, and the
app serving features with the session's 3-master cluster as its online cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import ValidationError
from redis.crc import key_slot

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.errors import BackendUnavailable
from aihub.services.container import build_online, build_services
from aihub.stores.online import redis as redis_store
from aihub.stores.online.base import cache_key
from aihub.stores.online.redis import RedisOnlineStore, gen_key
from tests.conftest import REDIS_TEST_URL, free_port
from tests.factories import at, iso, readings
from tests.redis_cluster import RedisClusterServers

K1 = cache_key("tenant-123", "meter-001")


def test_cache_key_is_hash_tagged() -> None:
    assert K1 == "features:{tenant-123:meter-001}:latest"
    assert gen_key(K1) == "features:{tenant-123:meter-001}:gen"


@pytest.mark.parametrize("prefix", ["", "prod:", "a{b}:", "x{y:", "}{"])
def test_an_assets_keys_share_a_slot_whatever_the_prefix(prefix: str) -> None:
    for tenant, asset in [("t", "m"), ("tenant-123", "meter-001"), ("a.b", "c_d-9")]:
        key = prefix + cache_key(tenant, asset)
        assert key_slot(key.encode()) == key_slot((prefix + gen_key(cache_key(tenant, asset)))
                                                  .encode())


def test_layout_on_one_server(redis_prefix: str) -> None:
    """The README's names, under AIHUB_REDIS_PREFIX: ``KEYS features:*`` finds them."""
    store = RedisOnlineStore(REDIS_TEST_URL, prefix=redis_prefix)
    try:
        store.put_many([(K1, b"doc", 0)], "f", ttl=60)
        store.invalidate([cache_key("tenant-123", "meter-002")], seq=12)
        raw = redis.Redis.from_url(REDIS_TEST_URL)
        assert sorted(raw.keys(f"{redis_prefix}features:*")) == [
            f"{redis_prefix}features:{{tenant-123:meter-001}}:latest".encode(),
            f"{redis_prefix}features:{{tenant-123:meter-002}}:gen".encode(),
        ]
        assert raw.hget(f"{redis_prefix}features:{{tenant-123:meter-001}}:latest", "f") == b"doc"
        assert 0 < raw.ttl(f"{redis_prefix}features:{{tenant-123:meter-001}}:latest") <= 60
        assert raw.get(f"{redis_prefix}aihub:heard2:12") == b"1"
        raw.close()
    finally:
        store.close()


def test_layout_on_the_cluster(redis_cluster: RedisClusterServers, cluster_prefix: str) -> None:
    store = RedisOnlineStore(None, cluster_nodes=redis_cluster.addresses, prefix=cluster_prefix)
    try:
        keys = [cache_key("tenant-123", f"meter-{i:03d}") for i in range(30)]
        store.put_many([(k, b"doc", 0) for k in keys], "f", ttl=60)
        store.invalidate(keys[:10], seq=99)
        holders = set()
        for key in keys:
            node = redis_cluster.node_of(cluster_prefix + key)
            holders.add(node.port)
            with node.client() as c:  # the entry and its counter on the same master
                assert c.exists(cluster_prefix + key) == (key not in keys[:10])
                assert c.exists(cluster_prefix + gen_key(key)) == (key in keys[:10])
        assert len(holders) == 3  # the assets spread over every master
        found = redis_cluster.keys(f"{cluster_prefix}features:*")
        assert len(found) == 30
        assert redis_cluster.keys(f"{cluster_prefix}aihub:heard2:*") == [
            f"{cluster_prefix}aihub:heard2:99".encode()]
    finally:
        store.close()


def test_reads_and_writes_follow_a_slot_moved_to_another_master(
    redis_cluster: RedisClusterServers, cluster_prefix: str,
) -> None:
    """Resharding while aihub runs: its slot map is stale, the masters answer MOVED, and
    every operation still reaches the asset's keys at their new home."""
    store = RedisOnlineStore(None, cluster_nodes=redis_cluster.addresses, prefix=cluster_prefix)
    keys = [cache_key("reshard", f"m{i}") for i in range(30)]
    try:
        store.put_many([(k, k.encode(), 0) for k in keys], "f", ttl=60)
        assert store.get_many(keys, "f") == [k.encode() for k in keys]
        for key, alone in [(keys[0], False), (keys[1], True)]:
            home = redis_cluster.node_of(cluster_prefix + key)
            redis_cluster.move_slot_of(cluster_prefix + key,
                                       next(n for n in redis_cluster.nodes if n is not home))
            assert redis_cluster.node_of(cluster_prefix + key) is not home
            if alone:  # one command on its own
                assert store.get_many([key], "f") == [key.encode()]
            else:  # within a pipeline to each master
                assert store.get_many(keys, "f") == [k.encode() for k in keys]
        token = store.generations(keys[:2])
        store.invalidate(keys[:2], seq=31)
        assert store.get_many(keys[:3], "f") == [None, None, keys[2].encode()]
        store.put_many([(k, b"stale", t) for k, t in zip(keys[:2], token, strict=True)], "f",
                       ttl=60)
        assert store.get_many(keys[:2], "f") == [None, None]
        assert store.heard({31}) == {31}
        assert store.ping() is None
    finally:
        store.close()


def test_scripts_lost_by_the_servers_are_loaded_again(
    redis_cluster: RedisClusterServers, cluster_prefix: str,
) -> None:
    """After a restart or a failover a master has no scripts: calls load them and go on."""
    store = RedisOnlineStore(None, cluster_nodes=redis_cluster.addresses, prefix=cluster_prefix)
    keys = [cache_key("scripts", f"m{i}") for i in range(40)]
    try:
        for batch in ([keys[0]], keys):  # one script call alone, and a pipeline of them
            for node in redis_cluster.nodes:
                with node.client() as c:
                    c.script_flush()
            store.put_many([(k, b"v", g) for k, g in zip(batch, store.generations(batch),
                                                        strict=True)], "f", ttl=60)
            assert store.get_many(batch, "f") == [b"v"] * len(batch)
            for node in redis_cluster.nodes:
                with node.client() as c:
                    c.script_flush()
            assert store.get_many(batch, "f") == [b"v"] * len(batch)
            store.invalidate(batch)
        assert store.ping() is None  # never taken for an outage
    finally:
        store.close()


# -- configuration ------------------------------------------------------------------------


def test_cluster_mode_from_settings(redis_cluster: RedisClusterServers, cluster_prefix: str,
                                    tmp_path: Path) -> None:
    nodes = redis_cluster.nodes
    configs: list[dict[str, Any]] = [
        {"REDIS_CLUSTER_NODES": redis_cluster.addresses},
        {"REDIS_CLUSTER_NODES": f" {nodes[1].address} "},  # one node finds the others
        {"REDIS_URL": f"redis+cluster://{nodes[0].address},{nodes[2].address}"},
        {"REDIS_URL": f"redis+cluster://{nodes[2].address}/0"},
        # A plain REDIS_URL beside REDIS_CLUSTER_NODES: one more startup node (and the
        # source of credentials and TLS for all of them).
        {"REDIS_URL": f"redis://{nodes[0].address}", "REDIS_CLUSTER_NODES": nodes[1].address},
    ]
    for env in configs:
        store = build_online(Settings(AIHUB_DATA_DIR=tmp_path, AIHUB_REDIS_PREFIX=cluster_prefix,
                                      **env))
        assert isinstance(store, RedisOnlineStore) and store.cluster, env
        try:
            keys = [cache_key("cfg", f"m{i}") for i in range(20)]
            store.put_many([(k, k.encode(), g) for k, g in zip(keys, store.generations(keys),
                                                               strict=True)], "f", ttl=60)
            assert store.get_many(keys, "f") == [k.encode() for k in keys], env
            store.invalidate(keys)
        finally:
            store.close()
    plain = build_online(Settings(AIHUB_DATA_DIR=tmp_path, REDIS_URL=REDIS_TEST_URL))
    assert isinstance(plain, RedisOnlineStore) and not plain.cluster
    plain.close()


@pytest.mark.parametrize("nodes", ["127.0.0.1", "127.0.0.1:", "h:70000", "h:7000,,h:7001",
                                   ":7000", "h:port"])
def test_bad_cluster_nodes_are_refused_by_name(nodes: str) -> None:
    with pytest.raises(ValidationError, match=r"REDIS_CLUSTER_NODES: .* is not host:port"):
        Settings(REDIS_CLUSTER_NODES=nodes)


@pytest.mark.parametrize(("url", "message"), [
    ("redis+cluster://127.0.0.1", r"REDIS_URL: .* is not host:port"),
    ("redis+cluster://127.0.0.1:7000/2", "only database 0"),
])
def test_bad_cluster_urls_are_refused_by_name(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisOnlineStore(url)


# -- outages --------------------------------------------------------------------------------


def test_a_cluster_down_at_startup_is_an_outage_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_store, "BACKOFF_SECONDS", 0.2)
    store = RedisOnlineStore(None, cluster_nodes=f"127.0.0.1:{free_port()}")
    try:
        assert store.get_many([K1], "f") == [None]
        assert store.generations([K1]) == [-1]
        store.invalidate([K1], seq=5)  # kept for when the cluster answers
        with pytest.raises(BackendUnavailable, match="redis"):
            store.ping()
    finally:
        store.close()


def test_a_master_that_stops_answering(
    redis_cluster: RedisClusterServers, cluster_prefix: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The master holding an asset's slot hangs: reads are misses after one short timeout,
    fills are dropped, the invalidation waits; once the master answers again the stale entry
    is dropped before anything is served from it, and the write is marked heard."""
    monkeypatch.setattr(redis_store, "BACKOFF_SECONDS", 0.2)
    store = RedisOnlineStore(None, cluster_nodes=redis_cluster.addresses, prefix=cluster_prefix,
                             socket_timeout=0.3)
    node = redis_cluster.node_of(cluster_prefix + K1)
    other = next(k for i in range(100) if redis_cluster.node_of(
        cluster_prefix + (k := cache_key("tenant-123", f"meter-{i}"))) is not node)
    try:
        store.put_many([(K1, b"old", 0), (other, b"fine", 0)], "f", ttl=60)
        assert store.get_many([K1, other], "f") == [b"old", b"fine"]
        with redis_cluster.frozen(node):
            t = time.monotonic()
            store.invalidate([K1], seq=7)  # an ingest's invalidation: deferred
            assert time.monotonic() - t < 3
            assert store.get_many([K1], "f") == [None]  # backed off: no wait at all
            assert store.generations([K1]) == [-1]
            with pytest.raises(BackendUnavailable, match="redis"):
                store.ping()
        # Answering again, still holding the old entry: it must never be served.
        deadline = time.monotonic() + 10
        while store.heard({7}) != {7}:  # replayed (counter, entry, then the marker)
            assert time.monotonic() < deadline, "the deferred invalidation was never replayed"
            time.sleep(0.05)
        assert store.get_many([K1, other], "f") == [None, b"fine"]
        assert store.ping() is None
    finally:
        store.close()


# -- the app on the cluster -------------------------------------------------------------------

T = "tenant-cluster"


@pytest.fixture
def cluster_app(tmp_path: Path, pg_url: str, redis_cluster: RedisClusterServers,
                cluster_prefix: str) -> Iterator[TestClient]:
    settings = Settings(AIHUB_DATA_DIR=tmp_path / "data", DATABASE_URL=pg_url,
                        REDIS_CLUSTER_NODES=redis_cluster.addresses,
                        AIHUB_REDIS_PREFIX=cluster_prefix,
                        EXPORT_STORAGE_PATH=str(tmp_path / "exports"))
    svc = build_services(settings)
    with TestClient(create_app(services=svc)) as c:
        yield c
    svc.close()


def _get(client: TestClient, asset: str) -> dict[str, Any]:
    r = client.post("/ai/features/get", json={"tenant_id": T, "asset_id": asset,
                                              "feature_set": "forecast_basic",
                                              "as_of": iso(at(30))})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_the_app_serves_from_the_cluster_and_ingest_invalidates(
    cluster_app: TestClient, redis_cluster: RedisClusterServers, cluster_prefix: str,
) -> None:
    assets = [f"m{i}" for i in range(12)]
    rows = [r for a in assets for r in readings(a, range(0, 30), lambda h: 1.0)]
    assert cluster_app.post("/ai/features/ingest",
                            json={"tenant_id": T, "readings": rows}).status_code == 200
    assert cluster_app.get("/ready").json()["checks"]["online_cache"]["status"] == "ok"

    first = _get(cluster_app, "m0")
    assert first["features"]["lag_1h"] == 1.0
    assert _get(cluster_app, "m0") == first  # served from the cache: same computed_at
    key = f"{cluster_prefix}features:{{{T}:m0}}:latest"
    with redis_cluster.node_of(key).client() as c:
        assert c.exists(key)

    batch = {"tenant_id": T, "asset_ids": assets, "feature_set": "forecast_basic",
             "as_of": iso(at(30))}
    r1 = cluster_app.post("/ai/features/get-batch", json=batch)
    assert r1.status_code == 200
    assert r1.json()["results"][0] == first
    assert cluster_app.post("/ai/features/get-batch", json=batch).json() == r1.json()
    assert len(redis_cluster.keys(f"{cluster_prefix}features:*:latest")) == len(assets)

    # A correction: its invalidation reaches the cluster, so the next get recomputes.
    assert cluster_app.post("/ai/features/ingest", json={
        "tenant_id": T, "readings": readings("m0", [29], lambda h: 5.0)}).status_code == 200
    assert _get(cluster_app, "m0")["features"]["lag_1h"] == 5.0
    again = cluster_app.post("/ai/features/get-batch", json=batch).json()["results"]
    assert again[0]["features"]["lag_1h"] == 5.0
    assert again[1:] == r1.json()["results"][1:]  # the others still from the cache
