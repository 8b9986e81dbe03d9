"""Forecast monitoring: external forecasts into the log, scores, shadows and drift."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from aihub.api.auth import require_role
from aihub.api.routes.models import json_response
from aihub.api.routes.monitoring_views import comparison_public, skill
from aihub.api.schemas.common import Name, TenantName, Timestamp
from aihub.api.schemas.monitoring import (
    Accepted,
    ComparisonPublic,
    Coverage,
    DriftPublic,
    ExternalForecasts,
    FeatureDrift,
    GroupBy,
    LoggedForecast,
    LoggedForecastPage,
    PerformancePublic,
    ScoreGroup,
    ShadowPublic,
    ShadowSet,
)
from aihub.services.container import Services
from aihub.services.monitor import LogKey
from aihub.timeutil import from_us

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


@router.get("/{model_id}/predictions", response_model=LoggedForecastPage,
            summary="One asset's logged forecasts of a version",
            dependencies=[require_role("read")])
def list_predictions(
    model_id: str,
    request: Request,
    asset_id: Annotated[Name, Query(description="the asset whose forecasts to list")],
    start: Annotated[Timestamp | None, Query(description="first target (inclusive)")] = None,
    end: Annotated[Timestamp | None, Query(description="last target (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """The prediction log of one asset (aliases such as ``tenant:name:production``
    resolve): each forecast with its origin, target, horizon and the actual as known now,
    ordered by target then origin; charts draw them against the readings."""
    monitor = _services(request).predictions.monitor
    assert monitor is not None
    page = monitor.logged(model_id, asset_id, start, end, limit=limit, offset=offset)
    return json_response(LoggedForecastPage(
        model_id=page.model_id, asset_id=asset_id, total=page.total, limit=limit,
        offset=offset, predictions=[LoggedForecast(
            origin=from_us(r["origin"]), timestamp=from_us(r["target"]),
            horizon=r["horizon"], prediction=r["prediction"], actual=r["actual"],
            source=r["source"]) for r in page.rows]))


@router.get("/performance", response_model=ComparisonPublic,
            summary="Compare a model's versions on the rows all of them predicted",
            dependencies=[require_role("read")])
def compare_versions(
    request: Request,
    tenant_id: Annotated[TenantName, Query()],
    model_name: Annotated[Name, Query()],
    start: Annotated[Timestamp | None, Query()] = None,
    end: Annotated[Timestamp | None, Query()] = None,
) -> Response:
    """Every version with logged forecasts in ``[start, end)`` (by target), scored only on
    the ``(asset, origin, target)`` all of them predicted and that have an actual."""
    c = _services(request).performance.compare_model(tenant_id, model_name,
                                                     start=start, end=end)
    return json_response(comparison_public(c))


@router.get("/{model_id}/performance", response_model=PerformancePublic,
            summary="Accuracy of a version's logged forecasts against the actuals",
            dependencies=[require_role("read")])
def performance(
    model_id: str,
    request: Request,
    start: Annotated[Timestamp | None, Query()] = None,
    end: Annotated[Timestamp | None, Query()] = None,
    group_by: Annotated[GroupBy, Query()] = "none",
) -> Response:
    """Logged rows with target in ``[start, end)`` and an actual (``L(T)`` as known now: a
    correction re-scores), overall or by horizon, asset or day (UTC of the target)."""
    p = _services(request).performance.performance(model_id, start=start, end=end,
                                                   group_by=group_by)
    return json_response(PerformancePublic(
        model_id=p.version.model_id, start=p.start, end=p.end, group_by=group_by,
        coverage=Coverage(predicted=p.predicted, with_actual=p.with_actual),
        groups=[ScoreGroup(key=g.key, n=g.n, mae=g.mae, rmse=g.rmse, bias=g.bias,
                           nmae=g.nmae, nrmse=g.nrmse, mape=g.mape, mape_n=g.mape_n,
                           skill=skill(g)) for g in p.groups]))


@router.put("/{model_id}/shadow", response_model=ShadowPublic,
            summary="Run a staging version in the shadow of production",
            dependencies=[require_role("write")])
def set_shadow(model_id: str, body: ShadowSet, request: Request) -> ShadowPublic:
    """With ``enabled``, every prediction through ``{tenant}:{name}:production`` also runs
    this version on the same inputs after the answer is sent, logged under its own version
    (only staging versions: 409 otherwise). ``false`` stops it."""
    v = _services(request).shadows.set_shadow(model_id, body.enabled)
    return ShadowPublic(model_id=v.model_id, stage=v.stage, shadow=body.enabled)


@router.get("/{model_id}/drift", response_model=DriftPublic,
            summary="Drift of the served features from the training export",
            dependencies=[require_role("read")])
def drift(
    model_id: str,
    request: Request,
    start: Annotated[Timestamp | None, Query()] = None,
    end: Annotated[Timestamp | None, Query()] = None,
) -> Response:
    """The features logged with the version's predictions (target in ``[start, end)``)
    against the reference bins of the export named by its ``metadata.export_id``: PSI over
    10 quantile bins of the training values, null rates, ``drifted`` at PSI >= 0.2."""
    d = _services(request).drift.drift(model_id, start=start, end=end)
    return json_response(DriftPublic(
        model_id=d.model_id, export_id=d.export_id, start=d.start, end=d.end,
        served_rows=d.served_rows,
        features={k: FeatureDrift(psi=f.psi, null_rate_train=f.null_rate_train,
                                  null_rate_served=f.null_rate_served, drifted=f.drifted)
                  for k, f in d.features.items()}))
