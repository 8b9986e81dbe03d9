"""The FastAPI application factory. Nothing is configured at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from aihub import __version__
from aihub.api.errors import install_error_handlers
from aihub.api.routes import assets, exports, features, health, ingest, model_artifacts, models
from aihub.config import Settings
from aihub.metrics import MetricsMiddleware
from aihub.services.container import Services, build_services


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """Build the app. ``services`` (already built) wins over ``settings``; with neither,
    settings come from the environment when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or build_services(settings or Settings())
        try:
            yield
        finally:
            if owned:
                app.state.services.close()

    app = FastAPI(
        title="aihub",
        version=__version__,
        description=(
            "Feature store for smart-meter time series and model registry for the models "
            "trained on them. Point-in-time-correct features online and offline."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    for module in (health, ingest, features, exports, assets, models, model_artifacts):
        app.include_router(module.router)
    return app
