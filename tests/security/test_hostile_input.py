"""Hostile input: traversal in every encoding, oversized bodies and JSON, bad numbers and
timestamps, dangerous model files. Always a clear 4xx, never a 5xx or a trace, nothing
stored, nothing written outside the data directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from aihub.services.container import Services
from tests.factories import readings
from tests.registry.models import lightgbm_text, register_body

TRAVERSAL = [
    "../etc/passwd", "..\\..\\windows", "%2e%2e%2fetc", "%252e%252e%252f", "/etc/passwd",
    "C:\\evil", "file:///etc/passwd", "s3://other-bucket/key", "a\x00b", "x" * 129,
    "\u2025etc", "\uff0e\uff0e\u2215etc", "a/b", "..", "", " ", "a..b", "-lead",
    "tenant\u200b", "\u0430dmin",  # Cyrillic a
]


def assert_clean_4xx(r: Any, allowed: tuple[int, ...] = (404, 422)) -> None:
    assert r.status_code in allowed, (r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text
    assert r.json()["error"]


@pytest.fixture
def sandbox(services: Services, tmp_path: Path) -> Path:
    """Files present before the attack; the test checks nothing new appears outside."""
    return tmp_path


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("bad", TRAVERSAL)
def test_traversal_never_reaches_a_path_key_or_query(client: TestClient, services: Services,
                                                     sandbox: Path, bad: str) -> None:
    before = files_under(sandbox.parent)
    enc = quote(bad, safe="")  # the server decodes it back to ``bad`` exactly
    attempts = [
        ("POST", "/ai/features/ingest", {"json": {"tenant_id": bad,
                                                  "readings": readings("m1", [1])}}),
        ("POST", "/ai/features/ingest", {"json": {"tenant_id": "t",
                                                  "readings": readings(bad, [1])}}),
        ("POST", "/ai/features/get", {"json": {"tenant_id": "t", "asset_id": bad}}),
        ("POST", "/ai/features/get", {"json": {"tenant_id": "t", "asset_id": "m1",
                                               "feature_set": bad}}),
        ("PUT", f"/ai/assets/{enc}?tenant_id=t", {"json": {"timezone": "UTC"}}),
        ("GET", "/ai/assets", {"params": {"tenant_id": bad}}),
        ("POST", "/ai/models/register", {"json": {**register_body(), "tenant_id": bad}}),
        ("POST", "/ai/models/register", {"json": {**register_body(), "model_name": bad}}),
        ("POST", "/ai/models/register", {"json": {**register_body(), "version": bad}}),
        ("GET", f"/ai/models/{enc}", {}),
        ("GET", f"/ai/models/t:{enc}:v1.0.0", {}),
        ("PUT", f"/ai/models/t:m:{enc}/artifact", {"content": b"x"}),
        ("GET", f"/ai/models/{enc}:m:v1.0.0/artifact", {}),
        ("GET", f"/ai/features/exports/{enc}", {}),
        ("POST", "/ai/features/export", {"json": {
            "tenant_id": bad, "feature_set": "forecast_basic",
            "start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-02T00:00:00Z"}}),
    ]
    for method, path, kw in attempts:
        if bad == "" and method == "GET" and path.endswith("/"):
            continue
        r = client.request(method, path, **kw)
        if r.status_code == 405 or (r.status_code == 200 and bad in ("",)):
            continue  # e.g. an empty segment routes elsewhere
        assert_clean_4xx(r, (404, 405, 422))
    assert files_under(sandbox.parent) == before
    assert client.get("/ai/models/").json()["total"] == 0


def test_body_over_the_limit_is_413(client: TestClient, services: Services) -> None:
    services.settings.max_body_bytes = 4096
    body = json.dumps({"tenant_id": "t", "readings": readings("m1", range(200))})
    r = client.post("/ai/features/ingest", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "AIHUB_MAX_BODY_BYTES" in r.json()["detail"]

    def chunked() -> Any:  # no Content-Length: counted as it streams
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000].encode()

    r = client.post("/ai/features/ingest", content=chunked(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert client.get("/ai/assets?tenant_id=t").json()["total"] == 0


def test_artifact_over_the_limit_is_413_and_nothing_is_kept(client: TestClient,
                                                            services: Services) -> None:
    services.model_artifacts.max_bytes = 2048
    model_id = client.post("/ai/models/register", json=register_body()).json()["model_id"]

    def chunks() -> Any:
        data = lightgbm_text()
        for i in range(0, len(data), 512):
            yield data[i:i + 512]

    r = client.put(f"/ai/models/{model_id}/artifact", content=chunks())
    assert r.status_code == 413, r.text
    assert client.get(f"/ai/models/{model_id}").json()["sha256"] is None
    art = services.settings.artifacts_dir
    assert not art.exists() or not files_under(art)


def test_rows_per_ingest_limit(client: TestClient, services: Services) -> None:
    services.ingest.max_rows = 10
    r = client.post("/ai/features/ingest", json={"tenant_id": "t",
                                                 "readings": readings("m1", range(11))})
    assert r.status_code in (413, 422) and "10" in r.json()["detail"], r.text


@pytest.mark.parametrize("metadata", [
    {"blob": "x" * 70_000},
    json.loads("[" * 40 + "]" * 40) and {"deep": json.loads("[" * 40 + "]" * 40)},
])
def test_metadata_size_and_depth(client: TestClient, metadata: dict[str, Any]) -> None:
    r = client.post("/ai/models/register", json={**register_body(), "metadata": metadata})
    assert_clean_4xx(r, (422,))
    assert client.get("/ai/models/").json()["total"] == 0


def test_absurd_nesting_is_422_not_a_crash(client: TestClient) -> None:
    raw = '{"tenant_id": "t", "model_name": "m", "version": "v1.0.0", "metadata": ' \
          + "[" * 100_000 + "]" * 100_000 + "}"
    r = client.post("/ai/models/register", content=raw,
                    headers={"content-type": "application/json"})
    assert_clean_4xx(r, (422,))


BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", '"abc"', "null", "[]", "{}",
               "1" * 5000, "true", "false", '"1.5"', '"1"']


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_numbers(client: TestClient, value: str) -> None:
    raw = ('{"tenant_id": "t", "readings": [{"asset_id": "m1", "ts": "2024-01-01T00:00:00Z", '
           f'"value": {value}}}]}}')
    r = client.post("/ai/features/ingest", content=raw,
                    headers={"content-type": "application/json"})
    assert_clean_4xx(r, (400, 422))
    assert client.get("/ai/assets", params={"tenant_id": "t"}).json()["total"] == 0


@pytest.mark.parametrize("value", [v for v in BAD_NUMBERS if v != "null"])
def test_bad_weather_numbers(client: TestClient, value: str) -> None:
    raw = ('{"tenant_id": "t", "observations": [{"location_id": "berlin", '
           f'"ts": "2024-01-01T00:00:00Z", "temperature": {value}}}]}}')
    r = client.post("/ai/features/weather", content=raw,
                    headers={"content-type": "application/json"})
    assert_clean_4xx(r, (400, 422))


def test_integer_numbers_are_accepted(client: TestClient) -> None:
    r = client.post("/ai/features/ingest", json={"tenant_id": "t", "readings": [
        {"asset_id": "m1", "ts": "2024-01-01T00:00:00Z", "value": 2}]})
    assert r.status_code == 200, r.text
    r = client.post("/ai/features/weather", json={"tenant_id": "t", "observations": [
        {"location_id": "berlin", "ts": "2024-01-01T00:00:00Z", "temperature": -3}]})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("field,value", [
    ("lookback_hours", 10**12), ("lookback_hours", -1), ("lookback_hours", 1.5),
    ("lookback_hours", "many"), ("as_of", "2024-01-01T00:00:00"), ("as_of", "99999-01-01"),
    ("as_of", "0001-01-01T00:00:00Z"), ("as_of", "yesterday"), ("as_of", 1e308),
])
def test_bad_online_parameters(client: TestClient, field: str, value: Any) -> None:
    r = client.post("/ai/features/get", json={"tenant_id": "t", "asset_id": "m1",
                                              field: value})
    assert_clean_4xx(r, (422,))


def test_export_range_is_bounded(client: TestClient) -> None:
    client.post("/ai/features/ingest", json={"tenant_id": "t", "readings": readings("m1", [1])})
    r = client.post("/ai/features/export", json={
        "tenant_id": "t", "feature_set": "forecast_basic",
        "start_time": "1970-01-01T00:00:00Z", "end_time": "2199-01-01T00:00:00Z"})
    assert_clean_4xx(r, (422,))


def test_onnx_with_external_data_is_refused_and_not_cached(client: TestClient,
                                                           services: Services) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    tensor = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "4")):
        entry = tensor.external_data.add()
        entry.key, entry.value = k, v
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], [tensor])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    body = {**register_body(), "metadata": {"feature_names": ["x"]}}
    model_id = client.post("/ai/models/register", json=body).json()["model_id"]
    up = client.put(f"/ai/models/{model_id}/artifact", content=onnx._serialize(data)
                    if hasattr(onnx, "_serialize") else data.SerializeToString())
    if up.status_code == 200:  # stored; loading must refuse it
        r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [{"x": 1.0}]})
        assert_clean_4xx(r, (409, 422))
        assert "external" in r.json()["detail"].lower(), r.text
    else:
        assert_clean_4xx(up, (409, 422))
    assert len(services.predictions.cache) == 0


def test_truncated_lightgbm_is_refused_and_not_cached(client: TestClient,
                                                      services: Services) -> None:
    model_id = client.post("/ai/models/register", json=register_body()).json()["model_id"]
    text = lightgbm_text()
    up = client.put(f"/ai/models/{model_id}/artifact", content=text[: len(text) // 2])
    if up.status_code == 200:
        r = client.post(f"/ai/models/{model_id}/predict",
                        json={"rows": [{"hour_of_day": 1.0}]})
        assert_clean_4xx(r, (409, 422))
    else:
        assert_clean_4xx(up, (409, 422))
    assert len(services.predictions.cache) == 0
