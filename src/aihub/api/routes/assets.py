"""Assets (timezone, country, location, kind) and per-tenant store status."""

from __future__ import annotations

from typing import Annotated

import holidays
import orjson
from fastapi import APIRouter, Path, Query, Response

from aihub.api.deps import ServicesDep
from aihub.api.routes.exports import export_public
from aihub.api.schemas.common import TenantName, Timestamp
from aihub.api.schemas.features import (
    AssetPage,
    AssetPublic,
    AssetUpdate,
    SeriesPublic,
    StatusPublic,
)
from aihub.errors import InvalidInput, NotFound
from aihub.names import check_name
from aihub.services.series import SeriesService
from aihub.stores.online.base import cache_key
from aihub.stores.timeseries.base import Asset, AssetChanges
from aihub.timeutil import from_us, is_valid_timezone

router = APIRouter(prefix="/ai", tags=["assets"])

TenantQuery = Annotated[TenantName, Query(description="Tenant the asset belongs to")]


def asset_public(a: Asset) -> AssetPublic:
    return AssetPublic(
        tenant_id=a.tenant_id,
        asset_id=a.asset_id,
        timezone=a.timezone,
        country=a.country,
        location_id=a.location_id,
        kind=a.kind,
        created_at=a.created_at,
        updated_at=a.updated_at,
        last_ingest_at=a.last_ingest_at,
    )


@router.put("/assets/{asset_id}", response_model=AssetPublic, summary="Create or edit an asset")
def put_asset(
    asset_id: Annotated[str, Path()],
    tenant_id: TenantQuery,
    body: AssetUpdate,
    services: ServicesDep,
) -> AssetPublic:
    """Set an asset's timezone (IANA), country (ISO code, for holidays), weather location and
    kind. Fields left out keep their value; an explicit null clears country or location_id.
    Its cached online features are dropped."""
    check_name(asset_id, "asset_id")
    if body.timezone is not None and not is_valid_timezone(body.timezone):
        raise InvalidInput(f"timezone: '{body.timezone}' is not an IANA timezone name")
    if body.country is not None and body.country not in holidays.list_supported_countries():
        raise InvalidInput(f"country: '{body.country}' is not a country with a holiday calendar")
    explicit_nulls = {f for f in body.model_fields_set if getattr(body, f) is None}
    if explicit_nulls & {"timezone", "kind"}:
        raise InvalidInput(f"{sorted(explicit_nulls & {'timezone', 'kind'})[0]}: cannot be null")
    asset = services.timeseries.upsert_asset(
        tenant_id,
        asset_id,
        AssetChanges(
            timezone=body.timezone,
            country=body.country,
            location_id=body.location_id,
            kind=body.kind,
            clear=frozenset(explicit_nulls),
        ),
    )
    services.online.invalidate([cache_key(tenant_id, asset_id)], seq=asset.data_seq or None)
    return asset_public(asset)


@router.get("/assets/{asset_id}", response_model=AssetPublic, summary="One asset")
def get_asset(
    asset_id: Annotated[str, Path()], tenant_id: TenantQuery, services: ServicesDep
) -> AssetPublic:
    check_name(asset_id, "asset_id")
    found = services.timeseries.get_assets(tenant_id, [asset_id])
    if not found:
        raise NotFound(f"unknown asset '{asset_id}' for tenant '{tenant_id}'")
    return asset_public(found[0])


@router.get("/assets", response_model=AssetPage, summary="A tenant's assets")
def list_assets(
    tenant_id: TenantQuery,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    q: Annotated[str | None, Query(max_length=128,
                                   description="only asset ids starting with this")] = None,
) -> AssetPage:
    assets, total = services.timeseries.list_assets(tenant_id, limit=limit, offset=offset,
                                                    prefix=q or None)
    return AssetPage(
        assets=[asset_public(a) for a in assets], total=total, limit=limit, offset=offset
    )


@router.get("/assets/{asset_id}/series", response_model=SeriesPublic,
            summary="An asset's hourly rollups over a range")
def series(
    asset_id: Annotated[str, Path()],
    tenant_id: TenantQuery,
    start: Annotated[Timestamp, Query(description="first hour (floored to the hour)")],
    end: Annotated[Timestamp, Query(description="exclusive; at most 731 days after start")],
    services: ServicesDep,
) -> Response:
    """Columns, not rows: ``hour`` (epoch seconds, UTC), ``mean``, ``min``, ``max``, ``n``
    of every hour with readings in ``[start, end)`` (a year of hours is ~400 KB of JSON)."""
    check_name(asset_id, "asset_id")
    s = SeriesService(services.timeseries).hourly(tenant_id, asset_id, start, end)
    body = {"tenant_id": s.tenant_id, "asset_id": s.asset_id, "start": s.start.isoformat(),
            "end": s.end.isoformat(), "count": len(s.hour), "hour": s.hour, "mean": s.mean,
            "min": s.min, "max": s.max, "n": s.n}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/features/status", response_model=StatusPublic, summary="Feature store status")
def status(tenant_id: TenantQuery, services: ServicesDep) -> StatusPublic:
    """Assets, readings, first/last reading, last ingest, rollup freshness and last export:
    the monitoring questions, answered by the API."""
    if not services.timeseries.tenant_exists(tenant_id):
        raise NotFound(f"unknown tenant '{tenant_id}'")
    stats = services.timeseries.tenant_stats(tenant_id)
    last = services.feature_meta.last_export(tenant_id)
    return StatusPublic(
        tenant_id=tenant_id,
        assets=stats.assets,
        readings=stats.readings,
        rollup_hours=stats.rollup_hours,
        first_reading=from_us(stats.first_ts) if stats.first_ts is not None else None,
        last_reading=from_us(stats.last_ts) if stats.last_ts is not None else None,
        last_ingest_at=stats.last_ingest_at,
        # Rollups are recomputed inside every ingest transaction: never behind the readings.
        rollups_fresh=stats.rollup_hours == 0 or stats.readings > 0,
        last_export=export_public(last) if last else None,
    )
