"""The online cache never serves features older than the data: an ingest in this process is
seen by the next read, a CLI import in another process into the same SQLite file within the
change-follow interval (a background thread, never the request); a fill racing an ingest
never writes stale features back; entries expire after the TTL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from aihub.services.container import Services
from tests.factories import at, ingest, ingest_weather, iso, put_asset, readings, weather

T = "tenant-cache"
AIHUB = str(Path(sys.executable).parent / "aihub")


def get(client: Any, asset: str = "m1", h: float = 30, feature_set: str = "forecast_basic",
        ) -> dict[str, Any]:
    r = client.post("/ai/features/get", json={"tenant_id": T, "asset_id": asset,
                                              "feature_set": feature_set, "as_of": iso(at(h))})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def computes(monkeypatch: pytest.MonkeyPatch, services: Services) -> list[int]:
    """Counts feature computations (cache misses) made by the service."""
    calls: list[int] = []
    frame = services.features.frame

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return frame(*args, **kwargs)

    monkeypatch.setattr(services.features, "frame", counting)
    return calls


def test_a_read_after_an_ingest_sees_it(client: TestClient, computes: list[int]) -> None:
    ingest(client, T, readings("m1", range(0, 30), lambda h: 1.0))
    first = get(client)
    assert get(client) == first  # served from the cache
    assert len(computes) == 1
    assert first["features"]["lag_1h"] == 1.0

    ingest(client, T, readings("m1", [29], lambda h: 2.0))
    assert get(client)["features"]["lag_1h"] == 2.0
    # The batch form shares the cache and its invalidation.
    ingest(client, T, readings("m1", [29], lambda h: 3.0))
    r = client.post("/ai/features/get-batch", json={"tenant_id": T, "asset_ids": ["m1"],
                                                    "as_of": iso(at(30))})
    assert r.json()["results"][0]["features"]["lag_1h"] == 3.0
    assert get(client)["features"]["lag_1h"] == 3.0


def test_other_assets_stay_cached(client: TestClient, computes: list[int]) -> None:
    ingest(client, T, readings("m1", range(0, 30)) + readings("m2", range(0, 30)))
    get(client, "m1"), get(client, "m2")
    ingest(client, T, readings("m1", [29], lambda h: -1.0))
    n = len(computes)
    get(client, "m2")
    assert len(computes) == n  # m2 untouched: still a hit
    assert get(client, "m1")["features"]["lag_1h"] == -1.0


def test_asset_and_weather_changes_invalidate(client: TestClient) -> None:
    ingest(client, T, readings("m1", range(0, 30)))
    assert get(client)["features"]["hour_of_day"] == 6
    put_asset(client, T, "m1", timezone="Asia/Tokyo", location_id="loc")
    assert get(client)["features"]["hour_of_day"] == 15
    adv = get(client, feature_set="forecast_advanced")["features"]
    assert adv["temperature"] is None
    ingest_weather(client, T, weather("loc", [29], temperature=lambda h: 7.5))
    assert get(client, feature_set="forecast_advanced")["features"]["temperature"] == 7.5


def test_a_fill_racing_an_ingest_never_caches_stale_features(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(client, T, readings("m1", range(0, 30), lambda h: 1.0))
    frame = services.features.frame
    raced: list[int] = []

    def read_then_ingest(*args: Any, **kwargs: Any) -> Any:
        out = frame(*args, **kwargs)  # features computed from the old data ...
        if not raced:  # ... and an ingest commits before they reach the cache
            raced.append(1)
            ingest(client, T, readings("m1", [29], lambda h: 5.0))
        return out

    monkeypatch.setattr(services.features, "frame", read_then_ingest)
    assert get(client)["features"]["lag_1h"] == 1.0  # computed before the ingest: fine once
    assert get(client)["features"]["lag_1h"] == 5.0  # but never served again after it


@pytest.mark.embedded_only  # drives the in-process cache's clock; Redis keeps real time
def test_entries_expire_after_the_ttl(client: TestClient, services: Services,
                                      computes: list[int]) -> None:
    clock = [1000.0]
    services.online._now = lambda: clock[0]  # type: ignore[attr-defined]
    ttl = services.settings.feature_cache_ttl
    ingest(client, T, readings("m1", range(0, 30)))
    get(client)
    clock[0] += ttl - 1
    get(client)
    assert len(computes) == 1
    clock[0] += 2
    get(client)
    assert len(computes) == 2


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("asset_id,ts,value\n" + "".join(
        f"{r['asset_id']},{r['ts']},{r['value']}\n" for r in rows))
    return path


def _cli(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AIHUB, *args], env={**os.environ, **settings_env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.embedded_only  # the shared-SQLite-file case; production: tests/production
def test_cli_ingest_in_another_process_is_seen_by_the_running_server(
    http: httpx.Client, live_server: Any, services: Services, tmp_path: Path,
    computes: list[int],
) -> None:
    env = {"AIHUB_DATA_DIR": str(services.settings.data_dir),
           "EXPORT_STORAGE_PATH": services.settings.export_storage_path}
    seed = _csv(tmp_path / "seed.csv", readings("m1", range(0, 30), lambda h: 1.0))
    done = _cli(env, "ingest", "readings", str(seed), "--tenant", T)
    assert done.returncode == 0, done.stderr
    # Let the follower see the seed's write first: otherwise its invalidation may land
    # between the two gets below (a loaded machine), and the second would recompute.
    follower = live_server.server.config.app.state.background["aihub-change-follower"]
    assert follower.wait_for_rounds(follower.rounds + 2, timeout=30), "the follower stalled"

    first = get(http)
    assert first["features"]["lag_1h"] == 1.0
    assert get(http) == first and len(computes) == 1  # cached in the server process

    fix = _csv(tmp_path / "fix.csv", readings("m1", [29], lambda h: 9.0))
    done = _cli(env, "ingest", "readings", str(fix), "--tenant", T)
    assert done.returncode == 0, done.stderr
    # The server's follower thread (every AIHUB_CHANGE_FOLLOW_INTERVAL, 0.5 s) finds the
    # write in the change feed and drops the entry; lookups never query for it. Two more
    # rounds: at least one began after the CLI's commit.
    assert follower.wait_for_rounds(follower.rounds + 2, timeout=30), "the follower stalled"
    assert get(http)["features"]["lag_1h"] == 9.0


@pytest.mark.embedded_only
def test_a_lookup_never_reads_the_change_feed(client: TestClient, services: Services,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Hot lookups stay in memory: the change feed is the follower thread's business."""
    ingest(client, T, readings("m1", range(0, 30)))
    get(client)
    calls: list[int] = []
    changes_since = services.timeseries.changes_since
    monkeypatch.setattr(services.timeseries, "changes_since",
                        lambda cursor: (calls.append(1), changes_since(cursor))[1])
    for _ in range(50):
        get(client)
        client.post("/ai/features/get-batch", json={"tenant_id": T, "asset_ids": ["m1"],
                                                    "as_of": iso(at(30))})
    # At most the follower's own rounds (every 0.5 s), never one per request (100 here).
    assert len(calls) < 50


def test_ttl_zero_disables_the_cache(tmp_path: Path) -> None:
    from aihub.api.app import create_app
    from aihub.config import Settings
    from aihub.services.container import build_services

    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path / "d", FEATURE_CACHE_TTL=0,
                                  EXPORT_STORAGE_PATH=str(tmp_path / "e")))
    try:
        with TestClient(create_app(services=svc)) as c:
            ingest(c, T, readings("m1", range(0, 30)))
            counted: list[int] = []
            frame: Callable[..., Any] = svc.features.frame
            svc.features.frame = lambda *a, **k: (counted.append(1), frame(*a, **k))[1]  # type: ignore[method-assign]
            get(c), get(c)
            assert len(counted) == 2
    finally:
        svc.close()
