"""A key never reaches another tenant: every route answers 404 for the other tenant's ids
(exactly like an id that does not exist) and listings show only the key's tenants."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import readings
from tests.registry.models import lightgbm_text, register_body
from tests.security.conftest import FEATURES, Keys, bearer, served_routes

B = "tenant-b"


def cross_tenant_requests(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, kwargs) touching tenant-b, one or more per route."""
    model, export = ids["model_id"], ids["export_id"]
    get = {"tenant_id": B, "asset_id": "m1", "feature_set": "forecast_basic",
           "as_of": "2024-01-08T00:00:00Z"}
    return [
        ("POST", "/ai/features/ingest", {"json": {"tenant_id": B,
                                                  "readings": readings("m1", [1])}}),
        ("POST", "/ai/features/weather", {"json": {"tenant_id": B, "observations": [
            {"location_id": "l1", "ts": "2024-01-01T00:00:00Z", "temperature": 1.0}]}}),
        ("POST", "/ai/features/get", {"json": get}),
        ("POST", "/ai/features/get-batch", {"json": {**get, "asset_ids": ["m1"]}}),
        ("POST", "/ai/features/export", {"json": {
            "tenant_id": B, "feature_set": "forecast_basic",
            "start_time": "2024-01-08T00:00:00Z", "end_time": "2024-01-09T00:00:00Z"}}),
        ("GET", f"/ai/features/exports?tenant_id={B}", {}),
        ("GET", f"/ai/features/exports/{export}", {}),
        ("GET", f"/ai/features/sets?tenant_id={B}", {}),
        ("POST", "/ai/features/sets", {"json": {"tenant_id": B, "name": "mine",
                                                "features": ["lag_1h"]}}),
        ("GET", f"/ai/features/status?tenant_id={B}", {}),
        ("GET", f"/ai/stream/dead-letters?tenant_id={B}", {}),
        ("GET", f"/ai/assets?tenant_id={B}", {}),
        ("GET", f"/ai/assets/m1?tenant_id={B}", {}),
        ("GET", f"/ai/assets/m1/series?tenant_id={B}&start=2024-01-01T00:00:00Z"
                "&end=2024-01-02T00:00:00Z", {}),
        ("PUT", f"/ai/assets/m1?tenant_id={B}", {"json": {"timezone": "Europe/Berlin"}}),
        ("POST", "/ai/models/register", {"json": register_body("v2.0.0", tenant=B)}),
        ("POST", "/ai/models/register", {
            "data": {"request": __import__("json").dumps(register_body("v2.0.1", tenant=B))},
            "files": {"artifact": ("m.txt", lightgbm_text())}}),
        ("GET", f"/ai/models/?tenant_id={B}", {}),
        ("GET", f"/ai/models/{model}", {}),
        ("GET", f"/ai/models/{B}:forecast_lgb:production", {}),
        ("GET", f"/ai/models/{model}/history", {}),
        ("GET", f"/ai/models/{model}/artifact", {}),
        ("PUT", f"/ai/models/{model}/artifact", {"content": lightgbm_text()}),
        ("PUT", f"/ai/models/{model}/promote", {"json": {"target_stage": "archived"}}),
        ("DELETE", f"/ai/models/{model}?force=true", {}),
        ("POST", f"/ai/models/{model}/predict", {"json": {"rows": [dict.fromkeys(FEATURES,
                                                                                 1.0)]}}),
        ("POST", f"/ai/models/{model}/predict", {"json": {
            "asset_ids": ["m1"], "feature_set": "forecast_basic",
            "as_of": "2024-01-08T00:00:00Z"}}),
    ]


