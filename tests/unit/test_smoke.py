"""The smallest end-to-end check: ingest, then serve features that follow from it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import at, iso, readings


def test_ingest_then_get_returns_lag_of_previous_hour(client: TestClient) -> None:
    r = client.post("/ai/features/ingest",
                    json={"tenant_id": "t1", "readings": readings("m1", range(48))})
    assert r.status_code == 200, r.text
    r = client.post("/ai/features/get", json={"tenant_id": "t1", "asset_id": "m1",
                                             "as_of": iso(at(30))})
    assert r.status_code == 200, r.text
    assert r.json()["features"]["lag_1h"] == 29.0
    assert r.json()["features"]["lag_24h"] == 6.0
