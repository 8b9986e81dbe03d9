"""Redis stopped or partitioned away in the middle of a run: online features keep coming, computed
from PostgreSQL, identical to what the cache served; /ready says "degraded" (200) and
names Redis; an ingest made while Redis was unreachable is never hidden by a stale entry
once Redis answers again. Uses a redis-server of its own (never the shared one on 6379),
reached through a relay the test can cut to stage a network partition."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import build_services
from aihub.stores.online import redis as redis_store
from tests.conftest import free_port
from tests.factories import at, iso, readings
from tests.relay import CuttableProxy

T = "tenant-outage"


class OwnRedis:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server not installed")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def proxy(own_redis: OwnRedis) -> Iterator[CuttableProxy]:
    relay = CuttableProxy(own_redis.port)
    yield relay
    relay.close()


@pytest.fixture
def client(tmp_path: Path, pg_url: str, proxy: CuttableProxy,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(redis_store, "BACKOFF_SECONDS", 0.2)
    settings = Settings(AIHUB_DATA_DIR=tmp_path / "data", DATABASE_URL=pg_url,
                        REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
                        EXPORT_STORAGE_PATH=str(tmp_path / "exports"))
    svc = build_services(settings)
    svc.online._conn.pool.connection_kwargs["socket_timeout"] = 0.3  # type: ignore[attr-defined]
    with TestClient(create_app(services=svc)) as c:
        yield c
    svc.close()


def get(client: TestClient, h: float = 30) -> dict[str, Any]:
    r = client.post("/ai/features/get", json={"tenant_id": T, "asset_id": "m1",
                                              "feature_set": "forecast_basic",
                                              "as_of": iso(at(h))})
    assert r.status_code == 200, r.text
    body = r.json()
    body.pop("computed_at")
    return body  # type: ignore[no-any-return]


def ingest(client: TestClient, rows: list[dict[str, Any]]) -> None:
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    assert r.status_code == 200, r.text


def test_get_answers_correctly_with_redis_killed(client: TestClient, own_redis: OwnRedis,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    ingest(client, readings("m1", range(0, 30), lambda h: 10.0 + h))
    cached = get(client)
    assert get(client) == cached
    assert client.get("/ready").json()["status"] in ("ready", "degraded")

    own_redis.kill()
    with caplog.at_level("WARNING", logger="aihub.online.redis"):
        assert get(client) == cached  # computed from PostgreSQL, same answer
    assert any("redis unreachable" in m for m in caplog.messages)
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["online_cache"]["status"] == "unavailable"
    assert "redis" in ready.json()["checks"]["online_cache"]["detail"]
    # Ingest and batch reads keep working too.
    ingest(client, readings("m1", [29], lambda h: 99.0))
    assert get(client)["features"]["lag_1h"] == 99.0
    r = client.post("/ai/features/get-batch", json={"tenant_id": T, "asset_ids": ["m1"],
                                                    "as_of": iso(at(30))})
    assert r.status_code == 200 and r.json()["results"][0]["features"]["lag_1h"] == 99.0


def test_ingest_during_a_partition_is_not_hidden_after_it(
    client: TestClient, proxy: CuttableProxy
) -> None:
    ingest(client, readings("m1", range(0, 30), lambda h: 1.0))
    assert get(client)["features"]["lag_1h"] == 1.0  # now cached in Redis
    proxy.partition()  # Redis keeps the entry, but nothing reaches it
    ingest(client, readings("m1", [29], lambda h: 2.0))  # its invalidation is deferred
    assert get(client)["features"]["lag_1h"] == 2.0
    proxy.heal()
    time.sleep(0.3)  # past the back-off
    # Redis answers again and still holds the old entry: it must not be served.
    assert get(client)["features"]["lag_1h"] == 2.0
    assert client.get("/ready").json()["status"] == "ready"


def _replica(tmp: Path, pg_url: str, redis_url: str, name: str, follow: float) -> TestClient:
    settings = Settings(AIHUB_DATA_DIR=tmp / name, DATABASE_URL=pg_url, REDIS_URL=redis_url,
                        EXPORT_STORAGE_PATH=str(tmp / name / "exports"),
                        AIHUB_CHANGE_FOLLOW_INTERVAL=follow)
    svc = build_services(settings)
    svc.online._conn.pool.connection_kwargs["socket_timeout"] = 0.3  # type: ignore[attr-defined]
    return TestClient(create_app(services=svc))


def stale_drops(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("aihub_online_cache_stale_drops_total "):
            return float(line.split()[1])
    raise AssertionError("aihub_online_cache_stale_drops_total missing from /metrics")


def test_a_write_never_heard_by_redis_is_dropped_by_the_other_replicas(
    tmp_path: Path, pg_url: str, own_redis: OwnRedis, proxy: CuttableProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replica A is cut off from Redis (B is not), ingests, and exits before it can replay
    its invalidation: B finds the write in the change feed, sees it was never heard, and
    drops the stale entry. A write whose invalidation landed costs B nothing."""
    monkeypatch.setattr(redis_store, "BACKOFF_SECONDS", 0.2)
    b = _replica(tmp_path, pg_url, own_redis.url, "b", follow=0)  # followed by hand here
    a = _replica(tmp_path, pg_url, f"redis://127.0.0.1:{proxy.port}/0", "a", follow=0)
    with b:
        features = b.app.state.services.features
        assert features.follow_changes() == 0  # sets where following starts
        ingest(b, readings("m1", range(0, 30), lambda h: 1.0))
        assert features.follow_changes() == 0  # B's own invalidation landed: heard
        assert get(b)["features"]["lag_1h"] == 1.0  # cached in Redis
        with a:
            proxy.partition()
            ingest(a, readings("m1", [29], lambda h: 2.0))  # invalidation deferred...
        # ... and lost with A. Redis still serves the entry from before A's write:
        assert get(b)["features"]["lag_1h"] == 1.0
        drops = stale_drops(b)
        assert features.follow_changes() == 1
        assert get(b)["features"]["lag_1h"] == 2.0
        assert features.follow_changes() == 0
        assert stale_drops(b) == drops + 1  # on /metrics


def test_replicas_follow_the_change_feed_in_the_background(
    tmp_path: Path, pg_url: str, own_redis: OwnRedis, proxy: CuttableProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_store, "BACKOFF_SECONDS", 0.2)
    b = _replica(tmp_path, pg_url, own_redis.url, "b", follow=0.1)
    a = _replica(tmp_path, pg_url, f"redis://127.0.0.1:{proxy.port}/0", "a", follow=0.1)
    with b:
        ingest(b, readings("m1", range(0, 30), lambda h: 1.0))
        assert get(b)["features"]["lag_1h"] == 1.0
        with a:
            proxy.partition()
            ingest(a, readings("m1", [29], lambda h: 3.0))
        deadline = time.monotonic() + 5
        while get(b)["features"]["lag_1h"] != 3.0:
            assert time.monotonic() < deadline, "the stale entry was never dropped"
            time.sleep(0.05)
