"""Asset metadata edits: clearing optional fields, rejecting unknown countries."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import at, iso, readings

TENANT = "t-assets"


def _put(client: TestClient, body: dict[str, object]) -> dict[str, object]:
    r = client.put("/ai/assets/m1", params={"tenant_id": TENANT}, json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_explicit_null_clears_country_and_holidays_become_null(client: TestClient) -> None:
    client.post("/ai/features/ingest", json={"tenant_id": TENANT,
                                             "readings": readings("m1", range(48))})
    _put(client, {"country": "DE", "location_id": "berlin"})
    body = {"tenant_id": TENANT, "asset_id": "m1", "feature_set": "forecast_advanced",
            "as_of": iso(at(30))}
    assert client.post("/ai/features/get", json=body).json()["features"]["is_holiday"] == 0
    cleared = _put(client, {"country": None, "location_id": None})
    assert cleared["country"] is None and cleared["location_id"] is None
    assert cleared["timezone"] == "UTC"  # untouched
    assert client.post("/ai/features/get", json=body).json()["features"]["is_holiday"] is None


def test_left_out_fields_keep_their_value(client: TestClient) -> None:
    _put(client, {"country": "FR", "timezone": "Europe/Paris"})
    kept = _put(client, {"kind": "generation"})
    assert (kept["country"], kept["timezone"], kept["kind"]) == ("FR", "Europe/Paris",
                                                                 "generation")


def test_unknown_country_and_null_timezone_are_rejected_and_change_nothing(
    client: TestClient,
) -> None:
    _put(client, {"country": "DE"})
    for body in ({"country": "XX"}, {"timezone": None}, {"kind": None}):
        r = client.put("/ai/assets/m1", params={"tenant_id": TENANT}, json=body)
        assert r.status_code == 422, r.text
    asset = client.get("/ai/assets/m1", params={"tenant_id": TENANT}).json()
    assert asset["country"] == "DE" and asset["timezone"] == "UTC"


def test_export_with_empty_asset_list_is_rejected(client: TestClient) -> None:
    client.post("/ai/features/ingest", json={"tenant_id": TENANT,
                                             "readings": readings("m1", range(48))})
    r = client.post("/ai/features/export", json={
        "tenant_id": TENANT, "start_time": iso(at(0)), "end_time": iso(at(48)),
        "asset_ids": []})
    assert r.status_code == 422, r.text
    assert "asset_ids" in r.json()["detail"]
