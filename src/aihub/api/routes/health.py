"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from aihub import __version__
from aihub.api.deps import ServicesDep
from aihub.errors import AihubError

router = APIRouter(tags=["health"])


@router.get("/health", summary="Process is up")
def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/ready", summary="Every backend reachable")
def ready(services: ServicesDep) -> JSONResponse:
    checks: dict[str, dict[str, str]] = {}
    backends = [
        ("database", services.timeseries),
        ("online_cache", services.online),
        *services.extras.get("ready_checks", []),
    ]
    for name, backend in backends:
        try:
            backend.ping()
            checks[name] = {"status": "ok", "backend": getattr(backend, "backend_name", name)}
        except AihubError as exc:
            checks[name] = {"status": "unavailable", "detail": exc.message}
        except Exception as exc:  # a backend's own error type: report, don't crash
            checks[name] = {"status": "unavailable", "detail": type(exc).__name__}
    ok = all(c["status"] == "ok" for c in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503
    )
