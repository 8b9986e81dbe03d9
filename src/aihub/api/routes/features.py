"""Online features and feature sets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from aihub.api.auth import require_role
from aihub.api.deps import FeatureServiceDep, ServicesDep
from aihub.api.schemas.common import TenantName
from aihub.api.schemas.features import (
    CatalogFeature,
    FeatureBatchPublic,
    FeatureGet,
    FeatureGetBatch,
    FeatureSetCreate,
    FeatureSetsPublic,
    FeaturesPublic,
)
from aihub.features.catalog import CATALOG
from aihub.features.knowledge import parse_as_known, parse_horizons
from aihub.services.features import FeatureService, OnlineRequest, describe_set
from aihub.timeutil import iso

router = APIRouter(prefix="/ai/features", tags=["features"])

_JSON = "application/json"


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the route parses itself (the model's schema, inlined)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


def _asks_knowledge(body: FeatureGet | FeatureGetBatch) -> bool:
    """Horizons or a knowledge other than "latest": computed, never cached."""
    return body.horizons is not None or body.as_known not in (None, "latest")


def _get_known(
    features: FeatureService, req: OnlineRequest, asset_ids: list[str],
    body: FeatureGet | FeatureGetBatch,
) -> tuple[datetime, list[bytes]]:
    horizons = parse_horizons(body.horizons) if body.horizons is not None else None
    return features.get_known(
        req, asset_ids, horizons=horizons, as_known=parse_as_known(body.as_known)
    )


@router.post("/get", response_model=FeaturesPublic, summary="Features of one asset at hour H",
             openapi_extra=_json_body(FeatureGet), dependencies=[require_role("read")])
async def get_features(request: Request) -> Response:
    """Features describing what was knowable at ``H``: ``as_of`` floored to the hour, by
    default the current hour (forecast sets) or the last complete hour (anomaly sets).
    Served from the online cache; a miss computes from the store and fills the cache.
    With ``horizons`` the answer holds one row per target ``T = as_of + h`` (origin
    ``as_of``); ``as_known`` chooses which versions of the data the rows see. Those
    answers are computed from the store each time (one read for all horizons)."""
    # The hottest route: validate the raw bytes in one pydantic-core pass instead of
    # FastAPI's json.loads + dict validation (a ValidationError maps to the usual 422).
    body = FeatureGet.model_validate_json(await request.body())
    # The service straight from app state: resolving a dependency costs more here than
    # the cached lookup itself.
    features: FeatureService = request.app.state.services.features
    req = OnlineRequest(body.tenant_id, body.feature_set, body.lookback_hours, body.as_of)
    if _asks_knowledge(body):
        answers = await run_in_threadpool(_get_known, features, req, [body.asset_id], body)
        return Response(content=answers[1][0], media_type=_JSON)
    lookup = features.lookup(req, [body.asset_id])  # memory (or Redis) only
    value = lookup.cached[0] if lookup is not None else None
    if value is None:
        if lookup is None:
            value = (await run_in_threadpool(features.get_online, req, [body.asset_id]))[1][0]
        else:
            value = (await run_in_threadpool(features.fill, req, lookup))[0]
    return Response(content=value, media_type=_JSON)


@router.post(
    "/get-batch", response_model=FeatureBatchPublic, summary="Features of many assets at one hour",
    dependencies=[require_role("read")],
)
async def get_features_batch(body: FeatureGetBatch, features: FeatureServiceDep) -> Response:
    """One ``/get`` response per asset, in the order asked, computed together on misses."""
    req = OnlineRequest(body.tenant_id, body.feature_set, body.lookback_hours, body.as_of)
    if _asks_knowledge(body):
        hour, values = await run_in_threadpool(_get_known, features, req, body.asset_ids, body)
    elif (lookup := features.lookup(req, body.asset_ids)) is None:  # memory (or Redis)
        hour, values = await run_in_threadpool(features.get_online, req, body.asset_ids)
    elif lookup.complete:
        hour, values = lookup.hour, lookup.cached  # type: ignore[assignment]
    else:
        hour, values = lookup.hour, await run_in_threadpool(features.fill, req, lookup)
    head = (
        b'{"tenant_id":"'
        + body.tenant_id.encode()
        + b'","feature_set":"'
        + body.feature_set.encode()
        + b'","timestamp":"'
        + iso(hour).encode()
        + b'","results":['
    )
    return Response(content=head + b",".join(values) + b"]}", media_type=_JSON)


@router.get("/sets", response_model=FeatureSetsPublic, summary="List feature sets",
            dependencies=[require_role("read")])
def list_sets(
    services: ServicesDep, tenant_id: Annotated[TenantName | None, Query()] = None
) -> FeatureSetsPublic:
    """The built-in sets, plus the tenant's own sets when ``tenant_id`` is given."""
    sets = services.features.list_sets(tenant_id)
    store, online = services.timeseries, services.online
    return FeatureSetsPublic(
        feature_sets={
            fs.name: describe_set(
                fs,
                online_backend=online.backend_name,
                store_backend=getattr(store, "backend_name", "database"),
            )
            for fs in sets
        }
    )


@router.post("/sets", status_code=201, summary="Define a feature set from catalog features",
             dependencies=[require_role("write")])
def create_set(body: FeatureSetCreate, services: ServicesDep) -> dict[str, object]:
    fs = services.features.create_set(
        body.tenant_id,
        name=body.name,
        description=body.description,
        features=body.features,
        use_cases=body.use_cases,
    )
    return describe_set(
        fs,
        online_backend=services.online.backend_name,
        store_backend=getattr(services.timeseries, "backend_name", "database"),
    )


@router.get("/catalog", response_model=list[CatalogFeature], summary="Every feature available",
            dependencies=[require_role("read")])
def catalog() -> list[CatalogFeature]:
    return [
        CatalogFeature(
            name=f.name,
            kind=f.kind,
            description=f.description,
            horizon_hours=f.horizon_hours,
            dtype=f.dtype,
        )
        for f in CATALOG.values()
    ]
