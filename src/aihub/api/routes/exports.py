"""Offline export to Parquet and the export history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from aihub.api.auth import require_role
from aihub.api.deps import ExportServiceDep
from aihub.api.schemas.common import Name
from aihub.api.schemas.features import ExportCreate, ExportPage, ExportPublic
from aihub.features.knowledge import Knowledge, knowledge_options
from aihub.services.exports import ExportRequest
from aihub.stores.metadata.exports import ExportRecord

router = APIRouter(prefix="/ai/features", tags=["exports"])


def export_knowledge(body: ExportCreate) -> Knowledge | None:
    """The request's origins, horizons and as_known (None when it gives none of them)."""
    o = body.origins
    return knowledge_options(
        every_hours=o.every_hours if o else None,
        at=o.at if o else None,
        timezone=o.timezone if o else None,
        horizons=body.horizons,
        as_known=body.as_known,
        origins_given=o is not None,
    )


def export_public(r: ExportRecord) -> ExportPublic:
    size = r.file_size_bytes
    return ExportPublic(
        export_id=r.export_id,
        tenant_id=r.tenant_id,
        feature_set=r.feature_set,
        status=r.status,  # type: ignore[arg-type]
        storage_path=r.storage_path,
        row_count=r.row_count,
        file_size_bytes=size,
        file_size_mb=round(size / (1024 * 1024), 3) if size is not None else None,
        message=r.message,
        start_time=r.start_time,
        end_time=r.end_time,
        asset_ids=r.asset_ids,
        lookback_hours=r.lookback_hours,
        options=r.options,
        created_at=r.created_at,
        completed_at=r.completed_at,
        parts=r.parts,  # type: ignore[arg-type]
    )


@router.post(
    "/export",
    response_model=ExportPublic,
    summary="Export features to Parquet",
    responses={202: {"model": ExportPublic, "description": "Accepted (wait=false): running"}},
    # A copy of the tenant's own data: reading, not changing it.
    dependencies=[require_role("read")],
)
def export(body: ExportCreate, exports: ExportServiceDep, response: Response) -> ExportPublic:
    """One row per asset per hour in ``[start_time, end_time)`` that has readings:
    ``tenant_id, asset_id, timestamp``, the set's features, and ``target`` (the hour's mean)
    for forecast sets. Point-in-time correct: a row at H uses only readings before H.
    With ``origins``, ``horizons`` or ``as_known``: one row per origin, horizon and asset
    whose target hour has readings, columns ``tenant_id, asset_id, origin, timestamp``
    (the target T), ``horizon``, the features, ``target`` and ``target_quality``; each
    row sees what was known per ``as_known`` ("What was known when"). With
    ``wait=false`` the answer is immediate (202, status ``running``); poll the record."""
    req = ExportRequest(
        tenant_id=body.tenant_id,
        feature_set=body.feature_set,
        start_time=body.start_time,
        end_time=body.end_time,
        asset_ids=body.asset_ids,
        lookback_hours=body.lookback_hours,
        knowledge=export_knowledge(body),
    )
    if body.wait:
        return export_public(exports.export(req))
    response.status_code = 202
    return export_public(exports.submit(req))


@router.get("/exports", response_model=ExportPage, summary="Export history, newest first",
            dependencies=[require_role("read")])
def list_exports(
    exports: ExportServiceDep,
    tenant_id: Annotated[Name | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> ExportPage:
    records, total = exports.list(tenant_id, limit=limit, offset=offset)
    return ExportPage(
        exports=[export_public(r) for r in records], total=total, limit=limit, offset=offset
    )


@router.get("/exports/{export_id}", response_model=ExportPublic, summary="One export record",
            dependencies=[require_role("read")])
def get_export(export_id: str, exports: ExportServiceDep) -> ExportPublic:
    return export_public(exports.get(export_id))
