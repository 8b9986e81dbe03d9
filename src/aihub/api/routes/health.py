"""Liveness and readiness."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from aihub import __version__
from aihub.api.auth import require_role
from aihub.api.deps import ServicesDep
from aihub.errors import AihubError

log = logging.getLogger("aihub.api")

router = APIRouter(tags=["health"])


@router.get("/health", summary="Process is up")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False,
            dependencies=[require_role("read")])
def metrics() -> Response:
    from aihub.metrics import render

    body, content_type = render()
    return Response(body, media_type=content_type)


@router.get("/ready", summary="Every backend reachable", dependencies=[require_role("read")])
def ready(services: ServicesDep) -> JSONResponse:
    checks: dict[str, dict[str, str]] = {}
    backends = [
        ("database", services.timeseries),
        ("online_cache", services.online),
        *services.extras.get("ready_checks", []),
    ]
    critical_down = False
    for name, backend in backends:
        try:
            backend.ping()
            checks[name] = {"status": "ok", "backend": getattr(backend, "backend_name", name)}
            continue
        except AihubError as exc:  # the backend's own words go to the log only
            log.info("readiness: %s: %s", name, exc.message)
            checks[name] = {"status": "unavailable", "detail": exc.public_message}
        except Exception as exc:  # a backend's own error type: report, don't crash
            checks[name] = {"status": "unavailable", "detail": type(exc).__name__}
        # A non-critical backend (Redis) down degrades serving but does not stop it: the
        # replica stays in rotation (200) and says so.
        critical_down = critical_down or getattr(backend, "critical", True)
    ok = all(c["status"] == "ok" for c in checks.values())
    status = "ready" if ok else ("unavailable" if critical_down else "degraded")
    return JSONResponse({"status": status, "checks": checks},
                        status_code=503 if critical_down else 200)
