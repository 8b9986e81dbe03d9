"""Browser tests of the dashboard: Debian's chromium driven by Playwright for Python
(``executable_path``; no browser download), one browser per session, against a real
uvicorn serving the app on a loopback port with a year of hourly demo data."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.demo.generator import DemoSpec
from aihub.demo.loader import load_demo
from aihub.services.container import Services, build_services
from tests.conftest import LiveServer
from tests.registry.models import lightgbm_text, register_body

CHROMIUM = os.environ.get("AIHUB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TENANT = "tenant-123"
MODEL = f"{TENANT}:forecast_lgb"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def _browser_available() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()


if not _browser_available():  # pragma: no cover - CI installs chromium (.ci/run)
    if os.environ.get("AIHUB_REQUIRE_BROWSER"):  # set by .ci/run
        raise RuntimeError(f"dashboard tests need chromium at {CHROMIUM} and playwright")
    pytest.skip(f"no chromium at {CHROMIUM} (install it: apt-get install chromium)",
                allow_module_level=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots go to ``$AIHUB_DASHBOARD_SHOTS`` or the session's temporary folder."""
    out = Path(os.environ.get("AIHUB_DASHBOARD_SHOTS")
               or tmp_path_factory.mktemp("dashboard-screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _services(tmp: Path) -> Services:
    return build_services(Settings(AIHUB_DATA_DIR=tmp / "data",
                                   EXPORT_STORAGE_PATH=str(tmp / "exports")))


def register(http: httpx.Client, version: str, *, artifact: bool = True, **kw: str) -> str:
    r = http.post("/ai/models/register", json=register_body(version, **kw))
    assert r.status_code == 201, r.text
    model_id = str(r.json()["model_id"])
    if artifact:
        up = http.put(f"/ai/models/{model_id}/artifact", content=lightgbm_text())
        assert up.status_code == 200, up.text
    return model_id


@dataclass
class Hub:
    url: str
    services: Services
    http: httpx.Client
    spike_hour: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """An open aihub (no keys) with the demo tenant: 3 meters x a year of hourly readings,
    one spike, 120 more assets (paging), two models (production + staging) and an export."""
    tmp = tmp_path_factory.mktemp("dashboard-hub")
    svc = _services(tmp)
    load_demo(svc, DemoSpec(assets=3, hours=24 * 366))
    with LiveServer(create_app(services=svc)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        status = http.get("/ai/features/status", params={"tenant_id": TENANT}).json()
        last = status["last_reading"]
        # A spike 1,000 hours before the end: |z| > 3 for sure.
        from datetime import datetime, timedelta

        spike = datetime.fromisoformat(last) - timedelta(hours=1000)
        r = http.post("/ai/features/ingest", json={"tenant_id": TENANT, "readings": [
            {"asset_id": "meter-001", "ts": spike.isoformat(), "value": 400.0}]})
        assert r.status_code == 200, r.text
        rows = [{"asset_id": f"site-{i:04d}", "ts": last, "value": 1.0} for i in range(120)]
        assert http.post("/ai/features/ingest",
                         json={"tenant_id": TENANT, "readings": rows}).status_code == 200
        end = datetime.fromisoformat(last)
        r = http.post("/ai/features/export", json={
            "tenant_id": TENANT, "feature_set": "forecast_basic", "asset_ids": ["meter-001"],
            "start_time": (end - timedelta(days=7)).isoformat(), "end_time": end.isoformat()})
        assert r.status_code in (200, 201), r.text
        export_id = r.json()["export_id"]
        # v1 names its training export (drift), is promoted, and forecasts the last two
        # days of two meters through the production alias (logged: accuracy, the chart).
        body = register_body("v1.0.0")
        body["metadata"] = {**body["metadata"], "export_id": export_id}  # type: ignore[dict-item]
        r = http.post("/ai/models/register", json=body)
        assert r.status_code == 201, r.text
        v1 = r.json()["model_id"]
        assert http.put(f"/ai/models/{v1}/artifact", content=lightgbm_text()).status_code == 200
        r = http.put(f"/ai/models/{v1}/promote",
                     json={"target_stage": "production", "reason": "first model"})
        assert r.status_code == 200, r.text
        for hours_back in range(48, 0, -1):
            r = http.post(f"/ai/models/{TENANT}:forecast_lgb:production/predict", json={
                "asset_ids": ["meter-001", "meter-002"], "feature_set": "forecast_basic",
                "as_of": (end - timedelta(hours=hours_back)).isoformat()})
            assert r.status_code == 200, r.text
        register(http, "v1.1.0")
        register(http, "v0.1.0", artifact=False, name="anomaly_iforest")
        svc.prediction_log.flush()
        yield Hub(server.url, svc, http, spike_hour=int(spike.timestamp()))
    svc.close()


def no_data_yet(problem: str) -> bool:
    """Forecast monitoring answers 404 for a version with no scored forecasts yet: the
    dashboard shows "no data yet" for it, so that 404 is expected, not a failure."""
    return "404" in problem and bool(re.search(r"/ai/models/[^/ ]+/(performance|drift)", problem))


@dataclass
class Visit:
    """A browser tab that records console errors, page errors and failed requests."""

    page: Any
    base: str
    problems: list[str] = field(default_factory=list)
    allowed: Callable[[str], bool] = lambda _m: False

    def open(self, route: str) -> Any:
        self.page.goto(f"{self.base}/#{route}")
        self.page.wait_for_selector("main[data-ready]:not([aria-busy])", timeout=20_000)
        return self.page

    def wait_ready(self, previous: str | None) -> None:
        self.page.wait_for_function(
            "p => { const m = document.querySelector('main');"
            " return m.dataset.ready && m.dataset.ready !== p && !m.hasAttribute('aria-busy'); }",
            arg=previous, timeout=20_000)

    def check(self) -> None:
        bad = [p for p in self.problems if not self.allowed(p) and not no_data_yet(p)]
        assert not bad, "\n".join(bad)
        assert self.page.locator("main .error[role=alert]").count() == 0, \
            self.page.inner_text("main")

    def shoot(self, out: Path, name: str) -> None:
        for size, (w, hgt) in SIZES.items():
            self.page.set_viewport_size({"width": w, "height": hgt})
            self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            self.page.screenshot(path=str(out / f"{name}-{size}.png"), full_page=True)
        self.page.set_viewport_size({"width": 1280, "height": 800})


def new_visit(browser: Any, base: str) -> Visit:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    v = Visit(page, base)
    page.on("console", lambda m: v.problems.append(
        f"console {m.type}: {m.text} ({m.location.get('url')})") if m.type == "error" else None)
    page.on("pageerror", lambda e: v.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: v.problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: v.problems.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None)
    return v


@pytest.fixture
def visit(browser: Any, hub: Hub) -> Iterator[Visit]:
    v = new_visit(browser, hub.url)
    yield v
    v.page.context.close()