def test_every_route_refuses_another_tenants_ids_with_404(
        client: TestClient, keys: Keys, two_tenants: dict[str, dict[str, str]]) -> None:
    before = client.get(f"/ai/models/?tenant_id={B}", headers=bearer(keys.admin)).json()
    for method, path, kw in cross_tenant_requests(two_tenants[B]):
        r = client.request(method, path, headers=bearer(keys.a_admin), **kw)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["error"] == "not_found"
    # nothing of tenant-b changed
    after = client.get(f"/ai/models/?tenant_id={B}", headers=bearer(keys.admin)).json()
    assert after == before
    status = client.get(f"/ai/features/status?tenant_id={B}", headers=bearer(keys.admin))
    assert status.json()["readings"] == 24 * 9


def test_every_api_route_is_covered_by_the_isolation_test(client: TestClient) -> None:
    """A new route must be added to ``cross_tenant_requests`` (or here, if tenant-free)."""
    # The dashboard page and icon hold no data; whoami answers about the caller only; the
    # stream's status holds counts, no tenant's data.
    tenant_free = {"/health", "/metrics", "/ready", "/ai/features/catalog", "/",
                   "/favicon.ico", "/ai/auth/whoami", "/ai/stream/status"}
    covered = {p.split("?")[0] for _, p, _ in cross_tenant_requests(
        {"model_id": "{model_id}", "export_id": "{export_id}"})}
    covered = {p.replace("tenant-b:forecast_lgb:production", "{model_id}") for p in covered}
    covered |= {p.replace("/ai/assets/m1", "/ai/assets/{asset_id}") for p in covered}
    routes = {path for _, path, route in served_routes(client.app) if route is not None}
    assert "/ai/models/{model_id}" in routes  # the walk sees included routers' routes
    missing = routes - covered - tenant_free
    assert not missing, f"routes without a cross-tenant test: {missing}"


def test_other_tenants_ids_look_exactly_like_missing_ones(
        client: TestClient, keys: Keys, two_tenants: dict[str, dict[str, str]]) -> None:
    h = bearer(keys.a_read)
    real, fake = two_tenants[B]["model_id"], f"{B}:forecast_lgb:v9.9.9"
    r1, r2 = client.get(f"/ai/models/{real}", headers=h), client.get(f"/ai/models/{fake}",
                                                                     headers=h)
    assert (r1.status_code, r1.json()["error"]) == (r2.status_code, r2.json()["error"]) \
        == (404, "not_found")
    assert r1.json()["detail"].replace(real, "X") == r2.json()["detail"].replace(fake, "X")
    e1 = client.get(f"/ai/features/exports/{two_tenants[B]['export_id']}", headers=h)
    e2 = client.get("/ai/features/exports/00000000-0000-0000-0000-000000000000", headers=h)
    assert e1.status_code == e2.status_code == 404


@pytest.mark.parametrize("path", ["/ai/models/", "/ai/features/exports"])
def test_listings_show_only_the_keys_tenants(client: TestClient, keys: Keys, path: str,
                                             two_tenants: dict[str, dict[str, str]]) -> None:
    field = "models" if "models" in path else "exports"
    mine = client.get(path, headers=bearer(keys.a_read)).json()
    assert {x["tenant_id"] for x in mine[field]} == {"tenant-a"}
    assert mine["total"] == len(mine[field])
    everyone = client.get(path, headers=bearer(keys.admin)).json()
    assert {x["tenant_id"] for x in everyone[field]} == {"tenant-a", "tenant-b"}


def test_own_tenant_works_with_the_same_key(client: TestClient, keys: Keys,
                                            two_tenants: dict[str, dict[str, str]]) -> None:
    a = two_tenants["tenant-a"]
    h = bearer(keys.a_write)
    assert client.get(f"/ai/models/{a['model_id']}", headers=h).status_code == 200
    assert client.get(f"/ai/features/exports/{a['export_id']}", headers=h).status_code == 200
    r = client.post(f"/ai/models/{a['model_id']}/predict", headers=h,
                    json={"rows": [dict.fromkeys(FEATURES, 1.0)]})
    assert r.status_code == 200, r.text
