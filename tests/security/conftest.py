"""Security fixtures: two tenants with data, exports and models, and keys for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from aihub.services.container import Services
from tests.factories import readings
from tests.registry.models import FEATURES, lightgbm_text, register_body


@dataclass
class Keys:
    admin: str  # '*' admin
    a_read: str
    a_write: str
    a_admin: str
    b_write: str


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def seed_tenant(client: TestClient, tenant: str, headers: dict[str, str]) -> dict[str, str]:
    """Readings for m1, an export and a production model; returns their ids."""
    r = client.post("/ai/features/ingest", headers=headers, json={
        "tenant_id": tenant, "readings": readings("m1", range(24 * 9))})
    assert r.status_code == 200, r.text
    r = client.post("/ai/features/export", headers=headers, json={
        "tenant_id": tenant, "feature_set": "forecast_basic",
        "start_time": "2024-01-08T00:00:00Z", "end_time": "2024-01-09T00:00:00Z"})
    assert r.status_code == 200, r.text
    export_id = r.json()["export_id"]
    r = client.post("/ai/models/register", headers=headers,
                    json=register_body("v1.0.0", tenant=tenant))
    assert r.status_code == 201, r.text
    model_id = r.json()["model_id"]
    r = client.put(f"/ai/models/{model_id}/artifact", headers=headers, content=lightgbm_text())
    assert r.status_code == 200, r.text
    r = client.put(f"/ai/models/{model_id}/promote", headers=headers,
                   json={"target_stage": "production", "reason": "seed"})
    assert r.status_code == 200, r.text
    return {"export_id": export_id, "model_id": model_id}


def served_routes(app: Any) -> list[tuple[str, str, Any]]:
    """``(method, path, route)`` for every route ``app`` serves (``route`` is None for one
    that is not a FastAPI route), however FastAPI lays out included routers (from 0.165
    ``app.routes`` holds the routers, resolved lazily; before, the routes themselves)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:  # older FastAPI: the routes are all in app.routes
        contexts: list[Any] = list(app.routes)
    else:
        contexts = list(iter_route_contexts(app.routes))
    out = []
    for ctx in contexts:
        route = getattr(ctx, "original_route", ctx)
        api = ctx if isinstance(route, APIRoute) else None
        for method in sorted(getattr(ctx, "methods", None) or ["*"]):
            out.append((method, str(ctx.path), api))
    return out


@pytest.fixture
def keys(services: Services) -> Keys:
    make = services.api_keys.create
    services.key_cache.clear()  # a running server notices new keys within its TTL
    return Keys(
        admin=make(["*"], "admin")[1],
        a_read=make(["tenant-a"], "read")[1],
        a_write=make(["tenant-a"], "write")[1],
        a_admin=make(["tenant-a", "tenant-c"], "admin")[1],
        b_write=make(["tenant-b"], "write")[1],
    )


@pytest.fixture
def two_tenants(client: TestClient, keys: Keys) -> dict[str, dict[str, str]]:
    return {t: seed_tenant(client, t, bearer(keys.admin)) for t in ("tenant-a", "tenant-b")}


__all__ = ["FEATURES", "Keys", "bearer", "seed_tenant", "served_routes"]
