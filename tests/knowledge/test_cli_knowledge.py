"""The CLI end to end: backfill readings with knowledge times and quality flags, weather
with issue times, then export at origins and horizons as known at the origin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tests.registry.test_cli import aihub

__all__ = ["aihub"]

T0 = datetime(2024, 3, 25, tzinfo=UTC)


def test_backfill_and_export_at_origins(aihub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hours = [T0 + timedelta(hours=h) for h in range(24 * 10)]
    pl.DataFrame({
        "meter": ["m1"] * len(hours),
        "time": [h.isoformat() for h in hours],
        "kwh": [1.0 + (h.hour % 5) for h in hours],
        "arrived": [(h + timedelta(hours=30)).isoformat() for h in hours],
        "flag": ["estimated" if h.hour == 3 else "actual" for h in hours],
    }).write_csv(tmp_path / "r.csv")
    out = aihub("ingest", "readings", str(tmp_path / "r.csv"), "-t", "t1", "--asset-col",
                "meter", "--ts-col", "time", "--value-col", "kwh", "--known-at-col", "arrived",
                "--quality-col", "flag").stdout
    assert "accepted 240" in out
    pl.DataFrame({"location_id": ["l1"], "ts": [T0.isoformat()], "temperature": [3.0],
                  "issued": [(T0 - timedelta(days=1)).isoformat()]}).write_csv(tmp_path / "w.csv")
    assert "accepted 1" in aihub("ingest", "weather", str(tmp_path / "w.csv"), "-t", "t1",
                                 "--issued-at-col", "issued").stdout
    out = aihub("export", "-t", "t1", "--start", "2024-03-28T00:00:00Z", "--end",
                "2024-04-03T00:00:00Z", "--origins-every", "24", "--origins-at", "10:00",
                "--origins-timezone", "Europe/Berlin", "--horizons", "14..37",
                "--as-known", "origin").stdout
    path = out.split("-> ")[1].split()[0]
    table = pq.read_table(tmp_path / path).to_pylist()
    assert {r["horizon"] for r in table} == set(range(14, 38))
    # Readings arrive 30 h late: at a 10:00 origin, yesterday's load is not known yet.
    assert all(r["lag_24h"] is None for r in table)
    assert {r["target_quality"] for r in table} == {"actual", "estimated"}
    listed = aihub("exports", "-t", "t1").stdout
    assert "h 14..37" in listed and "origin" in listed
    bad = aihub("export", "-t", "t1", "--start", "2024-03-28T00:00:00Z", "--end",
                "2024-04-03T00:00:00Z", "--horizons", "x", ok=False)
    assert bad.returncode == 2 and "--horizons" in bad.stderr
