"""Operators' views of forecast monitoring: the CLI tables, the Python client and the
Prometheus gauges."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aihub.client import Client
from aihub.errors import Conflict, NotFound
from aihub.services.accuracy_gauges import AccuracyGauges
from aihub.services.container import Services
from aihub.timeutil import floor_hour, utcnow
from tests.conftest import LiveServer
from tests.factories import at, ingest, iso, readings
from tests.monitoring.conftest import TENANT, Register, load
from tests.registry.models import FEATURES, lightgbm_text


def external(model_id: str, client: Any, hours: range, offset: float = 1.0) -> None:
    """Forecasts from origins ``hours`` for horizons 0..3 of meter-a: load + ``offset``."""
    rows = [{"asset_id": "meter-a", "origin": iso(at(o)), "timestamp": iso(at(o + h)),
             "value": load(o + h) + offset} for o in hours for h in range(4)]
    r = client.post(f"/ai/models/{model_id}/predictions", json={"predictions": rows})
    assert r.status_code == 200, r.text


@pytest.fixture
def monitored(client: TestClient, services: Services, register: Register,
              meters: list[str]) -> dict[str, str]:
    """Two versions with logged forecasts and one trained on an export, with predictions."""
    first, second = register("v1.0.0", artifact=False), register("v1.1.0", artifact=False)
    external(first, client, range(100, 110), 1.0)
    external(second, client, range(100, 105), -3.0)
    r = client.post("/ai/features/export", json={
        "tenant_id": TENANT, "feature_set": "forecast_basic",
        "start_time": iso(at(24)), "end_time": iso(at(24 * 8))})
    body = {"tenant_id": TENANT, "model_name": "load", "version": "v2.0.0",
            "metadata": {"feature_names": FEATURES, "export_id": r.json()["export_id"]}}
    trained = client.post("/ai/models/register", json=body).json()["model_id"]
    client.put(f"/ai/models/{trained}/artifact", content=lightgbm_text())
    for h in range(24 * 8, 24 * 9):
        client.post(f"/ai/models/{trained}/predict", json={
            "asset_ids": meters, "feature_set": "forecast_basic", "as_of": iso(at(h))})
    services.prediction_log.flush()
    return {"first": first, "second": second, "trained": trained}


def test_cli_tables(monitored: dict[str, str], settings: Any, tmp_path: Path) -> None:
    env = {"AIHUB_DATA_DIR": str(settings.data_dir), "COLUMNS": "250", "PATH": "/usr/bin:/bin",
           "EXPORT_STORAGE_PATH": settings.export_storage_path,
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}

    def aihub(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-c", "from aihub.cli import main; main()",
                               *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120)
        assert done.returncode == code, done.stdout + done.stderr
        return done

    out = aihub("models", "performance", monitored["first"], "--by", "horizon").stdout
    assert "40 logged forecasts" in out and "skill vs persistence" in out
    assert [line.split("│")[1].strip() for line in out.splitlines()
            if line.startswith("│") and line.split("│")[1].strip().isdigit()] == \
        ["0", "1", "2", "3"]
    assert "1 " in out  # mae of +1 forecasts
    # v2.0.0 forecast other hours: within this window only v1.0.0 and v1.1.0 logged any.
    out = aihub("models", "compare", f"{TENANT}:load", "--start", iso(at(100)),
                "--end", iso(at(120))).stdout
    assert "20 common rows" in out and monitored["first"] in out and monitored["second"] in out
    out = aihub("models", "drift", monitored["trained"]).stdout
    assert "48 served rows" in out and "lag_24h" in out
    bad = aihub("models", "performance", monitored["first"], "--by", "week", code=2)
    assert "--by" in bad.stderr and "Traceback" not in bad.stderr
    # Every target here is in January 2024, long past the default 400 days.
    assert "purged 108 logged predictions older than 400 days" in aihub(
        "models", "purge-predictions").stdout


@pytest.fixture
def hub(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url) as c:
        yield c


def test_client_covers_every_monitoring_endpoint(hub: Client, services: Services,
                                                 monitored: dict[str, str]) -> None:
    first = monitored["first"]
    accepted = hub.log_predictions(first, [{"asset_id": "meter-b", "origin": at(120),
                                            "timestamp": at(121), "value": 1.0}])
    assert accepted == {"accepted": 1}
    services.prediction_log.flush()
    perf = hub.performance(first, group_by="asset", start=at(0), end=at(24 * 10))
    assert [g["key"] for g in perf["groups"]] == ["meter-a", "meter-b"]
    assert perf["groups"][0]["mae"] == pytest.approx(1.0)
    compared = hub.compare_versions(TENANT, "load", start=at(100), end=at(120))
    assert compared["common_rows"] == 20 and len(compared["versions"]) == 2
    assert hub.set_shadow(monitored["second"])["shadow"] is True
    assert hub.set_shadow(monitored["second"], False)["shadow"] is False
    drift = hub.drift(monitored["trained"])
    assert drift["served_rows"] == 48 and "lag_24h" in drift["features"]
    with pytest.raises(NotFound):
        hub.performance(f"{TENANT}:load:v9.9.9")
    with pytest.raises(Conflict):
        hub.drift(first)


@pytest.mark.backends
def test_gauges_show_production_and_shadow_per_horizon_bucket(
    client: TestClient, services: Services, register: Register
) -> None:
    now = floor_hour(utcnow())
    base = now - timedelta(hours=48)
    ingest(client, TENANT, readings("g1", range(-200, 48), lambda h: 10.0 + h % 5, base=base))
    prod = register("v1.0.0", stage="production")
    shadow = register("v1.1.0", seed=1)
    client.put(f"/ai/models/{shadow}/shadow", json={"enabled": True})
    for model_id, error in ((prod, 2.0), (shadow, -1.0)):
        rows = [{"asset_id": "g1", "origin": iso(base + timedelta(hours=o)),
                 "timestamp": iso(base + timedelta(hours=o + h)),
                 "value": 10.0 + (o + h) % 5 + error}
                for o in range(0, 10) for h in (0, 3, 30)]
        client.post(f"/ai/models/{model_id}/predictions", json={"predictions": rows})
    services.prediction_log.flush()
    AccuracyGauges(services.performance, 60).run_once()
    text = client.get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("aihub_forecast_")]
    prod_mae = [line for line in lines if line.startswith("aihub_forecast_mae")
                and 'role="production"' in line and 'version="v1.0.0"' in line]
    assert {line.split('horizon="')[1].split('"')[0] for line in prod_mae} == \
        {"0", "1-6", "25-48"}
    assert all(line.endswith(" 2.0") for line in prod_mae)
    assert any('role="shadow"' in line and 'version="v1.1.0"' in line
               and line.startswith("aihub_forecast_mae") and line.endswith(" 1.0")
               for line in lines)
    assert any(line.startswith("aihub_forecast_nmae") and 'role="shadow"' in line
               for line in lines)
    assert any(line.startswith("aihub_forecast_skill") and 'baseline="persistence"' in line
               for line in lines)
