"""Model artifacts (streamed in and out) and predictions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from aihub.api.auth import require_role
from aihub.api.deps import ModelArtifactsDep, PredictionsDep
from aihub.api.routes.models import json_response
from aihub.api.schemas.models import (
    ArtifactPublic,
    HorizonPredictionPublic,
    HorizonPredictionRow,
    PredictionPublic,
    PredictRequest,
)
from aihub.api.streaming import feed_blocking
from aihub.features.knowledge import parse_as_known, parse_horizons

router = APIRouter(prefix="/ai/models", tags=["models"])


@router.put("/{model_id}/artifact", response_model=ArtifactPublic,
            summary="Upload a version's artifact (raw body, streamed)",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}},
            dependencies=[require_role("write")])
async def upload_artifact(
    model_id: str,
    request: Request,
    artifacts: ModelArtifactsDep,
    sha256: Annotated[str | None, Query(description="expected sha256 (hex)")] = None,
    x_content_sha256: Annotated[str | None, Header()] = None,
) -> ArtifactPublic:
    """The body is the model file: a LightGBM text model, a skops file or ONNX (pickle is
    stored but only loadable where the operator allows it). Give the expected sha256 to
    have corruption in transit detected. 409 if the version already has an artifact."""
    expected = sha256 or x_content_sha256
    await run_in_threadpool(artifacts.registry.get, model_id)  # 404/422 before reading
    version = await feed_blocking(
        request.stream(),
        lambda chunks: artifacts.upload(model_id, chunks, expected_sha256=expected),
    )
    return ArtifactPublic(model_id=version.model_id, model_size_bytes=version.artifact_size or 0,
                          sha256=version.artifact_sha256 or "", format=version.artifact_format)


@router.get("/{model_id}/artifact", summary="Download a version's artifact (streamed)",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}},
            dependencies=[require_role("read")])
def download_artifact(model_id: str, artifacts: ModelArtifactsDep) -> StreamingResponse:
    """The bytes as uploaded; ``X-Content-SHA256`` (and the ETag) carry the digest."""
    version, chunks = artifacts.open(model_id)
    filename = f"{version.tenant_id}_{version.model_name}_{version.version}.model"
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(version.artifact_size),
            "X-Content-SHA256": version.artifact_sha256 or "",
            "ETag": f'"{version.artifact_sha256}"',
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Model-Id": version.model_id,
        },
    )


@router.post("/{model_id}/predict", response_model=PredictionPublic,
             summary="Predict from rows or from online features",
             dependencies=[require_role("read")])
def predict(model_id: str, body: PredictRequest, predictions: PredictionsDep) -> Response:
    """``rows`` of named features, or ``asset_ids`` + ``feature_set`` (+ ``as_of``) to use
    exactly the online features ``/ai/features/get-batch`` serves. Features are ordered
    by the model's ``feature_names``; a missing one is a 422 naming it. With ``horizons``
    (and/or ``as_known``) every asset is forecast for each target ``as_of + h`` from the
    origin ``as_of``: ``{"model_id", "version", "origin", "predictions": [{"asset_id",
    "timestamp", "horizon", "prediction"}]}``."""
    # A worker thread (plain ``def``): the registry read, a model load and the features
    # all touch a backend, and none of them may stall the event loop.
    if body.horizons is not None or body.as_known is not None:
        assert body.asset_ids is not None and body.feature_set is not None
        hp = predictions.predict_horizons(
            model_id, asset_ids=body.asset_ids, feature_set=body.feature_set,
            lookback_hours=body.lookback_hours, as_of=body.as_of,
            horizons=parse_horizons(body.horizons) if body.horizons is not None else (0,),
            as_known=parse_as_known(body.as_known))
        return json_response(HorizonPredictionPublic(
            model_id=hp.version.model_id, version=hp.version.version, origin=hp.origin,
            predictions=[
                HorizonPredictionRow(asset_id=k.asset_id, timestamp=k.timestamp,
                                     horizon=k.horizon, prediction=v)
                for k, v in zip(hp.keys, hp.predictions, strict=True)
            ]))
    if body.rows is not None:
        p = predictions.predict_rows(model_id, body.rows)
    else:
        assert body.asset_ids is not None and body.feature_set is not None
        p = predictions.predict_assets(
            model_id, asset_ids=body.asset_ids, feature_set=body.feature_set,
            lookback_hours=body.lookback_hours, as_of=body.as_of)
    return json_response(PredictionPublic(
        model_id=p.version.model_id, version=p.version.version, predictions=p.predictions,
        asset_ids=p.asset_ids, timestamp=p.timestamp))
