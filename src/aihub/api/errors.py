"""The one place where errors become HTTP responses. No stack trace ever reaches a client."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from aihub.errors import AihubError, BackendUnavailable, InvalidInput

log = logging.getLogger("aihub.api")


class ErrorPublic(BaseModel):
    """Every error response: a stable code, a message, and optional details."""

    error: str
    detail: str
    details: Any = None


_DESCRIBED = {401: "No, unknown or revoked API key", 403: "The key's role is too low",
              404: "Unknown (or another tenant's) id", 409: "Conflict",
              413: "Body, batch or artifact over a configured limit",
              422: "Invalid input (names the field and row)", 503: "A backend is down"}
# Declared on every route, so the OpenAPI schema describes the error bodies clients get.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic, "description": text} for code, text in _DESCRIBED.items()
}


def _where(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item in ("body", "query", "path", "header"):
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "request"


def validation_details(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        rows = [x for x in loc if isinstance(x, int)]
        item: dict[str, Any] = {"field": _where(loc), "message": e.get("msg", "invalid")}
        if rows:
            item["row"] = rows[0]
        details.append(item)
    first = details[0] if details else {"field": "request", "message": "invalid"}
    message = f"{first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more problem(s))"
    return message, details


def error_response(exc: AihubError) -> JSONResponse:
    """The response for a service error (also used by the ASGI middlewares). A 5xx's full
    text (a driver's error message, say) is logged; the client gets ``public_message``."""
    if exc.status_code >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message)
    return JSONResponse(exc.to_dict(), status_code=exc.status_code)


def translate_backend_error(exc: BaseException, database: str) -> AihubError | None:
    """A database error that reached the edge untranslated, as the 503 naming ``database``
    (the engine's dialect: ``postgresql``, ``sqlite``); None for anything else. Stores
    translate connection failures themselves (``aihub.db``); a pool timeout happens before
    any connection exists, so it is mapped here."""
    if isinstance(exc, sa_exc.TimeoutError):
        return BackendUnavailable(database, "no free database connection within the pool "
                                            f"timeout ({exc})")
    if isinstance(exc, sa_exc.OperationalError | psycopg.OperationalError):
        return BackendUnavailable(database, f"{type(exc).__name__}: {exc}")
    return None


def _database_name(request: Request) -> str:
    services = getattr(request.app.state, "services", None)
    engine = getattr(services, "engine", None)
    return engine.dialect.name if engine is not None else "database"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AihubError)
    async def _aihub(_: Request, exc: AihubError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = validation_details(list(exc.errors()))
        return JSONResponse(
            {"error": "invalid_input", "detail": message, "details": details}, status_code=422
        )

    @app.exception_handler(ValidationError)
    async def _invalid_body(_: Request, exc: ValidationError) -> JSONResponse:
        # Bodies a route validates itself (the hot online route) report like FastAPI's.
        message, details = validation_details(list(exc.errors()))
        return JSONResponse(
            {"error": "invalid_input", "detail": message, "details": details}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(sa_exc.DataError)
    @app.exception_handler(psycopg.DataError)
    async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
        # A value the database refuses although it passed validation (PostgreSQL rejects
        # NUL characters in text that SQLite stores): bad input, not a server fault.
        log.info("database refused a value: %s", exc)
        return error_response(InvalidInput(
            "a value in the request cannot be stored (e.g. a NUL character in a text field)"))

    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        # Stores translate connection failures themselves; this catches any path that
        # does not (and pool timeouts), so a database out of reach is a 503 naming it.
        error = translate_backend_error(exc, _database_name(request))
        assert error is not None
        return error_response(error)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            {"error": "internal_error", "detail": "internal error; see the server log"},
            status_code=500,
        )
