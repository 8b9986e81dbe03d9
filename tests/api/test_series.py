"""GET /ai/assets/{asset_id}/series: an asset's hourly rollups as columns, bounded range,
tenant scope; and the asset list's ``q`` prefix filter."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import at, ingest, iso, readings

TENANT = "t-series"


def _series(client: TestClient, asset_id: str, start: float, end: float, tenant: str = TENANT):
    return client.get(f"/ai/assets/{asset_id}/series",
                      params={"tenant_id": tenant, "start": iso(at(start)), "end": iso(at(end))})


def test_series_returns_hourly_mean_min_max_n_in_range(client: TestClient) -> None:
    # Two readings per hour (h:00 and h:30) for 48 hours: value = offset in hours.
    ingest(client, TENANT, readings("m1", [h / 2 for h in range(96)]))
    ingest(client, TENANT, readings("other", range(48), value=lambda h: 1000.0))
    r = _series(client, "m1", 10.5, 20)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 10 and body["start"] == at(10).isoformat()  # floored to the hour
    assert body["hour"][0] == int(at(10).timestamp())
    assert body["hour"][-1] == int(at(19).timestamp())
    assert body["mean"][0] == 10.25 and body["min"][0] == 10.0 and body["max"][0] == 10.5
    assert set(body["n"]) == {2}
    assert all(b - a == 3600 for a, b in zip(body["hour"], body["hour"][1:], strict=False))


def test_series_holds_a_year_of_hours(client: TestClient) -> None:
    ingest(client, TENANT, readings("y", range(8784)))  # 2024 is a leap year
    body = _series(client, "y", 0, 8784).json()
    assert body["count"] == 8784 and body["mean"][-1] == 8783.0


def test_series_rejects_bad_ranges_and_unknown_assets(client: TestClient) -> None:
    ingest(client, TENANT, readings("m1", range(3)))
    assert _series(client, "m1", 5, 5).status_code == 422
    too_long = _series(client, "m1", 0, 24 * 732)
    assert too_long.status_code == 422 and "731 days" in too_long.json()["detail"]
    naive = client.get("/ai/assets/m1/series", params={
        "tenant_id": TENANT, "start": "2024-01-01T00:00:00", "end": "2024-01-02T00:00:00"})
    assert naive.status_code == 422
    assert _series(client, "nope", 0, 10).status_code == 404
    assert _series(client, "m1", 0, 10, tenant="t-else").status_code == 404


def test_asset_list_filters_by_prefix(client: TestClient) -> None:
    for a in ("meter-001", "meter-002", "Meter-003", "pv-1"):
        ingest(client, TENANT, readings(a, range(1)))
    r = client.get("/ai/assets", params={"tenant_id": TENANT, "q": "meter-", "limit": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 2 and [a["asset_id"] for a in body["assets"]] == ["meter-001"]
    body = client.get("/ai/assets", params={"tenant_id": TENANT, "q": "meter_"}).json()
    assert body["total"] == 0  # no LIKE wildcards
    assert client.get("/ai/assets", params={"tenant_id": TENANT}).json()["total"] == 4


def test_series_without_a_range_ends_at_the_assets_last_hour(client: TestClient) -> None:
    # 30 days of hourly readings: the default range is the `days` before the last hour.
    ingest(client, TENANT, readings("recent", range(24 * 30)))
    r = client.get("/ai/assets/recent/series", params={"tenant_id": TENANT, "days": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    last = int(at(24 * 30 - 1).timestamp())
    assert body["last_hour"] == last and body["hour"][-1] == last
    assert body["count"] == 48 and body["hour"][0] == last - 47 * 3600
    assert body["end"] == at(24 * 30).isoformat()
    whole = client.get("/ai/assets/recent/series", params={"tenant_id": TENANT}).json()
    assert whole["count"] == 24 * 30 and whole["last_hour"] == last  # default: 365 days
    # An explicit range still reports the last hour of all the asset's data.
    assert _series(client, "recent", 0, 5).json()["last_hour"] == last


def test_series_of_an_asset_without_readings_is_empty(client: TestClient) -> None:
    r = client.put("/ai/assets/bare", params={"tenant_id": TENANT}, json={"timezone": "UTC"})
    assert r.status_code == 200, r.text
    body = client.get("/ai/assets/bare/series", params={"tenant_id": TENANT}).json()
    assert body["count"] == 0 and body["last_hour"] is None
    for bad in ("0", "732", "x"):
        r = client.get("/ai/assets/bare/series", params={"tenant_id": TENANT, "days": bad})
        assert r.status_code == 422, bad
