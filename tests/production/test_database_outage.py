"""PostgreSQL becoming unreachable while a replica runs (a partition staged with a relay
the test cuts): requests answer 503 naming the database, /ready says unavailable (503),
and service resumes once the database is reachable again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import build_services
from tests.factories import at, iso, readings
from tests.relay import CuttableProxy


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
