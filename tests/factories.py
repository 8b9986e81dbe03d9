"""Test data builders in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from aihub.timeutil import to_us

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(hours: float, base: datetime = T0) -> datetime:
    return base + timedelta(hours=hours)


def readings(
    asset_id: str,
    hours: Iterable[float],
    value: Callable[[float], float] = lambda h: float(h),
    base: datetime = T0,
) -> list[dict[str, Any]]:
    """JSON rows for ``/ai/features/ingest``: one reading at each offset (in hours)."""
    return [
        {"asset_id": asset_id, "ts": at(h, base).isoformat().replace("+00:00", "Z"),
         "value": value(h)}
        for h in hours
    ]


def readings_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The same rows as a frame for ``IngestService.ingest_readings``."""
    return pl.DataFrame(
        {
            "asset_id": [r["asset_id"] for r in rows],
            "ts": [to_us(datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))) for r in rows],
            "value": [float(r["value"]) for r in rows],
        },
        schema={"asset_id": pl.String, "ts": pl.Int64, "value": pl.Float64},
    )


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")
