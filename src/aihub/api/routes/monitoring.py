"""Forecast monitoring: external forecasts into the log, scores, shadows and drift."""

from __future__ import annotations

from fastapi import APIRouter, Request

from aihub.api.auth import require_role
from aihub.api.schemas.monitoring import Accepted, ExternalForecasts
from aihub.services.container import Services
from aihub.services.monitor import LogKey

router = APIRouter(prefix="/ai/models", tags=["monitoring"])


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


@router.post("/{model_id}/predictions", response_model=Accepted,
             summary="Log forecasts made elsewhere", dependencies=[require_role("write")])
def log_predictions(model_id: str, body: ExternalForecasts, request: Request) -> Accepted:
    """A vendor's (or any outside) forecasts, logged under an existing version (which
    needs no artifact) and scored like aihub's own. Logging the same ``(asset, origin,
    timestamp)`` again replaces it. Written in the background within a second."""
    svc = _services(request)
    assert svc.predictions.monitor is not None
    keys = [LogKey(p.asset_id, p.origin, p.timestamp) for p in body.predictions]
    n = svc.predictions.monitor.log_external(model_id, keys,
                                             [p.value for p in body.predictions])
    return Accepted(accepted=n)
