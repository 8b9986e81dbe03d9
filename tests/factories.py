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


# -- API helpers (one request each; they assert success so tests read as steps) -----------


def ingest(client: Any, tenant_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """POST readings; fails the test unless the batch is accepted."""
    r = client.post("/ai/features/ingest", json={"tenant_id": tenant_id, "readings": rows})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def ingest_weather(client: Any, tenant_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post("/ai/features/weather", json={"tenant_id": tenant_id, "observations": rows})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def put_asset(client: Any, tenant_id: str, asset_id: str, **fields: Any) -> dict[str, Any]:
    r = client.put(f"/ai/assets/{asset_id}", params={"tenant_id": tenant_id}, json=fields)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def get_features(
    client: Any, tenant_id: str, asset_id: str, as_of: datetime, *,
    feature_set: str = "forecast_basic", lookback_hours: int = 168,
) -> dict[str, Any]:
    """The ``features`` of ``POST /ai/features/get`` at ``as_of``."""
    r = client.post("/ai/features/get", json={
        "tenant_id": tenant_id, "asset_id": asset_id, "feature_set": feature_set,
        "lookback_hours": lookback_hours, "as_of": iso(as_of),
    })
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timestamp"] == iso(as_of.replace(minute=0, second=0, microsecond=0))
    return body["features"]  # type: ignore[no-any-return]


def weather(location_id: str, hours: Iterable[float], base: datetime = T0,
            **fields: Callable[[float], float | None]) -> list[dict[str, Any]]:
    """JSON rows for ``/ai/features/weather``: one observation per offset (in hours)."""
    return [
        {"location_id": location_id, "ts": iso(at(h, base)),
         **{name: fn(h) for name, fn in fields.items()}}
        for h in hours
    ]


def as_pairs(rows: list[dict[str, Any]]) -> list[tuple[datetime, float]]:
    """``(ts, value)`` of JSON reading rows, for the reference model."""
    return [(datetime.fromisoformat(r["ts"].replace("Z", "+00:00")), float(r["value"]))
            for r in rows]
