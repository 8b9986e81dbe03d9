"""The quick-start's feature-store examples, run as written over real HTTP against a real
``aihub serve --demo`` process (embedded default, data and exports in a temporary dir):
the online ``get``, the Parquet export (read back with pyarrow), ``GET /ai/features/sets``,
and ``/docs`` + ``/openapi.json`` listing every feature-store endpoint with examples."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pyarrow.parquet as pq
import pytest

from tests.conftest import free_port
from tests.factories import iso, readings

AIHUB = str(Path(sys.executable).parent / "aihub")

# Verbatim from SEED-quickstart.md, "API Examples" > "Feature Store".
CURL_GET = """curl -X POST http://localhost:8003/ai/features/get \\
  -H "Content-Type: application/json" \\
  -d '{
    "tenant_id": "tenant-123",
    "asset_id": "meter-001",
    "feature_set": "forecast_basic",
    "lookback_hours": 168
  }'"""
CURL_EXPORT = """curl -X POST http://localhost:8003/ai/features/export \\
  -H "Content-Type: application/json" \\
  -d '{
    "tenant_id": "tenant-123",
    "feature_set": "forecast_basic",
    "start_time": "2024-01-01T00:00:00Z",
    "end_time": "2024-12-31T23:59:59Z",
    "asset_ids": ["meter-001", "meter-002", "meter-003"]
  }'"""
CURL_SETS = "curl http://localhost:8003/ai/features/sets"

FORECAST_BASIC = ["hour_of_day", "day_of_week", "is_weekend", "hourly_avg", "hourly_std",
                  "lag_1h", "lag_24h", "lag_168h", "rolling_24h_avg", "rolling_24h_std"]
DEC_2024 = datetime(2024, 12, 1, tzinfo=UTC)


