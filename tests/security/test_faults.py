"""Faults caused for real, and races: S3 cut away mid-run (503 naming s3, no row pointing
at a missing artifact, nothing half-written); PostgreSQL cut under load and brought back
(in-flight requests fail with a 503 naming postgresql within a bounded time, the same
service recovers without a restart); overlapping concurrent ingests (rollups exact,
last writer wins per reading, no duplicates). Cuts go through ``tests.relay``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import Services, build_services
from tests.conftest import LiveServer
from tests.factories import readings
from tests.registry.models import lightgbm_text, register_body
from tests.relay import CuttableProxy
from tests.security.faults import rollup_mismatches


def _via(url: str, relay: CuttableProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{relay.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2
                                     else host))


def _port(url: str) -> int:
    return urlsplit(url).port or 5432


# -- S3 down ------------------------------------------------------------------------------

@pytest.fixture
def s3_relay(moto_server: str) -> Iterator[CuttableProxy]:
    relay = CuttableProxy(_port(moto_server))
    yield relay
    relay.close()


@pytest.fixture
def s3_client(prod_settings: Settings, s3_relay: CuttableProxy) -> Iterator[TestClient]:
    settings = prod_settings.model_copy(
        update={"minio_endpoint_url": f"http://127.0.0.1:{s3_relay.port}"})
    svc = build_services(settings)
    with TestClient(create_app(services=svc)) as c:
        yield c
    svc.close()


def _multipart(version: str, data: bytes) -> dict[str, Any]:
    import json

    return {"data": {"request": json.dumps(register_body(version))},
            "files": {"artifact": ("model.txt", data, "application/octet-stream")}}


def _assert_503_naming(r: httpx.Response, backend: str) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    body = r.json()
    assert body["error"] == "backend_unavailable" and body["details"]["backend"] == backend
    assert "Traceback" not in r.text


def test_s3_down_register_and_upload_are_503_and_leave_nothing(
    s3_client: TestClient, s3_relay: CuttableProxy, moto_server: str, s3_bucket: str
) -> None:
    model = lightgbm_text()
    r = s3_client.post("/ai/models/register", **_multipart("v1.0.0", model))
    assert r.status_code == 201, r.text
    r = s3_client.post("/ai/models/register", json=register_body("v3.0.0"))
    assert r.status_code == 201, r.text
    bare_id = r.json()["model_id"]

    s3_relay.partition()
    _assert_503_naming(s3_client.post("/ai/models/register", **_multipart("v2.0.0", model)),
                       "s3")
    _assert_503_naming(s3_client.put(f"/ai/models/{bare_id}/artifact", content=model), "s3")
    # No row for the failed registration; the bare version still has no artifact.
    listed = s3_client.get("/ai/models/", params={"tenant_id": "tenant-123"}).json()
    assert sorted(m["version"] for m in listed["models"]) == ["v1.0.0", "v3.0.0"]
    assert s3_client.get(f"/ai/models/{bare_id}").json()["model_size_bytes"] is None

    s3_relay.heal()
    s3 = boto3.client("s3", endpoint_url=moto_server, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    objects = s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    assert len(objects) == 1  # v1's artifact; nothing from the failed calls
    assert not s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
    # Every row that names an artifact can serve it; the failed calls now succeed.
    assert s3_client.put(f"/ai/models/{bare_id}/artifact", content=model).status_code == 200
    assert s3_client.post("/ai/models/register",
                          **_multipart("v2.0.0", model)).status_code == 201
    for m in s3_client.get("/ai/models/", params={"tenant_id": "tenant-123"}).json()["models"]:
        r = s3_client.get(f"/ai/models/{m['model_id']}/artifact")
        assert r.status_code == 200 and r.content == model


def test_s3_down_during_a_delete_answers_200_and_the_sweep_removes_the_object_later(
    s3_client: TestClient, s3_relay: CuttableProxy, moto_server: str, s3_bucket: str
) -> None:
    from datetime import timedelta

    from aihub.timeutil import utcnow

    r = s3_client.post("/ai/models/register", **_multipart("v1.0.0", lightgbm_text()))
    assert r.status_code == 201, r.text
    model_id = r.json()["model_id"]
    s3 = boto3.client("s3", endpoint_url=moto_server, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    [obj] = s3.list_objects_v2(Bucket=s3_bucket)["Contents"]

    s3_relay.partition()
    r = s3_client.delete(f"/ai/models/{model_id}")
    assert r.status_code == 200, r.text  # the row is gone: the delete stands
    assert r.json()["artifact_removed"] is False
    assert s3_client.get(f"/ai/models/{model_id}").status_code == 404
    s3_relay.heal()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]] == [obj["Key"]]

    services = s3_client.app.state.services  # type: ignore[attr-defined]
    assert services.model_artifacts.sweep().removed == []  # younger than an hour
    report = services.model_artifacts.sweep(now=utcnow() + timedelta(hours=2))
    assert report.removed == [obj["Key"]]
    assert not s3.list_objects_v2(Bucket=s3_bucket).get("Contents")


def test_s3_cut_mid_multipart_upload_leaves_no_object_and_no_row(
    prod_settings: Settings, s3_relay: CuttableProxy, moto_server: str, s3_bucket: str
) -> None:
    from aihub.errors import BackendUnavailable
    from aihub.services.registry import RegisterRequest
    from aihub.stores.artifacts.s3 import PART_SIZE

    settings = prod_settings.model_copy(
        update={"minio_endpoint_url": f"http://127.0.0.1:{s3_relay.port}"})
    svc = build_services(settings)
    try:
        def body() -> Iterator[bytes]:
            yield lightgbm_text()
            yield b"\n" * PART_SIZE  # the first part goes up once this is buffered
            yield b"\n" * 1024
            s3_relay.partition()  # the cable is pulled before the last part
            yield b"\n" * 1024

        req = RegisterRequest(tenant_id="tenant-123", model_name="big", version="v1.0.0",
                              metadata={"framework": "lightgbm"}, metrics={}, stage="staging")
        with pytest.raises(BackendUnavailable) as info:
            svc.model_artifacts.register_with_artifact(req, body())
        assert info.value.backend == "s3"
        s3_relay.heal()
        s3 = boto3.client("s3", endpoint_url=moto_server, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
        assert not s3.list_objects_v2(Bucket=s3_bucket).get("Contents")
        with svc.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM model_versions")).scalar() == 0
    finally:
        svc.close()


# -- PostgreSQL cut under load ------------------------------------------------------------

@pytest.fixture
def pg_relay(pg_url: str) -> Iterator[CuttableProxy]:
    relay = CuttableProxy(_port(pg_url))
    yield relay
    relay.close()


def test_postgres_cut_under_load_fails_cleanly_and_recovers_without_restart(
    prod_settings: Settings, pg_url: str, pg_relay: CuttableProxy
) -> None:
    settings = prod_settings.model_copy(update={"database_url": _via(pg_url, pg_relay)})
    svc = build_services(settings)
    results: list[tuple[float, str, int, float, str]] = []
    stop = threading.Event()

    def load(n: int, url: str) -> None:
        ops: list[tuple[str, str, str, Any]] = [
            ("ingest", "POST", "/ai/features/ingest",
             {"tenant_id": "t", "readings": readings(f"m{n}", range(300),
                                                     value=lambda h: h * 1.5 + n)}),
            ("online", "POST", "/ai/features/get", {"tenant_id": "t", "asset_id": "m0"}),
            ("assets", "GET", "/ai/assets?tenant_id=t", None),
            ("models", "GET", "/ai/models/?tenant_id=t", None),
        ]
        with httpx.Client(base_url=url, timeout=30) as http:
            i = n
            while not stop.is_set():
                name, method, path, body = ops[i % len(ops)]
                i += 1
                t0 = time.monotonic()
                r = http.request(method, path, json=body)
                results.append((t0, name, r.status_code, time.monotonic() - t0, r.text[:300]))

    try:
        with LiveServer(create_app(services=svc)) as server:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                r = http.post("/ai/features/ingest",
                              json={"tenant_id": "t", "readings": readings("m0", range(48))})
                assert r.status_code == 200, r.text
            threads = [threading.Thread(target=load, args=(n, server.url)) for n in range(6)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            cut_at = time.monotonic()
            pg_relay.partition()
            time.sleep(1.5)
            pg_relay.heal()
            healed_at = time.monotonic()
            time.sleep(3.0)
            stop.set()
            for t in threads:
                t.join(timeout=60)
            assert not any(t.is_alive() for t in threads), "a request hung"
            with httpx.Client(base_url=server.url, timeout=30) as http:
                assert http.get("/ready").status_code == 200
    finally:
        svc.close()

    statuses = {s for _, _, s, _, _ in results}
    assert statuses <= {200, 503}, [(n, s, b) for _, n, s, _, b in results if s not in (200, 503)]
    failed = [(t0, body) for t0, _, s, _, body in results if s == 503]
    assert failed, "the cut failed no request: the relay did not cut"
    assert all('"backend":"postgresql"' in b.replace(" ", "") for _, b in failed), failed[:3]
    assert max(d for *_, d, _ in results) < 10, "a request took longer than the bound"
    before = [s for t0, _, s, d, _ in results if t0 + d < cut_at]  # done before the cut
    assert before and set(before) == {200}
    # Recovered without a restart: every request started a moment after the heal succeeds.
    after = [(n, s) for t0, n, s, _, _ in results if t0 > healed_at + 0.5]
    assert len(after) > 20 and {s for _, s in after} == {200}, after[:10]


# -- overlapping ingests ------------------------------------------------------------------

CLIENTS, BATCHES, ASSETS, HOURS = 4, 4, ("m1", "m2"), 12


def _batch(client: int, batch: int) -> tuple[int, list[dict[str, Any]]]:
    """The same 15-minute grid for every batch, plus the client's own points a few
    minutes past each hour; each value encodes its batch id and point index."""
    ident = client * 100 + batch + 1
    rows: list[dict[str, Any]] = []
    for asset in ASSETS:
        rows += readings(asset, [q / 4 for q in range(HOURS * 4)])
        rows += readings(asset, [h + (client + 1) / 60 for h in range(HOURS)])
    for k, row in enumerate(rows):
        row["value"] = float(ident * 10_000 + k)
    return ident, rows


@pytest.mark.backends
def test_overlapping_concurrent_ingests(services: Services, http: httpx.Client) -> None:
    base_url = str(http.base_url)

    def run(client: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as c:
            for batch in range(BATCHES):
                _, rows = _batch(client, batch)
                r = c.post("/ai/features/ingest", json={"tenant_id": "t", "readings": rows})
                assert r.status_code == 200, r.text

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(run, range(CLIENTS)))

    assert rollup_mismatches(services.engine) == 0
    with services.engine.connect() as conn:
        dups = conn.execute(sa.text("SELECT count(*) FROM (SELECT asset_key, ts FROM readings "
                                    "GROUP BY asset_key, ts HAVING count(*) > 1) d")).scalar()
        stored = conn.execute(sa.text(
            "SELECT a.asset_id, r.ts, r.value FROM readings r "
            "JOIN assets a ON a.asset_key = r.asset_key")).all()
    assert dups == 0
    grid = len(ASSETS) * HOURS * 4
    assert len(stored) == grid + CLIENTS * len(ASSETS) * HOURS
    by_minute: dict[int, set[int]] = {}
    for _, ts, value in stored:
        by_minute.setdefault(int(ts) // 60_000_000 % 60, set()).add(int(value) // 10_000)
    # The grid comes whole from one batch, the last committed, which is some client's last.
    grid_ids = set().union(*(by_minute[m] for m in (0, 15, 30, 45)))
    assert len(grid_ids) == 1 and (grid_ids.pop() - 1) % 100 == BATCHES - 1
    # Each client's own points hold the value of its final batch (it sent them in order).
    for client in range(CLIENTS):
        assert by_minute[client + 1] == {client * 100 + BATCHES}
