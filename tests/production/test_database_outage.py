"""PostgreSQL becoming unreachable while a replica runs (a partition staged with a relay
the test cuts): requests that need it answer 503 naming the database, /ready says
unavailable (503), /health and cached online features keep answering without waiting on
it, and service resumes once the database is reachable again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import build_services
from tests.conftest import REDIS_TEST_URL, LiveServer
from tests.factories import at, iso, readings
from tests.registry.models import register_body
from tests.relay import CuttableProxy
from tests.responsiveness import assert_responsive, probe


@pytest.fixture
def relay(pg_url: str) -> Iterator[tuple[CuttableProxy, str]]:
    parts = urlsplit(pg_url)
    proxy = CuttableProxy(parts.port or 5432)
    yield proxy, pg_url.replace(f":{parts.port}/", f":{proxy.port}/", 1)
    proxy.close()


def test_database_partition_is_503_then_recovers(
    relay: tuple[CuttableProxy, str], tmp_path: Path
) -> None:
    proxy, url = relay
    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path, DATABASE_URL=url))
    body = {"tenant_id": "t", "asset_id": "m1", "feature_set": "forecast_basic",
            "as_of": iso(at(30))}
    with TestClient(create_app(services=svc)) as c:
        assert c.post("/ai/features/ingest", json={
            "tenant_id": "t", "readings": readings("m1", range(30))}).status_code == 200
        proxy.partition()
        svc.engine.pool.dispose()  # drop pooled connections, as a real partition would
        r = c.post("/ai/features/ingest", json={"tenant_id": "t",
                                                "readings": readings("m1", [30])})
        assert r.status_code == 503, r.text
        assert r.json()["details"]["backend"] in ("postgresql", "database")
        assert c.post("/ai/features/get", json=body).status_code == 503
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "unavailable"
        proxy.heal()
        assert c.post("/ai/features/get", json=body).status_code == 200
        assert c.get("/ready").status_code == 200
    svc.close()


@pytest.mark.parametrize("cache", ["in-process", "redis"])
def test_a_database_cut_stalls_nothing_that_does_not_need_it(
    relay: tuple[CuttableProxy, str], tmp_path: Path, redis_prefix: str, cache: str
) -> None:
    """PostgreSQL cut away through the relay: requests that need it answer 503 naming it;
    /health answers within 50 ms and a hot cached get keeps answering, from the in-process
    cache as from Redis (the change feed is followed off the request path)."""
    proxy, url = relay
    extra = {"REDIS_URL": REDIS_TEST_URL, "AIHUB_REDIS_PREFIX": redis_prefix} \
        if cache == "redis" else {}
    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path, DATABASE_URL=url,
                                  AIHUB_DB_POOL_TIMEOUT=3, **extra))  # type: ignore[arg-type]
    body = {"tenant_id": "t", "asset_id": "m1", "feature_set": "forecast_basic",
            "as_of": iso(at(30))}
    try:
        with LiveServer(create_app(services=svc)) as server, \
                httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.post("/ai/features/ingest", json={
                "tenant_id": "t", "readings": readings("m1", range(30))}).status_code == 200
            assert http.post("/ai/features/get", json=body).status_code == 200  # cached
            model_id = http.post("/ai/models/register",
                                 json=register_body()).json()["model_id"]
            proxy.partition()
            svc.engine.pool.dispose()  # drop pooled connections, as a real partition would
            failing: list[httpx.Response] = []

            def need_the_database() -> None:
                with httpx.Client(base_url=server.url, timeout=60) as c:
                    for n in range(4):
                        failing.append(c.get(f"/ai/models/{model_id}"))
                        failing.append(c.post("/ai/features/ingest", json={
                            "tenant_id": "t", "readings": readings("m1", [40 + n])}))

            worker = threading.Thread(target=need_the_database)
            worker.start()
            assert_responsive(probe(server.url, body, samples=25))
            worker.join(timeout=120)
            assert len(failing) == 8
            for r in failing:
                assert r.status_code == 503, (r.status_code, r.text[:300])
                assert r.json()["details"]["backend"] == "postgresql"
                assert "127.0.0.1" not in r.text  # the driver's text stays in the log
            proxy.heal()
            assert http.get(f"/ai/models/{model_id}").status_code == 200
            assert http.post("/ai/features/get", json=body).status_code == 200
    finally:
        svc.close()


def test_key_check_with_the_database_cut_is_503_naming_it(
    relay: tuple[CuttableProxy, str], tmp_path: Path
) -> None:
    proxy, url = relay
    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path, DATABASE_URL=url))
    _, known = svc.api_keys.create(["t"], "write")
    _, unseen = svc.api_keys.create(["t"], "read")
    svc.key_cache.clear()
    auth = {"Authorization": f"Bearer {known}"}
    body = {"tenant_id": "t", "asset_id": "m1", "feature_set": "forecast_basic",
            "as_of": iso(at(30))}
    try:
        with LiveServer(create_app(services=svc)) as server, \
                httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.post("/ai/features/ingest", headers=auth, json={
                "tenant_id": "t", "readings": readings("m1", range(30))}).status_code == 200
            assert http.post("/ai/features/get", json=body, headers=auth).status_code == 200
            proxy.partition()
            svc.engine.pool.dispose()
            r = http.get("/ai/features/catalog", headers={"Authorization": f"Bearer {unseen}"})
            assert r.status_code == 503, r.text  # was a 500
            assert r.json()["details"]["backend"] == "postgresql"
            assert_responsive(probe(server.url, body, samples=10, headers=auth))
            proxy.heal()
            r = http.get("/ai/features/catalog", headers={"Authorization": f"Bearer {unseen}"})
            assert r.status_code == 200, r.text
    finally:
        svc.close()
