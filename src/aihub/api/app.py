"""The FastAPI application factory. Nothing is configured at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from aihub import __version__
from aihub.api.auth import AuthMiddleware, require_role
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
    monitoring,
    streams,
    whoami,
)
from aihub.config import Settings
from aihub.dashboard import install as install_dashboard
from aihub.metrics import MetricsMiddleware
from aihub.services.accuracy_gauges import AccuracyGauges
from aihub.services.artifact_sweeper import ArtifactSweeper
from aihub.services.background import PeriodicTask
from aihub.services.change_follower import ChangeFollower
from aihub.services.container import Services, build_services
from aihub.services.prediction_log import LogPurger
from aihub.streams.dead_letters import DeadLetterPurger

log = logging.getLogger("aihub.api")


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """Build the app. ``services`` (already built) wins over ``settings``; with neither,
    settings come from the environment when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = svc = services or build_services(settings or Settings())
        try:
            if not await run_in_threadpool(svc.key_cache.check_enabled):
                log.warning("no API keys configured: the API is open to anyone who can reach "
                            "it (create one with 'aihub keys create')")
        except Exception as exc:  # the first request looks again
            log.warning("could not check for API keys at startup: %s", exc)
        # Background work, never on a request's path: the change feed (writes made by
        # other processes) and the sweep of orphaned artifact objects.
        workers: list[PeriodicTask] = []
        if svc.settings.change_follow_interval > 0:
            workers.append(ChangeFollower(svc.features, svc.settings.change_follow_interval))
        if svc.settings.artifact_sweep_interval > 0:
            workers.append(ArtifactSweeper(svc.model_artifacts,
                                           svc.settings.artifact_sweep_interval))
        workers.append(svc.prediction_log)  # writes the queued log at least every second
        workers.append(svc.score_compactor)  # rebuilds the score sums of changed days
        if svc.settings.prediction_log_purge_interval > 0:
            workers.append(LogPurger(svc.prediction_log,
                                     svc.settings.prediction_log_purge_interval))
        if (purger := DeadLetterPurger.configured(svc.engine, svc.settings)) is not None:
            workers.append(purger)
        if svc.settings.monitoring_gauge_interval > 0:
            workers.append(AccuracyGauges(svc.performance,
                                          svc.settings.monitoring_gauge_interval))
        app.state.background = {worker.name: worker for worker in workers}
        for worker in workers:
            await run_in_threadpool(worker.start)
        # Streaming ingest from MQTT inside the API process when a broker is configured.
        app.state.stream = await run_in_threadpool(_start_stream, svc)
        try:
            yield
        finally:
            if app.state.stream is not None:
                await run_in_threadpool(_stop_stream, svc, app.state.stream)
            # Shadow runs already under way log their results before the last write.
            await run_in_threadpool(svc.shadows.wait_idle, 5.0)
            for worker in workers:
                await run_in_threadpool(worker.stop)
            if owned:
                svc.close()

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
    # Routes match in order: the online feature routes, the hottest, come first. Every
    # route declares its role (``aihub.api.auth``); ingest's routes all write, so their
    # router declares it once here.
    app.include_router(features.router)
    app.include_router(ingest.router, dependencies=[require_role("write")])
    for module in (exports, assets, monitoring, models, model_artifacts, health, whoami, streams):
        app.include_router(module.router)
    install_dashboard(app)
    return app


def _start_stream(svc: Services) -> Any:
    """The MQTT stream of ``AIHUB_MQTT_URL`` (None without one), started; ``/ready``
    reports its broker."""
    if not svc.settings.mqtt_url:
        return None
    from aihub.streams.config import StreamConfig
    from aihub.streams.runner import build_stream

    config = StreamConfig.from_settings(svc.settings)
    stream = build_stream(svc, config)
    stream.start()
    if config.processes > 1:  # worker 0 here, the others in processes of their own
        from aihub.streams.workers import WorkerPool

        pool = WorkerPool(config, first=1, warn=log.warning)
        pool.start()
        pool.watch_in_background()
        stream.status.others = pool.reports
        svc.extras["stream_workers"] = pool
    svc.extras.setdefault("ready_checks", []).append(("mqtt_broker", stream))
    log.info("streaming from %s in %d process(es)", stream.config.url, config.processes)
    return stream


def _stop_stream(svc: Services, stream: Any) -> None:
    pool = svc.extras.pop("stream_workers", None)
    if pool is not None:
        pool.stop()
    stream.stop()
    checks = svc.extras.get("ready_checks", [])
    checks[:] = [c for c in checks if c[1] is not stream]
