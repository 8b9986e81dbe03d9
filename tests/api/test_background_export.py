"""Exports with ``wait=false``: answered at once, written in the background, pollable."""

from __future__ import annotations

import time

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from tests.factories import at, iso, readings

TENANT = "t-bg"


def _load(client: TestClient) -> dict[str, object]:
    for asset in ("m1", "m2"):
        r = client.post("/ai/features/ingest",
                        json={"tenant_id": TENANT, "readings": readings(asset, range(400))})
        assert r.status_code == 200, r.text
    return {"tenant_id": TENANT, "feature_set": "forecast_basic",
            "start_time": iso(at(0)), "end_time": iso(at(400))}


def _wait_done(client: TestClient, export_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        record = client.get(f"/ai/features/exports/{export_id}").json()
        if record["status"] != "running":
            return record  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("background export did not finish")


def test_background_export_answers_202_then_completes_with_the_same_rows(
    client: TestClient,
) -> None:
    request = _load(client)
    accepted = client.post("/ai/features/export", json={**request, "wait": False})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "running"
    done = _wait_done(client, accepted.json()["export_id"])
    assert done["status"] == "completed", done
    waited = client.post("/ai/features/export", json=request).json()
    assert waited["status"] == "completed"
    background = pq.read_table(str(done["storage_path"]))
    foreground = pq.read_table(waited["storage_path"])
    assert done["row_count"] == waited["row_count"] == background.num_rows == 800
    assert background.equals(foreground)


def test_background_export_validates_before_accepting(client: TestClient) -> None:
    request = _load(client)
    bad = client.post("/ai/features/export",
                      json={**request, "feature_set": "nope", "wait": False})
    assert bad.status_code == 404
    reversed_range = client.post(
        "/ai/features/export",
        json={**request, "start_time": request["end_time"], "end_time": request["start_time"],
              "wait": False},
    )
    assert reversed_range.status_code == 422
    assert client.get("/ai/features/exports", params={"tenant_id": TENANT}).json()["total"] == 0
