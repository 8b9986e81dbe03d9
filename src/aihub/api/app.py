"""The FastAPI application factory. Nothing is configured at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from aihub import __version__
from aihub.api.auth import AuthMiddleware
from aihub.api.errors import ERROR_RESPONSES, install_error_handlers
from aihub.api.limits import BodyLimitMiddleware
from aihub.api.routes import (
    assets,
    exports,
    features,
    health,
    ingest,
    model_artifacts,
    models,
    whoami,
)
from aihub.config import Settings
from aihub.dashboard import install as install_dashboard
from aihub.metrics import MetricsMiddleware
from aihub.services.change_follower import ChangeFollower
from aihub.services.container import Services, build_services

log = logging.getLogger("aihub.api")


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """Build the app. ``services`` (already built) wins over ``settings``; with neither,
    settings come from the environment when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or build_services(settings or Settings())
        if not app.state.services.key_cache.enabled():
            log.warning("no API keys configured: the API is open to anyone who can reach it "
                        "(create one with 'aihub keys create')")
        follower = None
        svc = app.state.services
        if svc.online.shared and svc.settings.change_follow_interval > 0:
            follower = ChangeFollower(svc.features, svc.settings.change_follow_interval)
            follower.start()
        try:
            yield
        finally:
            if follower is not None:
                follower.stop()
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
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    # Added innermost first: metrics (outermost) see every request, then the body size
    # limit, then API-key auth, which no route can skip.
    app.add_middleware(AuthMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(MetricsMiddleware)
    # Routes match in order: the online feature routes, the hottest, come first.
    for module in (features, ingest, exports, assets, models, model_artifacts, health, whoami):
        app.include_router(module.router)
    install_dashboard(app)
    return app
