"""Two ``aihub serve`` processes on different ports sharing PostgreSQL, Redis and S3: what
one writes, the other serves. Register, upload and promote through A; read, download and
predict through B; an ingest through A invalidates the online features B serves. B runs
two workers, and its /metrics aggregates both."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_TEST_URL, free_port
from tests.factories import at, iso, readings
from tests.registry.models import FEATURES, lightgbm_text, register_body

AIHUB = str(Path(sys.executable).parent / "aihub")
T = "tenant-123"


class Replica:
    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [AIHUB, "serve", "--port", str(self.port), "--workers", str(workers),
             "--log-level", "warning"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180  # a loaded machine starts two servers slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"aihub serve exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("aihub serve did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str, redis_prefix: str, moto_server: str,
             s3_bucket: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIHUB_", "PROMETHEUS_"))}
    shared = {
        "DATABASE_URL": pg_url, "REDIS_URL": REDIS_TEST_URL, "AIHUB_REDIS_PREFIX": redis_prefix,
        "MINIO_ENDPOINT_URL": moto_server, "MINIO_ACCESS_KEY": "testing",
        "MINIO_SECRET_KEY": "testing", "MODEL_STORAGE_BUCKET": s3_bucket,
        "FEATURE_CACHE_TTL": "300",
    }
    started = []
    for name, workers in (("a", 1), ("b", 2)):
        env = {**base, **shared, "AIHUB_DATA_DIR": str(tmp_path / name),
               "EXPORT_STORAGE_PATH": str(tmp_path / name / "exports")}
        started.append(Replica(env, workers, tmp_path / f"{name}.log"))
    try:
        for r in started:
            r.wait_ready()
        with httpx.Client(base_url=started[0].url, timeout=30) as a, \
                httpx.Client(base_url=started[1].url, timeout=30) as b:
            yield a, b
    finally:
        for r in started:
            r.stop()


def test_register_on_one_replica_predict_on_the_other(
    replicas: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = replicas
    r = a.post("/ai/models/register", json=register_body("v1.0.0"))
    assert r.status_code == 201, r.text
    model_id = r.json()["model_id"]
    artifact = lightgbm_text()
    up = a.put(f"/ai/models/{model_id}/artifact", content=artifact)
    assert up.status_code == 200, up.text
    r = a.put(f"/ai/models/{model_id}/promote",
              json={"target_stage": "production", "reason": "shared-backend test"})
    assert r.status_code == 200, r.text

    seen = b.get(f"/ai/models/{model_id}")
    assert seen.status_code == 200 and seen.json()["stage"] == "production"
    listed = b.get("/ai/models/", params={"tenant_id": T, "stage": "production"}).json()
    assert [m["model_id"] for m in listed["models"]] == [model_id]
    assert b.get(f"/ai/models/{model_id}/artifact").content == artifact
    rows = [{"hour_of_day": 12, "lag_24h": 40.0, "rolling_24h_avg": 41.0},
            {"hour_of_day": 3, "lag_24h": 30.0, "rolling_24h_avg": 31.0}]
    assert set(rows[0]) == set(FEATURES)
    pa = a.post(f"/ai/models/{model_id}/predict", json={"rows": rows})
    pb = b.post(f"/ai/models/{model_id}/predict", json={"rows": rows})
    assert pb.status_code == 200, pb.text
    assert pb.json()["predictions"] == pa.json()["predictions"]
    assert len(pb.json()["predictions"]) == 2


def test_ingest_through_one_invalidates_features_served_by_the_other(
    replicas: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = replicas
    body = {"tenant_id": T, "asset_id": "m1", "feature_set": "forecast_basic",
            "as_of": iso(at(30))}
    assert a.post("/ai/features/ingest", json={
        "tenant_id": T, "readings": readings("m1", range(30), lambda h: 1.0)}).status_code == 200
    for _ in range(4):  # several requests: both of B's workers fill or hit the shared cache
        assert b.post("/ai/features/get", json=body).json()["features"]["lag_1h"] == 1.0
    assert a.post("/ai/features/ingest", json={
        "tenant_id": T, "readings": readings("m1", [29], lambda h: 7.0)}).status_code == 200
    for _ in range(4):
        assert b.post("/ai/features/get", json=body).json()["features"]["lag_1h"] == 7.0
    # B's /metrics aggregates its two workers: all eight gets are counted.
    text = b.get("/metrics").text
    line = next(ln for ln in text.splitlines() if ln.startswith("aihub_http_requests_total")
                and 'route="/ai/features/get"' in ln and 'status="200"' in ln)
    assert float(line.rsplit(" ", 1)[1]) == 8
