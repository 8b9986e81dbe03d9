"""``aihub demo``: the full loop from data to a plotted forecast, on a temporary data dir."""

from __future__ import annotations

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
           str(tmp_path / "exports"), "COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    plot = tmp_path / "forecast.png"
    done = subprocess.run(
        [sys.executable, "-c", "from aihub.cli import main; main()", "demo", "--assets", "3",
         "--days", "21", "--meters", "2", "--plot", str(plot)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "forecast, next 24 hours" in done.stdout
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
