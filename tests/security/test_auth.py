"""API keys: 401 without/with a bad key, 403 for a role too low, open only without keys."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from aihub.api.auth import required_role
from aihub.services.container import Services
from tests.factories import readings
from tests.security.conftest import Keys, bearer

INGEST = {"tenant_id": "tenant-a", "readings": readings("m1", range(3))}


def test_without_keys_the_service_is_open(client: TestClient) -> None:
    assert client.post("/ai/features/ingest", json=INGEST).status_code == 200
    assert client.get("/ai/models/").status_code == 200


def test_with_keys_every_endpoint_but_health_needs_one(client: TestClient, keys: Keys) -> None:
    assert client.get("/health").status_code == 200
    paths = [("GET", "/ai/features/catalog"), ("GET", "/ai/models/"), ("GET", "/ready"),
             ("GET", "/metrics"), ("POST", "/ai/features/ingest"),
             ("GET", "/ai/assets?tenant_id=tenant-a"), ("GET", "/ai/no-such-route"),
             ("PUT", "/ai/models/tenant-a:m:v1.0.0/artifact")]
    for method, path in paths:
        r = client.request(method, path)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"] == "unauthorized"


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer aihub_nope_nope"}, {"X-API-Key": "wrong"},
    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "},
])
def test_unknown_or_malformed_key_is_401(client: TestClient, keys: Keys,
                                         headers: dict[str, str]) -> None:
    r = client.get("/ai/features/catalog", headers=headers)
    assert r.status_code == 401, r.text


def test_bearer_and_x_api_key_both_work(client: TestClient, keys: Keys) -> None:
    assert client.get("/ai/features/catalog", headers=bearer(keys.a_read)).status_code == 200
    assert client.get("/ai/features/catalog",
                      headers={"X-API-Key": keys.a_read}).status_code == 200


def test_read_key_may_read_but_not_write(client: TestClient, keys: Keys) -> None:
    assert client.post("/ai/features/ingest", json=INGEST,
                       headers=bearer(keys.a_write)).status_code == 200
    r = client.post("/ai/features/ingest", json=INGEST, headers=bearer(keys.a_read))
    assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    got = client.post("/ai/features/get", headers=bearer(keys.a_read), json={
        "tenant_id": "tenant-a", "asset_id": "m1", "feature_set": "forecast_basic",
        "as_of": "2024-01-01T02:00:00Z"})
    assert got.status_code == 200, got.text
    assert client.put("/ai/assets/m1?tenant_id=tenant-a", json={"timezone": "UTC"},
                      headers=bearer(keys.a_read)).status_code == 403


def test_forced_delete_needs_admin(client: TestClient, keys: Keys,
                                   two_tenants: dict[str, dict[str, str]]) -> None:
    model_id = two_tenants["tenant-a"]["model_id"]
    r = client.delete(f"/ai/models/{model_id}?force=true", headers=bearer(keys.a_write))
    assert r.status_code == 403, r.text
    r = client.delete(f"/ai/models/{model_id}?force=true", headers=bearer(keys.a_admin))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path", "role"), [
    ("GET", "/ai/models/", "read"), ("POST", "/ai/features/get", "read"),
    ("POST", "/ai/features/get-batch", "read"), ("POST", "/ai/features/export", "read"),
    ("POST", "/ai/models/t:m:v1/predict", "read"), ("POST", "/ai/features/ingest", "write"),
    ("POST", "/ai/models/register", "write"), ("PUT", "/ai/models/t:m:v1/promote", "write"),
    ("DELETE", "/ai/models/t:m:v1", "write"), ("POST", "/ai/features/get/../ingest", "write"),
])
def test_required_role(method: str, path: str, role: str) -> None:
    assert required_role(method, path) == role


def test_revocation_takes_effect_within_the_cache_ttl(client: TestClient, services: Services,
                                                      keys: Keys) -> None:
    services.key_cache.ttl = 0.3
    key, plain = services.api_keys.create(["tenant-a"], "read")
    services.key_cache.clear()
    assert client.get("/ai/models/", headers=bearer(plain)).status_code == 200
    services.api_keys.revoke(key.key_id)
    time.sleep(0.35)
    assert client.get("/ai/models/", headers=bearer(plain)).status_code == 401


def test_revoking_every_key_does_not_open_the_service(client: TestClient,
                                                     services: Services) -> None:
    key, plain = services.api_keys.create(["tenant-a"], "admin")
    services.api_keys.revoke(key.key_id)
    services.key_cache.clear()
    assert client.get("/ai/models/").status_code == 401
    assert client.get("/ai/models/", headers=bearer(plain)).status_code == 401


def test_hot_path_verifies_a_key_from_memory(client: TestClient, services: Services,
                                             keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"find": 0, "any": 0}
    find, any_ = services.api_keys.find, services.api_keys.any

    def counting_find(h: str) -> object:
        calls["find"] += 1
        return find(h)

    def counting_any() -> bool:
        calls["any"] += 1
        return any_()

    monkeypatch.setattr(services.api_keys, "find", counting_find)
    monkeypatch.setattr(services.api_keys, "any", counting_any)
    for _ in range(50):
        assert client.get("/ai/features/catalog", headers=bearer(keys.a_read)).status_code == 200
        assert client.get("/ai/features/catalog",
                          headers=bearer("aihub_x_guess")).status_code == 401
    assert calls["find"] == 2  # one per distinct key, then memory
    assert calls["any"] <= 1


def test_keys_are_stored_hashed(services: Services) -> None:
    _, plain = services.api_keys.create(["tenant-a"], "read")
    import sqlalchemy as sa

    with services.engine.connect() as conn:
        dump = repr(conn.execute(sa.text("SELECT * FROM api_keys")).all())
    assert plain not in dump and plain.rsplit("_", 1)[1] not in dump
