"""Request dependencies as ``Annotated`` aliases; tests may swap them via
``app.dependency_overrides``.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, a hop that costs more than the whole cached online-feature lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aihub.services.assets import AssetService
from aihub.services.container import Services
from aihub.services.exports import ExportService
from aihub.services.features import FeatureService
from aihub.services.ingest import IngestService
from aihub.services.model_artifacts import ArtifactService
from aihub.services.predictions import PredictionService
from aihub.services.registry import RegistryService


async def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def get_features(request: Request) -> FeatureService:
    return request.app.state.services.features  # type: ignore[no-any-return]


async def get_ingest(request: Request) -> IngestService:
    return request.app.state.services.ingest  # type: ignore[no-any-return]


async def get_exports(request: Request) -> ExportService:
    return request.app.state.services.exports  # type: ignore[no-any-return]


async def get_assets(request: Request) -> AssetService:
    return request.app.state.services.assets  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
AssetServiceDep = Annotated[AssetService, Depends(get_assets)]
FeatureServiceDep = Annotated[FeatureService, Depends(get_features)]
IngestServiceDep = Annotated[IngestService, Depends(get_ingest)]
ExportServiceDep = Annotated[ExportService, Depends(get_exports)]


async def get_registry(request: Request) -> RegistryService:
    return request.app.state.services.registry  # type: ignore[no-any-return]


async def get_model_artifacts(request: Request) -> ArtifactService:
    return request.app.state.services.model_artifacts  # type: ignore[no-any-return]


async def get_predictions(request: Request) -> PredictionService:
    return request.app.state.services.predictions  # type: ignore[no-any-return]


RegistryDep = Annotated[RegistryService, Depends(get_registry)]
ModelArtifactsDep = Annotated[ArtifactService, Depends(get_model_artifacts)]
PredictionsDep = Annotated[PredictionService, Depends(get_predictions)]
