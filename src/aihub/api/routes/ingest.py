"""Ingest of readings and weather: JSON, Arrow IPC stream or Parquet bodies.

The routes parse their own bodies straight into columns (no object per reading) and leave
every row rule to the one validation in ``aihub.services.validation``. The body is read
into one buffer of its declared length, parsed, and dropped before the batch is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from aihub.api.deps import IngestServiceDep
from aihub.api.schemas.common import TenantName
from aihub.api.schemas.features import (
    IngestPublic,
    ReadingsHead,
    ReadingsIngest,
    WeatherHead,
    WeatherIngest,
    WeatherIngestPublic,
)
from aihub.errors import InvalidInput
from aihub.services.arrow_body import (
    ARROW_STREAM,
    PARQUET_TYPES,
    frame_from_arrow_stream,
    frame_from_parquet,
)
from aihub.services.columns import READINGS_COLUMNS, WEATHER_COLUMNS, Column
from aihub.services.ingest import IngestService
from aihub.services.json_body import parse_json_batch
from aihub.stores.timeseries.base import IngestResult
from aihub.timeutil import from_us, to_us

router = APIRouter(prefix="/ai/features", tags=["ingest"])

_BINARY = {"type": "string", "format": "binary"}
_TENANT_DOC = (
    "The tenant of an Arrow or Parquet body (required for those). A JSON body names its "
    "tenant in `tenant_id`; if given here as well, the two must agree."
)
TenantQuery = Annotated[TenantName | None, Query(description=_TENANT_DOC)]


def _body_doc(model: type[BaseModel], rows: str) -> dict[str, Any]:
    """OpenAPI for a body the route parses itself: JSON (the model's schema, inlined) or
    Arrow/Parquet bytes with the same columns."""
    binary: dict[str, Any] = {
        "schema": _BINARY,
        "description": f"The `{rows}` as columns; `tenant_id` as a query parameter.",
    }
    content: dict[str, Any] = {"application/json": {"schema": model.model_json_schema()}}
    content |= {t: binary for t in (ARROW_STREAM, *PARQUET_TYPES)}
    return {"requestBody": {"required": True, "content": content}}


async def _read_body(request: Request) -> bytearray | bytes:
    """The body in one buffer of its declared length, filled as chunks arrive (never a
    list of chunks and their join: half the peak memory). The body limit was enforced
    before the route (``aihub.api.limits``)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():  # chunked: the limit middleware already holds it whole
        return await request.body()
    size = int(declared)
    buf = bytearray(size)
    pos = 0
    async for chunk in request.stream():
        end = pos + len(chunk)
        if end > size:
            raise InvalidInput("the body is longer than its Content-Length")
        buf[pos:end] = chunk
        pos = end
    if pos < size:
        del buf[pos:]
    return buf


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _is_json(media: str) -> bool:
    return media in ("", "application/json") or media.endswith("+json")


def _parse(
    holder: list[bytearray | bytes],
    media: str,
    *,
    key: str,
    noun: str,
    columns: Sequence[Column],
    head_model: type[ReadingsHead] | type[WeatherHead],
    tenant_query: str | None,
    max_rows: int,
) -> tuple[str, pl.DataFrame, int | None]:
    """``(tenant_id, frame, known_at)`` of a body in any accepted format (``known_at``: the
    batch's knowledge time, epoch us, if the body gives one). The only reference to the
    body is taken from ``holder`` and dropped once parsed, before anything is stored."""
    body = holder.pop()
    if _is_json(media):
        known: list[int | None] = [None]

        def check_head(head: dict[str, Any]) -> str:
            parsed = head_model.model_validate(head)
            tenant = parsed.tenant_id
            if tenant_query is not None and tenant_query != tenant:
                raise InvalidInput(
                    f"tenant_id: the query names '{tenant_query}', the body '{tenant}'"
                )
            at = parsed.known_at if isinstance(parsed, ReadingsHead) else parsed.issued_at
            known[0] = to_us(at) if at is not None else None
            return tenant

        batch = parse_json_batch(
            body, key=key, columns=columns, max_rows=max_rows, noun=noun, check_head=check_head
        )
        return str(batch.tenant_id), batch.frame, known[0]
    read: Callable[..., pl.DataFrame]
    if media == ARROW_STREAM:
        read = frame_from_arrow_stream
    elif media in PARQUET_TYPES:
        read = frame_from_parquet
    else:
        raise InvalidInput(
            f"unsupported Content-Type '{media[:80]}'; send application/json, "
            f"{ARROW_STREAM} or {PARQUET_TYPES[0]}"
        )
    if tenant_query is None:
        raise InvalidInput(
            "tenant_id: an Arrow or Parquet body needs the tenant as a query parameter "
            "(?tenant_id=...)",
            details=[{"field": "tenant_id", "message": "field required"}],
        )
    return tenant_query, read(body, columns, max_rows=max_rows, noun=noun), None


def _ingest_readings(
    ingest: IngestService, holder: list[bytearray | bytes], media: str, tenant: str | None
) -> tuple[str, IngestResult]:
    tenant_id, frame, known_at = _parse(
        holder,
        media,
        key="readings",
        noun="readings",
        columns=READINGS_COLUMNS,
        head_model=ReadingsHead,
        tenant_query=tenant,
        max_rows=ingest.max_rows,
    )
    return tenant_id, ingest.ingest_readings(tenant_id, frame, known_at=known_at)


def _ingest_weather(
    ingest: IngestService, holder: list[bytearray | bytes], media: str, tenant: str | None
) -> tuple[str, IngestResult]:
    tenant_id, frame, issued_at = _parse(
        holder,
        media,
        key="observations",
        noun="observations",
        columns=WEATHER_COLUMNS,
        head_model=WeatherHead,
        tenant_query=tenant,
        max_rows=ingest.max_rows,
    )
    return tenant_id, ingest.ingest_weather(tenant_id, frame, issued_at=issued_at)


@router.post(
    "/ingest",
    response_model=IngestPublic,
    summary="Ingest meter readings",
    openapi_extra=_body_doc(ReadingsIngest, "readings"),
)
async def ingest_readings(
    request: Request, ingest: IngestServiceDep, tenant_id: TenantQuery = None
) -> IngestPublic:
    """Store a batch of readings atomically: every row valid, or nothing stored (422 naming
    the 0-based row and the field). Re-sent ``(asset, ts)`` replace earlier values; hourly
    rollups of the touched hours are recomputed and the assets' online features
    invalidated. A changed value keeps its earlier version (``known_at``: when each became
    known; top-level for the batch or per row, default commit time); ``quality`` is
    actual, estimated or edited. The body is JSON, an Arrow IPC stream or a Parquet file
    (columns ``asset_id``, ``ts``, ``value``, optional ``known_at``, ``quality``;
    ``tenant_id`` in the query)."""
    holder = [await _read_body(request)]
    tenant, result = await run_in_threadpool(
        _ingest_readings, ingest, holder, _media_type(request), tenant_id
    )
    return IngestPublic(
        tenant_id=tenant,
        accepted=result.accepted,
        assets=result.asset_ids,
        first_ts=from_us(result.first_ts) if result.first_ts is not None else None,
        last_ts=from_us(result.last_ts) if result.last_ts is not None else None,
    )


@router.post(
    "/weather",
    response_model=WeatherIngestPublic,
    summary="Ingest weather",
    openapi_extra=_body_doc(WeatherIngest, "observations"),
)
async def ingest_weather(
    request: Request, ingest: IngestServiceDep, tenant_id: TenantQuery = None
) -> WeatherIngestPublic:
    """Store weather observations or forecasts per location (atomic, like readings).
    Assets pick them up through their ``location_id``. Every version of a ``(location,
    ts)`` is kept with its ``issued_at`` (top-level or per row, default commit time), so
    features "as known at" a time see the forecast then available. JSON, Arrow IPC stream
    or Parquet (columns ``location_id``, ``ts``, any of the weather fields, optional
    ``issued_at``)."""
    holder = [await _read_body(request)]
    tenant, result = await run_in_threadpool(
        _ingest_weather, ingest, holder, _media_type(request), tenant_id
    )
    return WeatherIngestPublic(tenant_id=tenant, accepted=result.accepted)
