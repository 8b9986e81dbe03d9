"""Bad input is a 4xx that says what is wrong (422 names the 0-based row and field, 404 the
unknown tenant/asset/feature set), never a 500 or a traceback, and leaves the store exactly
as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from aihub.services.container import Services
from tests.factories import ingest, put_asset, readings

T = "tenant-bad"


def good(n: int = 5, asset: str = "m1") -> list[dict[str, Any]]:
    return readings(asset, range(100, 100 + n), lambda h: 1.0 + h)


def snapshot(client: TestClient, services: Services) -> dict[str, Any]:
    status = client.get("/ai/features/status", params={"tenant_id": T}).json()
    assets = client.get("/ai/assets", params={"tenant_id": T}).json()
    exports = client.get("/ai/features/exports").json()
    export_dir = Path(services.settings.export_storage_path)
    files = sorted(p.name for p in export_dir.rglob("*")) if export_dir.exists() else []
    m1 = services.timeseries.get_assets(T, ["m1"])[0]
    return {"status": status, "assets": assets, "exports": exports["total"], "files": files,
            "seq": [a.data_seq for a in services.timeseries.list_assets(T, limit=100,
                                                                       offset=0)[0]],
            "readings": services.timeseries.load_readings(m1.key, 0, 2**62).rows(),
            "rollups": services.timeseries.load_rollups([m1.key], 0, 2**62).rows()}


@pytest.fixture
def unchanged(client: TestClient, services: Services) -> Iterator[None]:
    """Seeds the tenant; after the test, asserts that nothing in the store changed."""
    ingest(client, T, good(30))
    put_asset(client, T, "m1", timezone="Europe/Berlin", country="DE", kind="load")
    before = snapshot(client, services)
    yield
    assert snapshot(client, services) == before


def assert_clean(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text and 'File "' not in r.text
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body  # type: ignore[no-any-return]


def assert_row_field(body: dict[str, Any], row: int, field: str) -> None:
    details = body["details"]
    assert any(d.get("row") == row and field in d.get("field", "") for d in details), details
    assert f"[{row}]" in body["detail"] or f"row {row}" in body["detail"], body["detail"]


def post_raw(client: TestClient, path: str, text: str) -> httpx.Response:
    return client.post(path, content=text, headers={"Content-Type": "application/json"})


# -- readings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("ts", "why"), [
    ("2024-01-05T10:00:00", "naive"),
    ("yesterday at noon", "unparseable"),
    ("2024-13-45T10:00:00Z", "impossible date"),
    ("1960-01-01T00:00:00Z", "before 1970"),
    ("", "empty"),
])
def test_bad_timestamp_names_row_and_field(client: TestClient, unchanged: None, ts: str,
                                           why: str) -> None:
    rows = good(5, "new-meter")
    rows[3]["ts"] = ts
    body = assert_clean(client.post("/ai/features/ingest",
                                    json={"tenant_id": T, "readings": rows}), 422)
    assert_row_field(body, 3, "ts")
    assert client.get("/ai/assets/new-meter", params={"tenant_id": T}).status_code == 404


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", '"abc"', "null"])
def test_non_finite_or_missing_value_is_rejected(client: TestClient, unchanged: None,
                                                 literal: str) -> None:
    rows = good(4)
    text = json.dumps({"tenant_id": T, "readings": rows})
    # Replace the 3rd value (index 2) by the raw literal: NaN/Infinity are not valid JSON.
    marker = f'"value": {json.dumps(rows[2]["value"])}'
    assert text.count(marker) == 1
    body = assert_clean(post_raw(client, "/ai/features/ingest",
                                 text.replace(marker, f'"value": {literal}')), 422)
    assert_row_field(body, 2, "value")


def test_bad_row_anywhere_rejects_the_whole_batch(client: TestClient, unchanged: None) -> None:
    rows = good(20) + good(5, "m2")
    rows[22]["value"] = "12,5"
    body = assert_clean(client.post("/ai/features/ingest",
                                    json={"tenant_id": T, "readings": rows}), 422)
    assert_row_field(body, 22, "value")


@pytest.mark.parametrize("payload", [
    {"tenant_id": T, "readings": []},
    {"tenant_id": T},
    {"tenant_id": "../x", "readings": readings("m1", [1])},
    {"tenant_id": T, "readings": readings("../x", [1])},
    {"tenant_id": T, "readings": readings("a/b", [1])},
    {"tenant_id": T, "readings": readings("m1", [1]), "extra": 1},
    {"tenant_id": T, "readings": [{"asset_id": "m1", "ts": "2024-01-01T00:00:00Z"}]},
])
def test_malformed_ingest_bodies(client: TestClient, unchanged: None,
                                 payload: dict[str, Any]) -> None:
    assert_clean(client.post("/ai/features/ingest", json=payload), 422)


def test_broken_json_is_a_422(client: TestClient, unchanged: None) -> None:
    assert_clean(post_raw(client, "/ai/features/ingest", '{"tenant_id": "t", "readings": ['), 422)


def test_weather_nan_and_naive_are_rejected(client: TestClient, unchanged: None) -> None:
    obs = [{"location_id": "l1", "ts": f"2024-01-01T0{i}:00:00Z", "temperature": 1.0}
           for i in range(3)]
    text = json.dumps({"tenant_id": T, "observations": obs}).replace(
        '"temperature": 1.0}]', '"temperature": NaN}]')
    body = assert_clean(post_raw(client, "/ai/features/weather", text), 422)
    assert_row_field(body, 2, "temperature")
    obs[1]["ts"] = "2024-01-01T01:00:00"
    body = assert_clean(client.post("/ai/features/weather",
                                    json={"tenant_id": T, "observations": obs}), 422)
    assert_row_field(body, 1, "ts")


# -- assets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [
    {"kind": "nuclear"},
    {"timezone": "Mars/Olympus_Mons"},
    {"timezone": "../../etc/passwd"},
    {"timezone": ""},
    {"country": "germany"},
    {"location_id": "../x"},
    {"timezone": "UTC", "kind": "solar"},
])
def test_bad_asset_fields_leave_the_asset_unchanged(client: TestClient, unchanged: None,
                                                    fields: dict[str, Any]) -> None:
    r = client.put("/ai/assets/m1", params={"tenant_id": T}, json=fields)
    assert_clean(r, 422)
    asset = client.get("/ai/assets/m1", params={"tenant_id": T}).json()
    assert (asset["timezone"], asset["country"], asset["kind"]) == ("Europe/Berlin", "DE", "load")


@pytest.mark.parametrize("path", ["/ai/assets/..%2Fx", "/ai/assets/a%00b", "/ai/assets/..."])
def test_bad_asset_names_in_the_path(client: TestClient, unchanged: None, path: str) -> None:
    r = client.put(path, params={"tenant_id": T}, json={"timezone": "UTC"})
    assert r.status_code in (404, 422), r.text
    assert "Traceback" not in r.text


# -- online features and exports ------------------------------------------------------------


@pytest.mark.parametrize("lookback", [0, -5, 8761, 100_000])
def test_lookback_out_of_range(client: TestClient, unchanged: None, lookback: int) -> None:
    body = assert_clean(client.post("/ai/features/get", json={
        "tenant_id": T, "asset_id": "m1", "lookback_hours": lookback,
        "as_of": "2024-01-05T10:00:00Z"}), 422)
    assert "lookback_hours" in body["detail"]
    body = assert_clean(client.post("/ai/features/export", json={
        "tenant_id": T, "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-01-03T00:00:00Z", "lookback_hours": lookback}), 422)
    assert "lookback_hours" in body["detail"]


@pytest.mark.parametrize(("change", "needle"), [
    ({"tenant_id": "nobody"}, "nobody"),
    ({"asset_id": "meter-404"}, "meter-404"),
    ({"feature_set": "no_such_set"}, "no_such_set"),
])
def test_unknown_names_are_404_with_a_clear_message(client: TestClient, unchanged: None,
                                                    change: dict[str, str], needle: str) -> None:
    req = {"tenant_id": T, "asset_id": "m1", "feature_set": "forecast_basic",
           "as_of": "2024-01-05T10:00:00Z", **change}
    body = assert_clean(client.post("/ai/features/get", json=req), 404)
    assert needle in body["detail"]
    batch = {k: v for k, v in req.items() if k != "asset_id"}
    batch["asset_ids"] = ["m1", req["asset_id"]]
    body = assert_clean(client.post("/ai/features/get-batch", json=batch), 404)
    assert needle in body["detail"]
    # ... and without as_of (the default hour), too.
    del req["as_of"]
    assert needle in assert_clean(client.post("/ai/features/get", json=req), 404)["detail"]


@pytest.mark.parametrize(("change", "status", "needle"), [
    ({"tenant_id": "nobody"}, 404, "nobody"),
    ({"asset_ids": ["m1", "meter-404"]}, 404, "meter-404"),
    ({"feature_set": "no_such_set"}, 404, "no_such_set"),
    ({"feature_set": "../x"}, 422, "feature_set"),
    ({"tenant_id": "../../etc"}, 422, "tenant_id"),
    ({"asset_ids": ["../x"]}, 422, "asset_ids"),
    ({"end_time": "2023-12-01T00:00:00Z"}, 422, "end_time"),
    ({"start_time": "2024-01-01T00:00:00"}, 422, "start_time"),
    ({"end_time": "2200-06-01T00:00:00Z"}, 422, "end_time"),
])
def test_bad_exports_write_nothing(client: TestClient, unchanged: None,
                                   change: dict[str, Any], status: int, needle: str) -> None:
    req = {"tenant_id": T, "feature_set": "forecast_basic",
           "start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-08T00:00:00Z", **change}
    body = assert_clean(client.post("/ai/features/export", json=req), status)
    assert needle in body["detail"]


def test_unknown_export_and_tenant_status(client: TestClient, unchanged: None) -> None:
    assert "nope" in assert_clean(client.get("/ai/features/exports/nope"), 404)["detail"]
    body = assert_clean(client.get("/ai/features/status", params={"tenant_id": "nobody"}), 404)
    assert "nobody" in body["detail"]


@pytest.mark.parametrize("payload", [
    {"name": "../x", "features": ["lag_1h"]},
    {"name": "forecast_basic", "features": ["lag_1h"]},
    {"name": "s1", "features": []},
    {"name": "s1", "features": ["lag_1h", "lag_1h"]},
    {"name": "s1", "features": ["lag_1h", "../../x"]},
])
def test_bad_feature_set_definitions(client: TestClient, unchanged: None,
                                     payload: dict[str, Any]) -> None:
    assert_clean(client.post("/ai/features/sets", json={"tenant_id": T, **payload}), 422)
    listed = client.get("/ai/features/sets", params={"tenant_id": T}).json()["feature_sets"]
    assert sorted(listed) == ["anomaly_detection", "forecast_advanced", "forecast_basic"]
