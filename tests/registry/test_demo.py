"""``aihub demo``: the full loop from data to a plotted forecast, on a temporary data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from aihub.config import Settings
from aihub.services.container import build_services
from aihub.stores.metadata.models import VersionFilter


@pytest.mark.slow
def test_demo_runs_the_full_loop(tmp_path: Path) -> None:
    env = {"AIHUB_DATA_DIR": str(tmp_path / "data"), "EXPORT_STORAGE_PATH":
           str(tmp_path / "exports"), "COLUMNS": "200", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    plot = tmp_path / "forecast.png"
    done = subprocess.run(
        [sys.executable, "-c", "from aihub.cli import main; main()", "demo", "--assets", "3",
         "--days", "21", "--meters", "2", "--plot", str(plot)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "forecast, next 24 hours" in done.stdout
    assert "held-out week, day-ahead" in done.stdout  # trained as known at the origin ...
    assert "the leaky backtest reports" in done.stdout  # ... and the leak, scored beside it
    assert "promoted tenant-123:demo_forecast:v" in done.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path / "data"))
    try:
        [model], _ = svc.registry.list(VersionFilter("tenant-123", "demo_forecast",
                                                     "production"), limit=10, offset=0)
        assert set(model.metrics) == {"rmse", "mae", "r2_score", "mape"}
        assert model.metrics["r2_score"] > 0.5
        trained = model.metadata["training_date_range"]["end"]
        evaluated = model.metadata["evaluation_date_range"]["start"]
        assert datetime.fromisoformat(trained) < datetime.fromisoformat(evaluated)
        assert model.artifact_format == "lightgbm"
    finally:
        svc.close()
    # 24 forecast rows for each of the 2 meters
    table_rows = [line for line in done.stdout.splitlines() if line.startswith("│ 20")]
    assert len(table_rows) == 24


@pytest.mark.slow
def test_demo_data_carries_what_was_known_when(tmp_path: Path) -> None:
    """Forecasts issued twice a day with error growing with lead time, observations after
    them, a late meter and estimates corrected later: the versions are in the store."""
    from aihub.demo.generator import DemoSpec
    from aihub.demo.loader import load_demo

    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path / "data"))
    try:
        spec = DemoSpec(assets=3, hours=24 * 14)
        load_demo(svc, spec)
        w = svc.timeseries.load_weather_versions(spec.tenant_id, [spec.location_id], 0, 2**62)
        per_ts = w.group_by("ts").len()
        assert per_ts.get_column("len").max() >= 5  # 4 forecasts and the observation
        keys = [a.key for a in svc.timeseries.get_assets(spec.tenant_id, spec.asset_ids())]
        versions = svc.timeseries.load_reading_versions(keys, 0, 2**62)
        assert versions.height > spec.assets * spec.hours  # corrections kept as versions
        assert (versions.get_column("quality") == 1).sum() > 0  # estimates
        late = svc.timeseries.load_hour_marks(keys, 0, 2**62)
        assert late.filter(late.get_column("known_at") - late.get_column("hour")
                           > 12 * 3_600_000_000).height > 100  # the meter a day late
    finally:
        svc.close()
