"""Loads the demo tenant: meters with a realistic load shape up to the current hour, and
weather for their location, each value with the time it became known: forecasts issued
twice a day (48 hours ahead), observations after them, readings after their hour (one
meter a day late), a few estimates corrected days later (``aihub.demo.knowledge``)."""

from __future__ import annotations

from dataclasses import dataclass

from aihub.demo.generator import DemoSpec, demo_start, readings_frame
from aihub.demo.knowledge import arrivals, weather_issues
from aihub.services.container import Services
from aihub.stores.timeseries.base import AssetChanges, Progress
from aihub.timeutil import HOUR_US, floor_hour, to_us, utcnow


@dataclass(frozen=True, slots=True)
class DemoLoad:
    tenant_id: str
    assets: list[str]
    readings: int
    weather: int
    skipped: bool


def load_demo(
    services: Services,
    spec: DemoSpec | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> DemoLoad:
    spec = spec or DemoSpec()
    end = floor_hour(utcnow())
    start_us = demo_start(spec, end)
    existing = services.timeseries.get_assets(spec.tenant_id, spec.asset_ids())
    current = [a for a in existing if a.last_ingest_at and a.last_ingest_at >= end]
    if not force and spec.start is None and len(current) == spec.assets:
        return DemoLoad(spec.tenant_id, spec.asset_ids(), 0, 0, skipped=True)
    for asset_id in spec.asset_ids():
        services.assets.put(
            spec.tenant_id,
            asset_id,
            AssetChanges(
                timezone="Europe/Berlin", country="DE", location_id=spec.location_id, kind="load"
            ),
        )
    now_us = to_us(utcnow())
    weather_rows = 0
    for batch in weather_issues(spec, start_us, spec.hours, now_us):
        services.ingest.ingest_weather(spec.tenant_id, batch, max_rows=batch.height)
        weather_rows += batch.height
    first, corrections = arrivals(spec, readings_frame(spec, start_us), now_us)
    result = services.ingest.ingest_readings(
        spec.tenant_id, first, progress=progress, max_rows=first.height
    )
    if corrections.height:
        services.ingest.ingest_readings(spec.tenant_id, corrections,
                                        max_rows=corrections.height)
    assert result.last_ts is None or result.last_ts < start_us + spec.hours * HOUR_US
    return DemoLoad(spec.tenant_id, spec.asset_ids(), result.accepted, weather_rows, False)