class Server:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.exports = root / "exports"
        self.env = {**os.environ, "AIHUB_DATA_DIR": str(root / "data"),
                    "EXPORT_STORAGE_PATH": str(self.exports), "FEATURE_CACHE_TTL": "300"}
        for var in ("DATABASE_URL", "REDIS_URL", "MINIO_ENDPOINT_URL"):
            self.env.pop(var, None)  # the embedded default, whatever the caller's shell has
        self.log = root / "serve.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [AIHUB, "serve", "--demo", "--port", str(self.port), "--log-level", "warning"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
            )

    def wait(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"aihub serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"aihub serve did not start: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("quickstart"))
    try:
        s.wait()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def dec_2024(server: Server) -> dict[str, dict[datetime, float]]:
    """December 2024 readings for meter-001..003 (the quick-start's export range), sent over
    HTTP; meter-002 has a 2-day gap. Returns what was sent, per meter and hour."""
    sent: dict[str, dict[datetime, float]] = {}
    rows = []
    for i, meter in enumerate(["meter-001", "meter-002", "meter-003"]):
        hours = [h for h in range(31 * 24) if not (meter == "meter-002" and 100 <= h < 148)]
        part = readings(meter, hours, lambda h, i=i: 10.0 * (i + 1) + (h % 24) + h / 1000,
                        base=DEC_2024)
        sent[meter] = {DEC_2024 + timedelta(hours=h): r["value"] for h, r in zip(hours, part,
                                                                                  strict=True)}
        rows += part
    r = httpx.post(f"{server.url}/ai/features/ingest",
                   json={"tenant_id": "tenant-123", "readings": rows}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(rows)
    return sent


def run_curl(command: str, url: str) -> httpx.Response:
    """Execute a quick-start curl command with httpx, pointed at ``url``."""
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "curl"
    method, headers, data, target = "GET", {}, None, None
    i = 1
    while i < len(words):
        w = words[i]
        if w == "-X":
            method, i = words[i + 1], i + 2
        elif w == "-H":
            k, v = words[i + 1].split(":", 1)
            headers[k.strip()], i = v.strip(), i + 2
        elif w == "-d":
            data, i = words[i + 1], i + 2
            method = "POST" if method == "GET" else method
        else:
            target, i = w, i + 1
    assert target is not None and target.startswith("http://localhost:8003/")
    return httpx.request(method, target.replace("http://localhost:8003", url),
                         headers=headers, content=data, timeout=60)


def test_curl_get_features_answers_at_once_with_demo_data(server: Server) -> None:
    r = run_curl(CURL_GET, server.url)
    assert r.status_code == 200, r.text
    body = r.json()
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert body["tenant_id"] == "tenant-123" and body["asset_id"] == "meter-001"
    assert body["timestamp"] in (iso(now_hour), iso(now_hour + timedelta(hours=1)))
    assert list(body["features"]) == FORECAST_BASIC
    assert body["feature_count"] == 10
    assert datetime.fromisoformat(body["computed_at"].replace("Z", "+00:00")) <= datetime.now(UTC)
    features = body["features"]
    # The demo runs up to the current hour: history features are real numbers, not nulls.
    for name in ("lag_24h", "lag_168h", "rolling_24h_avg", "rolling_24h_std", "hourly_avg"):
        assert isinstance(features[name], float), (name, features[name])
    # Calendar features in the demo meters' local time (Europe/Berlin).
    local = now_hour.astimezone(ZoneInfo("Europe/Berlin"))
    if body["timestamp"] == iso(now_hour):
        assert features["hour_of_day"] == local.hour
        assert features["day_of_week"] == local.weekday()


def test_curl_export_writes_a_parquet_file(server: Server,
                                           dec_2024: dict[str, dict[datetime, float]]) -> None:
    r = run_curl(CURL_EXPORT, server.url)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"export_id", "tenant_id", "feature_set", "status", "storage_path", "row_count",
            "file_size_bytes", "file_size_mb", "message"} <= set(body)
    assert body["status"] == "completed" and body["tenant_id"] == "tenant-123"
    path = Path(body["storage_path"])
    assert path.resolve().parent == server.exports.resolve()
    assert path.stat().st_size == body["file_size_bytes"]
    assert body["file_size_mb"] == pytest.approx(body["file_size_bytes"] / 2**20, abs=1e-3)

    table = pq.read_table(path)
    expected_rows = sum(len(hours) for hours in dec_2024.values())
    assert body["row_count"] == table.num_rows == expected_rows
    assert table.column_names == ["tenant_id", "asset_id", "timestamp", *FORECAST_BASIC, "target"]
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    meta = pq.ParquetFile(path).metadata
    assert {meta.row_group(g).column(c).compression for g in range(meta.num_row_groups)
            for c in range(meta.num_columns)} == {"ZSTD"}
    for row in table.to_pylist():
        assert row["target"] == dec_2024[row["asset_id"]][row["timestamp"]]
        want_lag = dec_2024[row["asset_id"]].get(row["timestamp"] - timedelta(hours=24))
        assert row["lag_24h"] == want_lag

    # Recorded and listed, newest first; the record matches the response.
    listed = httpx.get(f"{server.url}/ai/features/exports",
                       params={"tenant_id": "tenant-123"}).json()
    assert listed["total"] >= 1 and listed["exports"][0]["export_id"] == body["export_id"]
    one = httpx.get(f"{server.url}/ai/features/exports/{body['export_id']}").json()
    assert one["row_count"] == body["row_count"] and one["storage_path"] == body["storage_path"]

    # Over the wire as well: the online row at H equals the export row at H.
    for row in table.to_pylist()[:: max(1, table.num_rows // 10)]:
        got = httpx.post(f"{server.url}/ai/features/get", json={
            "tenant_id": "tenant-123", "asset_id": row["asset_id"],
            "feature_set": "forecast_basic", "as_of": iso(row["timestamp"]),
        }).json()
        assert got["features"] == {f: row[f] for f in FORECAST_BASIC}


def test_curl_feature_sets_shape(server: Server) -> None:
    r = run_curl(CURL_SETS, server.url)
    assert r.status_code == 200
    sets = r.json()["feature_sets"]
    assert {"forecast_basic", "forecast_advanced", "anomaly_detection"} <= set(sets)
    for name, s in sets.items():
        assert s["name"] == name
        assert isinstance(s["description"], str) and s["description"]
        assert isinstance(s["features"], list) and s["features"]
        assert isinstance(s["use_cases"], list) and s["use_cases"]
        assert isinstance(s["latency"], str) and s["latency"]
        assert isinstance(s["storage"], str) and s["storage"]
    assert sets["forecast_basic"]["features"] == FORECAST_BASIC
    assert sets["forecast_advanced"]["features"] == [*FORECAST_BASIC, "temperature",
                                                     "humidity", "is_holiday"]
    assert len(sets["anomaly_detection"]["features"]) == 7


FEATURE_STORE_ENDPOINTS = [
    ("post", "/ai/features/get"), ("post", "/ai/features/get-batch"),
    ("post", "/ai/features/export"), ("get", "/ai/features/exports"),
    ("get", "/ai/features/exports/{export_id}"), ("get", "/ai/features/sets"),
    ("post", "/ai/features/sets"), ("get", "/ai/features/catalog"),
    ("get", "/ai/features/status"), ("post", "/ai/features/ingest"),
    ("post", "/ai/features/weather"), ("put", "/ai/assets/{asset_id}"),
    ("get", "/ai/assets/{asset_id}"), ("get", "/ai/assets"), ("get", "/health"),
]


def _has_example(spec: dict[str, Any], node: Any) -> bool:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _has_example(spec, spec["components"]["schemas"][name])
        if node.get("example") is not None or node.get("examples"):
            return True
        return any(_has_example(spec, v) for k, v in node.items() if k in ("schema", "content",
                                                                              "application/json"))
    return False


def test_docs_and_openapi_list_every_endpoint_with_examples(server: Server) -> None:
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for method, path in FEATURE_STORE_ENDPOINTS:
        op = spec["paths"].get(path, {}).get(method)
        assert op is not None, f"{method.upper()} {path} missing from /openapi.json"
        assert op.get("summary"), f"{method.upper()} {path} has no summary"
        if "requestBody" in op:
            assert _has_example(spec, op["requestBody"]), f"{method.upper()} {path}: no example"
