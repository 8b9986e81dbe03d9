"""Dashboard benchmarks in a real browser (Debian's chromium via Playwright, headless).

    .venv/bin/python bench/bench_dashboard.py [--loads 10] [--versions 1000]

``aihub serve`` runs as a subprocess on the embedded default with the demo tenant's data
(3 meters, a year of hourly readings) and 1,000 versions of one model. Each figure is the
median of ``--loads`` fresh page loads, read in the browser with the Performance API:
- asset page: navigation start -> the uPlot chart's first draw (``aihub:chart-painted``);
- models page with 1,000 versions: navigation start -> page rendered (``aihub:ready``);
- floor: the same app rendering its "not found" page (HTML, CSS and modules loaded, no API
  call), measured the same way in the same run.
Results replace the "Dashboard" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import AIHUB, free_port, machine, process, write_section

from aihub.config import Settings
from aihub.demo.generator import DemoSpec
from aihub.demo.loader import load_demo
from aihub.services.container import build_services

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TENANT = "tenant-123"


def seed(data: Path) -> None:
    svc = build_services(Settings(AIHUB_DATA_DIR=data / "data",
                                  EXPORT_STORAGE_PATH=str(data / "exports")))
    try:
        load_demo(svc, DemoSpec(assets=3, hours=24 * 366))
    finally:
        svc.close()


def register_versions(base: str, n: int) -> None:
    with httpx.Client(base_url=base, timeout=60) as http:
        for i in range(n):
            r = http.post("/ai/models/register", json={
                "tenant_id": TENANT, "model_name": "forecast_lgb",
                "version": f"v1.{i // 100}.{i % 100}",
                "metadata": {"model_type": "LightGBM", "framework": "lightgbm"},
                "metrics": {"rmse": 2.5 + i / 1000, "mae": 1.8, "r2_score": 0.92}})
            r.raise_for_status()


def measure(page: object, url: str, wait: str, mark: str, loads: int) -> list[float]:
    out = []
    for _ in range(loads):
        page.goto("about:blank")  # type: ignore[attr-defined]
        page.goto(url)  # type: ignore[attr-defined]
        page.wait_for_selector(wait, timeout=30_000)  # type: ignore[attr-defined]
        ms = page.evaluate(  # type: ignore[attr-defined]
            "m => performance.getEntriesByName(m)[0].startTime", mark)
        out.append(float(ms))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--versions", type=int, default=1000)
    opts = parser.parse_args()
    from playwright.sync_api import sync_playwright

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        seed(data)
        port = free_port()
        env = {"AIHUB_DATA_DIR": str(data / "data"), "EXPORT_STORAGE_PATH": str(data / "exports")}
        with process([AIHUB, "serve", "--port", str(port), "--log-level", "warning"], env, port):
            base = f"http://127.0.0.1:{port}"
            register_versions(base, opts.versions)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                ready = "main[data-ready]:not([aria-busy])"
                floor = measure(page, f"{base}/#/no-such-page", ready, "aihub:ready", opts.loads)
                chart = measure(page, f"{base}/#/assets/meter-001", "#asset-chart[data-painted]",
                                "aihub:chart-painted", opts.loads)
                models = measure(page, f"{base}/#/models", ready, "aihub:ready", opts.loads)
                rows = page.locator("main tbody tr").count()
                browser.close()
    med = {k: statistics.median(v) for k, v in
           (("floor", floor), ("chart", chart), ("models", models))}
    spread = {k: f"{min(v):.0f}-{max(v):.0f}" for k, v in
              (("floor", floor), ("chart", chart), ("models", models))}
    def row(label: str, key: str, target: float | None) -> str:
        ratio = f" ({med[key] / med['floor']:.1f}x floor)" if key != "floor" else ""
        verdict = "" if target is None else ("ok" if med[key] <= target else "MISSED")
        goal = f"<= {target:.0f} ms" if target is not None else ""
        return f"| {label} | {med[key]:.0f} ms{ratio} | {spread[key]} ms | {goal} | {verdict} |"

    body = "\n".join([
        f"Run: `.venv/bin/python bench/bench_dashboard.py` ({started}). Machine: {info}.",
        "`aihub serve` (one worker, embedded default) in a subprocess; headless Debian",
        "chromium via Playwright on the same cores. Median of "
        f"{opts.loads} fresh loads each, from navigation start, read with the Performance",
        "API in the page.",
        "",
        "| measurement | median | range | target | |",
        "|---|---|---|---|---|",
        row("floor: the app's \"not found\" page (HTML + CSS + modules, no API call)",
            "floor", None),
        row("asset page, a year of hourly data (8,760+ points x 5 series): chart painted",
            "chart", 500),
        row(f"models page with {opts.versions:,} versions ({rows:,} rows rendered)",
            "models", 300),
    ]) + "\n"
    write_section("Dashboard", body)
    print(body)


if __name__ == "__main__":
    main()
