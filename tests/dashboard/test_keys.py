"""With API keys configured the dashboard asks for one and sends it on every call; a read
key sees no promote control, and a promote forged from the page is still refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aihub.api.app import create_app
from tests.conftest import LiveServer
from tests.dashboard.conftest import Visit, _services, new_visit
from tests.factories import readings
from tests.registry.models import lightgbm_text, register_body

TENANT = "tenant-k"
MODEL_ID = f"{TENANT}:forecast_lgb:v1.0.0"


@dataclass
class KeyedHub:
    url: str
    read: str
    write: str
    http: httpx.Client


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedHub]:
    svc = _services(tmp_path_factory.mktemp("dashboard-keys"))
    admin = svc.api_keys.create(["*"], "admin")[1]
    read = svc.api_keys.create([TENANT], "read")[1]
    write = svc.api_keys.create([TENANT], "write")[1]
    svc.key_cache.clear()
    with LiveServer(create_app(services=svc)) as server, httpx.Client(
        base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {admin}"}
    ) as http:
        r = http.post("/ai/features/ingest",
                      json={"tenant_id": TENANT, "readings": readings("m1", range(72))})
        assert r.status_code == 200, r.text
        r = http.post("/ai/models/register", json=register_body("v1.0.0", tenant=TENANT))
        assert r.status_code == 201, r.text
        r = http.put(f"/ai/models/{MODEL_ID}/artifact", content=lightgbm_text())
        assert r.status_code == 200, r.text
        yield KeyedHub(server.url, read, write, http)
    svc.close()


@pytest.fixture
def tab(browser: Any, keyed: KeyedHub) -> Iterator[Visit]:
    v = new_visit(browser, keyed.url)
    yield v
    v.page.context.close()


def _with_key(tab: Visit, key: str) -> None:
    tab.page.context.add_init_script(
        f"sessionStorage.setItem('aihub.key', {key!r});"
        f" localStorage.setItem('aihub.tenant', {TENANT!r});")


def test_the_dashboard_asks_for_a_key_and_then_uses_it(tab: Visit, keyed: KeyedHub) -> None:
    # The first calls answer 401 (that is how the page learns a key is needed).
    tab.allowed = lambda m: "401" in m
    page = tab.page
    page.goto(f"{keyed.url}/#/models")
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", "not-a-key")
    page.keyboard.press("Enter")
    page.wait_for_selector("#key-error:has-text('refused')")
    page.fill("#key-input", keyed.read)
    page.keyboard.press("Enter")
    page.wait_for_selector("main[data-ready]:not([aria-busy])")
    assert "forecast_lgb" in page.inner_text("main")
    assert page.evaluate("sessionStorage.getItem('aihub.key')") == keyed.read
    page.wait_for_selector("#who:has-text('read')")
    tab.check()


def test_a_read_key_sees_no_promote_control_and_a_forged_promote_is_refused(
    tab: Visit, keyed: KeyedHub
) -> None:
    _with_key(tab, keyed.read)
    tab.allowed = lambda m: "403" in m  # the forged call below
    page = tab.open(f"/models/{MODEL_ID}")
    assert "staging" in page.inner_text("main")
    assert page.locator("#promote-open").count() == 0
    assert page.locator("#set-form").count() == 0
    status = page.evaluate("""async (id) => {
        const r = await fetch(`/ai/models/${encodeURIComponent(id)}/promote`, {
            method: 'PUT',
            headers: {'Content-Type': 'application/json',
                      Authorization: `Bearer ${sessionStorage.getItem('aihub.key')}`},
            body: JSON.stringify({target_stage: 'production', reason: 'forged'})});
        return r.status;
    }""", MODEL_ID)
    assert status == 403
    assert keyed.http.get(f"/ai/models/{MODEL_ID}").json()["stage"] == "staging"
    tab.check()


def test_a_write_key_sees_the_promote_control(tab: Visit, keyed: KeyedHub) -> None:
    _with_key(tab, keyed.write)
    page = tab.open(f"/models/{MODEL_ID}")
    assert page.locator("#promote-open").count() == 1
    page.wait_for_selector("#who:has-text('write')")
    tab.check()


def test_the_export_download_sends_the_key(tab: Visit, keyed: KeyedHub) -> None:
    import io
    from pathlib import Path

    import pyarrow.parquet as pq

    r = keyed.http.post("/ai/features/export", json={
        "tenant_id": TENANT, "feature_set": "forecast_basic",
        "start_time": "2024-01-02T00:00:00Z",
        "end_time": "2024-01-04T00:00:00Z"})
    assert r.status_code == 200, r.text
    record = r.json()
    # without the key the file is refused ...
    assert httpx.get(f"{keyed.url}/ai/features/exports/{record['export_id']}/file"
                     ).status_code == 401
    # ... and the page's download carries it
    _with_key(tab, keyed.read)
    page = tab.open("/exports")
    with page.expect_download() as info:
        page.get_by_role("link", name=f"Download {record['export_id']}").click()
    table = pq.read_table(io.BytesIO(Path(info.value.path()).read_bytes()))
    assert table.num_rows == record["row_count"] == 48
    tab.check()
