"""GET /ai/auth/whoami names the calling key's role and tenants; the dashboard's page and
files are served without a key, the data behind them is not."""

from __future__ import annotations

import gzip
from pathlib import Path

from fastapi.testclient import TestClient

from aihub.dashboard import STATIC
from aihub.services.container import Services

MAX_SHIPPED_GZIP = 250 * 1024


def test_whoami_without_keys_is_open_admin(client: TestClient) -> None:
    r = client.get("/ai/auth/whoami")
    assert r.status_code == 200, r.text
    assert r.json() == {"key_id": None, "role": "admin", "tenants": ["*"],
                        "keys_required": False}


def test_whoami_names_the_key(client: TestClient, services: Services) -> None:
    key, plain = services.api_keys.create(["tenant-a", "tenant-b"], "read")
    services.key_cache.clear()
    assert client.get("/ai/auth/whoami").status_code == 401
    r = client.get("/ai/auth/whoami", headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 200, r.text
    assert r.json() == {"key_id": key.key_id, "role": "read",
                        "tenants": ["tenant-a", "tenant-b"], "keys_required": True}


def test_dashboard_files_need_no_key_but_the_api_still_does(
    client: TestClient, services: Services
) -> None:
    _, plain = services.api_keys.create(["tenant-a"], "read")
    services.key_cache.clear()
    assert client.get("/").status_code == 200
    assert client.get("/dashboard/js/app.js").status_code == 200
    assert client.get("/dashboard/%2e%2e/%2e%2e/config.py").status_code == 404
    assert client.get("/ai/assets", params={"tenant_id": "tenant-a"}).status_code == 401
    # A read key can't promote, however the request is crafted.
    r = client.put("/ai/models/tenant-a:m:v1.0.0/promote",
                   headers={"Authorization": f"Bearer {plain}"},
                   json={"target_stage": "production", "reason": "forged"})
    assert r.status_code == 403, r.text


def test_shipped_js_and_css_stay_small() -> None:
    files = [p for p in Path(STATIC).rglob("*") if p.suffix in {".js", ".css", ".html", ".svg"}]
    assert any(p.name == "uPlot.esm.js" for p in files)
    total = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    assert total <= MAX_SHIPPED_GZIP, f"{total} bytes gzipped"
    assert (Path(STATIC) / "vendor" / "uplot" / "LICENSE").read_text().startswith("The MIT")


def test_every_module_is_preloaded() -> None:
    """index.html preloads every ES module, so the browser fetches them in parallel."""
    index = (Path(STATIC) / "index.html").read_text()
    for p in Path(STATIC).rglob("*.js"):
        rel = p.relative_to(STATIC).as_posix()
        assert f'<link rel="modulepreload" href="/dashboard/{rel}">' in index, rel


def test_series_keeps_to_the_keys_tenants(client: TestClient, services: Services) -> None:
    from tests.factories import at, ingest, iso, readings

    for tenant in ("tenant-a", "tenant-b"):
        ingest(client, tenant, readings("m1", range(24)))
    _, plain = services.api_keys.create(["tenant-a"], "read")
    services.key_cache.clear()
    auth = {"Authorization": f"Bearer {plain}"}
    span = {"start": iso(at(0)), "end": iso(at(24))}
    own = client.get("/ai/assets/m1/series", headers=auth,
                     params={"tenant_id": "tenant-a", **span})
    assert own.status_code == 200 and own.json()["count"] == 24
    other = client.get("/ai/assets/m1/series", headers=auth,
                       params={"tenant_id": "tenant-b", **span})
    assert other.status_code == 404, other.text
