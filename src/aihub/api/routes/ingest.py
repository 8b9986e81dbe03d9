"""Ingest of readings and weather."""

from __future__ import annotations

import polars as pl
from fastapi import APIRouter

from aihub.api.deps import IngestServiceDep
from aihub.api.schemas.features import (
    IngestPublic,
    ReadingsIngest,
    WeatherIngest,
    WeatherIngestPublic,
)
from aihub.features.frames import READINGS_SCHEMA, WEATHER_FIELDS, WEATHER_SCHEMA
from aihub.timeutil import from_us, to_us

router = APIRouter(prefix="/ai/features", tags=["ingest"])


@router.post("/ingest", response_model=IngestPublic, summary="Ingest meter readings")
def ingest_readings(body: ReadingsIngest, ingest: IngestServiceDep) -> IngestPublic:
    """Store a batch of readings atomically: every row valid, or nothing stored (422 naming
    the row and field). Re-sent ``(asset, ts)`` replace earlier values; hourly rollups of
    the touched hours are recomputed and the assets' online features invalidated."""
    frame = pl.DataFrame(
        {
            "asset_id": [r.asset_id for r in body.readings],
            "ts": [to_us(r.ts) for r in body.readings],
            "value": [r.value for r in body.readings],
        },
        schema=READINGS_SCHEMA,
    )
    result = ingest.ingest_readings(body.tenant_id, frame)
    return IngestPublic(
        tenant_id=body.tenant_id,
        accepted=result.accepted,
        assets=result.asset_ids,
        first_ts=from_us(result.first_ts) if result.first_ts is not None else None,
        last_ts=from_us(result.last_ts) if result.last_ts is not None else None,
    )


@router.post("/weather", response_model=WeatherIngestPublic, summary="Ingest weather")
def ingest_weather(body: WeatherIngest, ingest: IngestServiceDep) -> WeatherIngestPublic:
    """Store weather observations or forecasts per location (atomic, like readings).
    Assets pick them up through their ``location_id``."""
    data: dict[str, list[object]] = {
        "location_id": [o.location_id for o in body.observations],
        "ts": [to_us(o.ts) for o in body.observations],
    }
    for f in WEATHER_FIELDS:
        data[f] = [getattr(o, f) for o in body.observations]
    result = ingest.ingest_weather(body.tenant_id, pl.DataFrame(data, schema=WEATHER_SCHEMA))
    return WeatherIngestPublic(tenant_id=body.tenant_id, accepted=result.accepted)
