"""API keys: 401 without/with a bad key, 403 for a role too low, open only without keys."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from aihub.api.auth import declared_roles
from aihub.auth.cache import KeyCache
from aihub.services.container import Services
from tests.factories import readings
from tests.security.conftest import Keys, bearer, served_routes

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


# Every spelling of force: those pydantic reads as true, false and neither, and repeated
# parameters in both orders (the route reads the last one).
FORCE_SPELLINGS = ["true", "t", "y", "yes", "on", "1", "True", "TRUE", "T", "Y", "YES", "On",
                   "%74rue", "%74", "tr%75e", "force=false&force=t", "force=t&force=false",
                   "force=0&force=yes", "force=on&force=off", "false", "0", "off", "2", "",
                   "truee"]
MUST_BE_TRUE = {"true", "t", "y", "yes", "on", "1", "True", "TRUE", "%74rue",
                "force=false&force=t"}


def _query(spelling: str) -> str:
    return spelling if spelling.startswith("force=") else f"force={spelling}"


def _parsed_force(query: str) -> bool | None:
    """What the route reads: the last ``force`` (as Starlette decodes it), as pydantic
    parses a bool; None where that is no bool (a 422)."""
    from pydantic import TypeAdapter, ValidationError
    from starlette.datastructures import QueryParams

    try:
        return TypeAdapter(bool).validate_python(QueryParams(query)["force"])
    except ValidationError:
        return None


def test_no_spelling_of_force_lets_a_write_key_delete_production(
        client: TestClient, services: Services, keys: Keys,
        two_tenants: dict[str, dict[str, str]]) -> None:
    model_id = two_tenants["tenant-a"]["model_id"]
    key = services.registry.get(model_id).artifact_key
    assert key is not None
    artifact = client.get(f"/ai/models/{model_id}/artifact", headers=bearer(keys.a_read)).content
    assert {s for s in FORCE_SPELLINGS if _parsed_force(_query(s))} >= MUST_BE_TRUE
    for spelling in FORCE_SPELLINGS:
        query = _query(spelling)
        r = client.delete(f"/ai/models/{model_id}?{query}", headers=bearer(keys.a_write))
        forced = _parsed_force(query)
        expected = {True: 403, False: 409, None: 422}[forced]
        assert r.status_code == expected, (query, forced, r.status_code, r.text)
        # The version and its artifact survive every one of them.
        assert services.registry.get(model_id).stage == "production", query
        assert services.artifact_store.exists(key), query
    got = client.get(f"/ai/models/{model_id}/artifact", headers=bearer(keys.a_read))
    assert got.status_code == 200 and got.content == artifact
    # An admin key's forced delete does delete it, artifact and all.
    r = client.delete(f"/ai/models/{model_id}?force=%74rue", headers=bearer(keys.a_admin))
    assert r.status_code == 200 and r.json()["artifact_removed"] is True, r.text
    assert client.get(f"/ai/models/{model_id}", headers=bearer(keys.admin)).status_code == 404
    assert not services.artifact_store.exists(key)


# The role each route declares; the guard below fails for a route missing here.
ROLES = {
    ("POST", "/ai/features/get"): "read",
    ("POST", "/ai/features/get-batch"): "read",
    ("GET", "/ai/features/sets"): "read",
    ("POST", "/ai/features/sets"): "write",
    ("GET", "/ai/features/catalog"): "read",
    ("POST", "/ai/features/ingest"): "write",
    ("POST", "/ai/features/weather"): "write",
    ("POST", "/ai/features/export"): "read",  # a copy of the tenant's own data
    ("GET", "/ai/features/exports"): "read",
    ("GET", "/ai/features/exports/{export_id}"): "read",
    ("PUT", "/ai/assets/{asset_id}"): "write",
    ("GET", "/ai/assets/{asset_id}"): "read",
    ("GET", "/ai/assets"): "read",
    ("GET", "/ai/features/status"): "read",
    ("GET", "/ai/assets/{asset_id}/series"): "read",
    ("GET", "/ai/auth/whoami"): "read",
    ("POST", "/ai/models/register"): "write",
    ("GET", "/ai/models/"): "read",
    ("GET", "/ai/models/{model_id}"): "read",
    ("PUT", "/ai/models/{model_id}/promote"): "write",
    ("DELETE", "/ai/models/{model_id}"): "write|admin",  # admin when force is true
    ("GET", "/ai/models/{model_id}/history"): "read",
    ("PUT", "/ai/models/{model_id}/artifact"): "write",
    ("GET", "/ai/models/{model_id}/artifact"): "read",
    ("POST", "/ai/models/{model_id}/predict"): "read",
    ("GET", "/metrics"): "read",
    ("GET", "/ready"): "read",
    ("GET", "/ai/stream/status"): "read",
    ("GET", "/ai/stream/dead-letters"): "read",
}
# Served without a key (/health) or by FastAPI itself (docs): no role.
# The dashboard's page, icon and static files hold no data: they load without a key, and
# every call they make goes through the API's roles.
NO_ROLE = {"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
           "/", "/favicon.ico", "/dashboard"}


def _api_routes(app: object) -> list[tuple[str, str, list[str]]]:
    out = []
    for method, path, route in served_routes(app):
        if path in NO_ROLE:
            continue
        assert route is not None, f"{method} {path}: not a FastAPI route, so it has no role"
        out.append((method, path, declared_roles(route)))
    return out


def test_every_route_declares_exactly_one_role(client: TestClient) -> None:
    """A new route fails here until it lists ``require_role(...)`` (and is added above)."""
    routes = _api_routes(client.app)
    missing = [(m, p) for m, p, roles in routes if len(roles) != 1]
    assert not missing, f"routes without exactly one role declaration: {missing}"
    assert {(m, p): roles[0] for m, p, roles in routes} == ROLES


def test_every_route_refuses_a_key_below_its_role(client: TestClient, keys: Keys) -> None:
    """The declarations act: each write route refuses a read key (403) before it reads or
    changes anything, and the delete refuses a forced delete to a write key."""
    ids = {"{model_id}": "tenant-a:m:v1.0.0", "{asset_id}": "m1", "{export_id}": "x"}
    for (method, template), role in ROLES.items():
        path = template
        for name, value in ids.items():
            path = path.replace(name, value)
        if role == "write":
            r = client.request(method, path + "?tenant_id=tenant-a", headers=bearer(keys.a_read))
            assert r.status_code == 403, (method, path, r.status_code, r.text)
        elif role == "write|admin":
            r = client.request(method, path + "?force=1", headers=bearer(keys.a_write))
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            r = client.request(method, path, headers=bearer(keys.a_read))
            assert r.status_code == 403, (method, path, r.status_code, r.text)


def test_revocation_takes_effect_within_the_cache_ttl(client: TestClient, services: Services,
                                                      keys: Keys) -> None:
    now = [1000.0]
    services.key_cache = KeyCache(services.api_keys, ttl=10, clock=lambda: now[0])
    key, plain = services.api_keys.create(["tenant-a"], "read")
    assert client.get("/ai/models/", headers=bearer(plain)).status_code == 200
    services.api_keys.revoke(key.key_id)
    now[0] += 9.9  # trusted from memory for the TTL ...
    assert client.get("/ai/models/", headers=bearer(plain)).status_code == 200
    now[0] += 0.2  # ... and not a moment longer
    assert client.get("/ai/models/", headers=bearer(plain)).status_code == 401


def test_the_first_key_closes_an_open_service_within_the_ttl(client: TestClient,
                                                            services: Services) -> None:
    """Whether keys exist is looked up again off the request path (in the background once
    the verdict is older than the TTL); until that look lands, the old verdict holds."""
    now = [1000.0]
    services.key_cache = KeyCache(services.api_keys, ttl=10, clock=lambda: now[0])
    assert client.get("/ai/models/").status_code == 200
    services.api_keys.create(["tenant-a"], "read")
    now[0] += 5
    assert client.get("/ai/models/").status_code == 200  # within the TTL: still open
    now[0] += 6
    deadline = time.monotonic() + 10
    while client.get("/ai/models/").status_code != 401:
        assert time.monotonic() < deadline, "the new key never closed the service"
        time.sleep(0.02)


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


def test_a_flood_of_random_keys_stays_bounded(services: Services, keys: Keys) -> None:
    from aihub.auth.cache import _REFUSED_MAX

    cache = KeyCache(services.api_keys, ttl=600)
    real = cache.verify(keys.a_read)
    assert real is not None
    for i in range(_REFUSED_MAX + 2_000):
        assert cache.verify(f"aihub_flood_{i}") is None
    assert len(cache._refused) <= _REFUSED_MAX
    assert cache.cached(keys.a_read) == (True, real)  # the real key is still in memory
    assert cache.cached(f"aihub_flood_{_REFUSED_MAX + 1_999}") == (True, None)


def test_keys_are_stored_hashed(services: Services) -> None:
    _, plain = services.api_keys.create(["tenant-a"], "read")
    import sqlalchemy as sa

    with services.engine.connect() as conn:
        dump = repr(conn.execute(sa.text("SELECT * FROM api_keys")).all())
    assert plain not in dump and plain.rsplit("_", 1)[1] not in dump
