"""Every page of the dashboard in a real browser: loads with no console error and no failed
request, shows the API's data, and is screenshotted at 1280x800 and 390x844."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.dashboard.conftest import MODEL, TENANT, Hub, Visit, no_data_yet, register

PAGES = {
    "overview": "/",
    "assets": "/assets",
    "asset": "/assets/meter-001",
    "features": "/features",
    "exports": "/exports",
    "models": "/models",
    "version": f"/models/{MODEL}:v1.0.0",
    "compare": f"/models/compare/{MODEL}:v1.0.0/{MODEL}:v1.1.0",
}
EXPECT = {
    "overview": "production versions",
    "assets": "123 assets",
    "asset": "anomalous",
    "features": "forecast_basic",
    "exports": "completed",
    "models": "forecast_lgb",
    "version": "first model",
    "compare": "r2_score",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_cleanly(visit: Visit, shots: Path, name: str) -> None:
    page = visit.open(PAGES[name])
    text = page.inner_text("main")
    if name == "asset":
        text += page.get_attribute("#asset-chart", "aria-label") or ""
    assert EXPECT[name] in text, text[:2000]
    visit.shoot(shots, name)
    visit.check()


def test_root_serves_the_dashboard_without_a_cdn(hub: Hub) -> None:
    r = hub.http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/dashboard/js/app.js" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing fetched elsewhere
    assert hub.http.get("/dashboard/vendor/uplot/uPlot.esm.js").status_code == 200


def test_chart_paints_a_year_of_hourly_data(visit: Visit, hub: Hub) -> None:
    page = visit.open("/assets/meter-001")
    page.wait_for_selector("#asset-chart[data-painted]", timeout=20_000)
    label = page.get_attribute("#asset-chart", "aria-label") or ""
    hours = int(label.split(": ")[1].split(" hours")[0])
    assert hours >= 8760
    anomalous = int(label.split(", ")[1].split(" ")[0])
    assert anomalous >= 1  # the spike at least
    # Non-blank pixels: count canvas pixels that are not transparent or white.
    painted = page.evaluate("""() => {
        const c = document.querySelector('#asset-chart canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
        }
        return {n, total: d.length / 4};
    }""")
    assert painted["n"] > 0.02 * painted["total"], painted
    # The anomaly series holds the spike's hour (uPlot keeps its data on the instance).
    visit.check()


def test_asset_search_and_paging(visit: Visit) -> None:
    page = visit.open("/assets")
    page.fill("#asset-q", "meter-")
    prev = page.get_attribute("main", "data-ready")
    page.click("form[role=search] button[type=submit]")
    visit.wait_ready(prev)
    assert "3 assets starting with 'meter-'" in page.inner_text("main")
    assert page.locator("main tbody tr").count() == 3
    page = visit.open("/assets?q=site-")
    assert "Page 1 of 3" in page.inner_text("main")
    prev = page.get_attribute("main", "data-ready")
    page.get_by_role("button", name="Next").click()
    visit.wait_ready(prev)
    assert "Page 2 of 3" in page.inner_text("main")
    assert page.locator("main tbody tr").first.inner_text().startswith("site-0050")
    visit.check()


def test_models_page_pages_through_many_versions(visit: Visit, hub: Hub) -> None:
    # 120 versions of a third model: the page shows 100 versions at a time, in the API's
    # order (model name, newest version first), with a pager.
    for i in range(120):
        register(hub.http, f"v2.0.{i}", artifact=False, name="zz_many_versions")
    total = hub.http.get("/ai/models/", params={"tenant_id": TENANT, "limit": 1}).json()["total"]
    page = visit.open("/models")
    text = page.inner_text("main")
    assert f"Versions 1-100 of {total}" in text and "Page 1 of 2" in text, text[:500]
    assert page.locator("main tbody tr").count() == 100
    prev = page.get_attribute("main", "data-ready")
    page.get_by_role("button", name="Next").click()
    visit.wait_ready(prev)
    text = page.inner_text("main")
    assert "Page 2 of 2" in text and f"Versions 101-{total} of {total}" in text
    assert page.locator("main tbody tr").count() == total - 100
    # The last page ends with the oldest version of the last model.
    assert page.locator("main tbody tr").last.inner_text().split()[0] == "v2.0.0"
    visit.check()


def test_create_a_feature_set_through_the_form(visit: Visit, hub: Hub) -> None:
    page = visit.open("/features")
    page.fill("#set-name", "peak_watch")
    page.fill("#set-description", "peaks")
    page.check("#feat-lag_24h")
    page.check("#feat-hour_of_day")
    prev = page.get_attribute("main", "data-ready")
    page.click("#set-form button[type=submit]")
    visit.wait_ready(prev)
    sets = hub.http.get("/ai/features/sets", params={"tenant_id": TENANT}).json()
    assert sorted(sets["feature_sets"]["peak_watch"]["features"]) == ["hour_of_day", "lag_24h"]
    assert "peak_watch" in page.inner_text("main")
    visit.check()


def test_promote_through_the_dialog_with_the_keyboard(visit: Visit, hub: Hub) -> None:
    model_id = f"{MODEL}:v1.1.0"
    page = visit.open(f"/models/{model_id}")
    page.focus("#promote-open")
    page.keyboard.press("Enter")
    assert page.is_visible("#promote-dialog")
    assert page.evaluate("document.activeElement.id") == "promote-stage"
    page.select_option("#promote-stage", "production")
    page.keyboard.press("Tab")
    page.keyboard.type("beats v1.0.0 on last week's MAE")
    prev = page.get_attribute("main", "data-ready")
    page.focus("#promote-submit")
    page.keyboard.press("Enter")
    visit.wait_ready(prev)
    assert hub.http.get(f"/ai/models/{model_id}").json()["stage"] == "production"
    assert hub.http.get(f"/ai/models/{MODEL}:v1.0.0").json()["stage"] == "archived"
    timeline = page.inner_text("#timeline")
    assert "beats v1.0.0 on last week's MAE" in timeline and "production" in timeline
    # Escape closes the dialog without changing anything.
    page.click("#promote-open")
    page.keyboard.press("Escape")
    assert not page.is_visible("#promote-dialog")
    assert hub.http.get(f"/ai/models/{model_id}").json()["stage"] == "production"
    visit.check()


def _wait_for_problems(visit: Visit, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(visit.problems) < n and time.monotonic() < deadline:
        visit.page.evaluate("() => 1")  # a round trip lets pending events arrive


def test_only_monitorings_no_data_yet_404_is_tolerated(visit: Visit) -> None:
    page = visit.open("/")
    page.evaluate("() => fetch('/ai/models/tenant-123:m:v1.0.0/performance?group_by=none')")
    _wait_for_problems(visit, 1)
    assert visit.problems and all(no_data_yet(p) for p in visit.problems), visit.problems
    visit.check()
    seen = len(visit.problems)
    page.evaluate("() => fetch('/ai/no-such-thing')")
    _wait_for_problems(visit, seen + 1)
    with pytest.raises(AssertionError):
        visit.check()


def test_client_side_z_scores_follow_the_design(visit: Visit, hub: Hub) -> None:
    """The chart's |z| > 3 marks use DESIGN's z_score_24h: the hourly means in [H-24h, H)
    by time, sample std; checked against a plain Python computation of the same series."""
    spike_at = datetime.fromtimestamp(hub.spike_hour, UTC)
    params = {"tenant_id": TENANT, "start": (spike_at - timedelta(days=30)).isoformat(),
              "end": (spike_at + timedelta(days=1)).isoformat()}
    s = hub.http.get("/ai/assets/meter-001/series", params=params).json()
    page = visit.open("/")
    js = page.evaluate("""async (s) => {
        const m = await import('/dashboard/js/chart.js');
        return {z: m.zScores(s.hour, s.mean).z, lag: m.lagSeries(s.hour, s.mean)};
    }""", s)
    hours, values = s["hour"], s["mean"]
    for i, (t, v) in enumerate(zip(hours, values, strict=True)):
        window = [values[j] for j in range(i) if t - 86400 <= hours[j] < t]
        if len(window) < 2 or statistics.stdev(window) == 0:
            assert js["z"][i] is None, i
        else:
            want = (v - statistics.fmean(window)) / statistics.stdev(window)
            assert js["z"][i] == pytest.approx(want, rel=1e-6, abs=1e-9), i
        week = [values[j] for j in range(i) if hours[j] == t - 168 * 3600]
        assert js["lag"][i] == (week[0] if week else None)
    spike = hours.index(hub.spike_hour)
    assert abs(js["z"][spike]) > 3
    visit.check()


def test_compare_two_versions_from_the_models_page(visit: Visit) -> None:
    page = visit.open("/models")
    page.check(f"input[value='{MODEL}:v1.0.0']")
    page.check(f"input[value='{MODEL}:v1.1.0']")
    prev = page.get_attribute("main", "data-ready")
    page.locator("form", has=page.locator(f"input[value='{MODEL}:v1.0.0']")) \
        .get_by_role("button", name="Compare selected").click()
    visit.wait_ready(prev)
    heads = page.locator("main thead th").all_inner_texts()
    assert f"{MODEL}:v1.0.0" in heads and f"{MODEL}:v1.1.0" in heads
    assert "rmse" in page.inner_text("main")
    visit.check()
