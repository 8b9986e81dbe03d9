"""The web dashboard: static HTML, CSS and ES modules shipped inside the package, served
by ``aihub serve`` at ``/`` (the page) and ``/dashboard/`` (its files). No build step, no
CDN: it works offline. It calls the public JSON API like any other client, so every API
rule (keys, roles, tenants, limits) applies to it unchanged."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/dashboard"
# The page and its files carry no data, so they are served without a key (the page then
# asks for one when the API answers 401).
OPEN_PATHS = frozenset({"/", "/favicon.ico"})


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(PREFIX + "/")


def install(app: FastAPI) -> None:
    index = STATIC / "index.html"

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(index, media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount(PREFIX, StaticFiles(directory=STATIC), name="dashboard")
