"""Assets (timezone, country, location, kind) and per-tenant store status."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Response

from aihub.api.auth import require_role
from aihub.api.deps import AssetServiceDep, ServicesDep
from aihub.api.routes.exports import export_public
from aihub.api.schemas.common import TenantName, Timestamp
from aihub.api.schemas.features import (
    AssetPage,
    AssetPublic,
    AssetUpdate,
    SeriesPublic,
    StatusPublic,
)
from aihub.names import check_name
from aihub.services.series import SeriesService
from aihub.stores.timeseries.base import Asset, AssetChanges

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


@router.put("/assets/{asset_id}", response_model=AssetPublic, summary="Create or edit an asset",
            dependencies=[require_role("write")])
def put_asset(
    asset_id: Annotated[str, Path()],
    tenant_id: TenantQuery,
    body: AssetUpdate,
    assets: AssetServiceDep,
) -> AssetPublic:
    """Set an asset's timezone (IANA), country (ISO code, for holidays), weather location and
    kind. Fields left out keep their value; an explicit null clears country or location_id.
    Its cached online features are dropped."""
    explicit_nulls = {f for f in body.model_fields_set if getattr(body, f) is None}
    changes = AssetChanges(
        timezone=body.timezone,
        country=body.country,
        location_id=body.location_id,
        kind=body.kind,
        clear=frozenset(explicit_nulls),
    )
    return asset_public(assets.put(tenant_id, asset_id, changes))


@router.get("/assets/{asset_id}", response_model=AssetPublic, summary="One asset",
            dependencies=[require_role("read")])
def get_asset(
    asset_id: Annotated[str, Path()], tenant_id: TenantQuery, assets: AssetServiceDep
) -> AssetPublic:
    return asset_public(assets.get(tenant_id, asset_id))


@router.get("/assets", response_model=AssetPage, summary="A tenant's assets",
            dependencies=[require_role("read")])
def list_assets(
    tenant_id: TenantQuery,
    assets: AssetServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    q: Annotated[str | None, Query(max_length=128,
                                   description="only asset ids starting with this")] = None,
) -> AssetPage:
    found, total = assets.list(tenant_id, limit=limit, offset=offset, prefix=q or None)
    return AssetPage(
        assets=[asset_public(a) for a in found], total=total, limit=limit, offset=offset
    )


@router.get("/assets/{asset_id}/series", response_model=SeriesPublic,
            summary="An asset's hourly rollups over a range",
            dependencies=[require_role("read")])
def series(
    asset_id: Annotated[str, Path()],
    tenant_id: TenantQuery,
    services: ServicesDep,
    start: Annotated[Timestamp | None, Query(
        description="first hour (floored to the hour); default: `days` before `end`")] = None,
    end: Annotated[Timestamp | None, Query(
        description="exclusive; at most 731 days after start; default: just after the "
                    "asset's last hour with readings")] = None,
    days: Annotated[int, Query(ge=1, le=731,
                               description="range length when `start` is left out")] = 365,
) -> Response:
    """Columns, not rows: ``hour`` (epoch seconds, UTC), ``mean``, ``min``, ``max``, ``n``
    of every hour with readings in ``[start, end)`` (a year of hours is ~400 KB of JSON),
    and ``last_hour``, the asset's last hour with readings. With no range given, the last
    ``days`` (365) up to that hour: one request draws an asset's recent history."""
    check_name(asset_id, "asset_id")
    s = SeriesService(services.timeseries).hourly(tenant_id, asset_id, start, end, days=days)
    body = {"tenant_id": s.tenant_id, "asset_id": s.asset_id, "start": s.start.isoformat(),
            "end": s.end.isoformat(), "count": len(s.hour), "last_hour": s.last_hour,
            "hour": s.hour, "mean": s.mean, "min": s.min, "max": s.max, "n": s.n}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/features/status", response_model=StatusPublic, summary="Feature store status",
            dependencies=[require_role("read")])
def status(tenant_id: TenantQuery, assets: AssetServiceDep) -> StatusPublic:
    """Assets, readings, first/last reading, last ingest, rollup freshness and last export:
    the monitoring questions, answered by the API."""
    st = assets.status(tenant_id)
    return StatusPublic(
        tenant_id=st.tenant_id,
        assets=st.assets,
        readings=st.readings,
        rollup_hours=st.rollup_hours,
        first_reading=st.first_reading,
        last_reading=st.last_reading,
        last_ingest_at=st.last_ingest_at,
        # Rollups are recomputed inside every ingest transaction: never behind the readings.
        rollups_fresh=st.rollup_hours == 0 or st.readings > 0,
        last_export=export_public(st.last_export) if st.last_export else None,
    )
