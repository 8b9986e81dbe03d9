"""/metrics in Prometheus format, and exports to ``EXPORT_STORAGE_PATH=s3://bucket/prefix``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import polars as pl
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import build_services
from tests.factories import at, iso, readings

T = "tenant-ops"


def sample(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@pytest.fixture
def s3_client(tmp_path: Path, moto_server: str, s3_bucket: str) -> Iterator[TestClient]:
    settings = Settings(AIHUB_DATA_DIR=tmp_path / "data", MINIO_ENDPOINT_URL=moto_server,
                        MINIO_ACCESS_KEY="testing", MINIO_SECRET_KEY="testing",
                        MODEL_STORAGE_BUCKET=s3_bucket + "-models",
                        EXPORT_STORAGE_PATH=f"s3://{s3_bucket}/feature-exports/daily")
    svc = build_services(settings)
    with TestClient(create_app(services=svc)) as c:
        yield c
    svc.close()


@pytest.mark.backends
def test_metrics_count_requests_cache_ingest_and_exports(client: TestClient) -> None:
    route = "/ai/features/get"

    def m(name: str, **labels: str) -> float:
        return sample(client, name, **labels)

    before = {
        "req": m("aihub_http_requests_total", route=route, status="200"),
        "lat": m("aihub_http_request_duration_seconds_count", route=route),
        "hit": m("aihub_online_cache_lookups_total", result="hit"),
        "miss": m("aihub_online_cache_lookups_total", result="miss"),
        "rows": m("aihub_ingest_rows_total", kind="readings"),
        "exp": m("aihub_export_duration_seconds_count", status="completed"),
    }
    r = client.post("/ai/features/ingest", json={"tenant_id": T,
                                                 "readings": readings("m1", range(30))})
    assert r.status_code == 200
    body = {"tenant_id": T, "asset_id": "m1", "feature_set": "forecast_basic",
            "as_of": iso(at(30))}
    for _ in range(3):
        assert client.post(route, json=body).status_code == 200
    r = client.post("/ai/features/export", json={"tenant_id": T, "feature_set": "forecast_basic",
                                                 "start_time": iso(at(0)), "end_time": iso(at(30))})
    assert r.status_code == 200, r.text
    assert client.post(route, json={**body, "asset_id": "nope"}).status_code == 404

    assert m("aihub_http_requests_total", route=route, status="200") == before["req"] + 3
    assert m("aihub_http_requests_total", route=route, status="404") >= 1
    assert m("aihub_http_request_duration_seconds_count", route=route) == before["lat"] + 4
    assert m("aihub_online_cache_lookups_total", result="hit") == before["hit"] + 2
    assert m("aihub_online_cache_lookups_total", result="miss") == before["miss"] + 2
    assert m("aihub_ingest_rows_total", kind="readings") == before["rows"] + 30
    assert m("aihub_export_duration_seconds_count", status="completed") == before["exp"] + 1
    assert "aihub_model_cache_lookups" in client.get("/metrics").text


def test_unmatched_paths_share_one_label(client: TestClient) -> None:
    client.get("/no/such/path/123")
    client.get("/no/such/path/456")
    text = client.get("/metrics").text
    assert "/no/such/path" not in text
    assert 'route="unmatched"' in text


def test_unknown_methods_share_one_label(client: TestClient) -> None:
    before = sample(client, "aihub_http_requests_total", method="OTHER")
    for method in ("FOO", "BREW", "PROPFIND", "X" * 40):
        assert client.request(method, "/ai/models/").status_code in (404, 405)
    text = client.get("/metrics").text
    assert sample(client, "aihub_http_requests_total", method="OTHER") == before + 4
    for method in ("FOO", "BREW", "PROPFIND", "X" * 40):
        assert f'method="{method}"' not in text
    assert client.request("DELETE", "/no/such/path").status_code == 404
    assert sample(client, "aihub_http_requests_total", method="DELETE",
                  route="unmatched") >= 1


def test_export_to_s3_records_the_s3_path(s3_client: TestClient, moto_server: str,
                                          s3_bucket: str, tmp_path: Path) -> None:
    r = s3_client.post("/ai/features/ingest", json={"tenant_id": T,
                                                    "readings": readings("m1", range(48))})
    assert r.status_code == 200
    r = s3_client.post("/ai/features/export", json={
        "tenant_id": T, "feature_set": "forecast_basic",
        "start_time": iso(at(0)), "end_time": iso(at(48))})
    assert r.status_code == 200, r.text
    record = r.json()
    path = record["storage_path"]
    assert path.startswith(f"s3://{s3_bucket}/feature-exports/daily/")
    assert path.endswith(".parquet")
    listed = s3_client.get(f"/ai/features/exports/{record['export_id']}").json()
    assert listed["storage_path"] == path
    s3 = boto3.client("s3", endpoint_url=moto_server, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    key = path.split("/", 3)[3]
    data = s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert len(data) == record["file_size_bytes"]
    frame = pl.read_parquet(io.BytesIO(data))
    assert frame.height == record["row_count"] == 48
    staging = tmp_path / "data" / "exports-staging"
    assert not any(staging.iterdir())  # nothing left behind locally


def test_export_to_unreachable_s3_is_503_and_recorded_failed(tmp_path: Path) -> None:
    from tests.conftest import free_port

    settings = Settings(AIHUB_DATA_DIR=tmp_path / "data",
                        MINIO_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
                        MINIO_ACCESS_KEY="x", MINIO_SECRET_KEY="x",
                        EXPORT_STORAGE_PATH="s3://exports-bucket/p")
    svc = build_services(settings)
    with TestClient(create_app(services=svc)) as c:
        c.post("/ai/features/ingest", json={"tenant_id": T, "readings": readings("m1", range(5))})
        r = c.post("/ai/features/export", json={"tenant_id": T, "feature_set": "forecast_basic",
                                                "start_time": iso(at(0)), "end_time": iso(at(5))})
        assert r.status_code == 503
        assert r.json()["details"]["backend"] == "s3"
        listed = c.get("/ai/features/exports", params={"tenant_id": T}).json()["exports"]
        assert [e["status"] for e in listed] == ["failed"]
    svc.close()


@pytest.mark.backends
def test_metrics_count_model_cache_hits_and_misses(client: TestClient) -> None:
    from tests.registry.models import lightgbm_text, register_body

    def m(result: str) -> float:
        return sample(client, "aihub_model_cache_lookups_total", result=result)

    model_id = client.post("/ai/models/register", json=register_body("v1.0.0")).json()["model_id"]
    assert client.put(f"/ai/models/{model_id}/artifact", content=lightgbm_text()).status_code == 200
    hits, misses = m("hit"), m("miss")
    rows = [{"hour_of_day": 1, "lag_24h": 40.0, "rolling_24h_avg": 41.0}]
    for _ in range(3):
        assert client.post(f"/ai/models/{model_id}/predict", json={"rows": rows}).status_code == 200
    assert m("miss") == misses + 1
    assert m("hit") >= hits + 2
