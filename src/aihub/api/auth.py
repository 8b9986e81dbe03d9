"""API-key authentication and roles for every endpoint but ``/health``: one ASGI middleware,
so no route can be added without it.

With keys configured (any key in the database), a request needs ``Authorization: Bearer
<key>`` or ``X-API-Key: <key>``: none, unknown or revoked is a 401; a role too low for the
operation is a 403. The key's tenants become the request's scope (``aihub.auth.scope``),
which every tenant id in a request is checked against (404 outside it). Verification is a
dictionary lookup after a key's first request (``aihub.auth.cache``). Without keys the
service is open (``aihub serve`` allows that on loopback addresses only).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from aihub.api.errors import error_response
from aihub.auth.cache import KeyCache
from aihub.auth.scope import reset_current, set_current
from aihub.dashboard import is_open_path
from aihub.errors import AihubError, Forbidden, Unauthorized

OPEN_PATHS = frozenset({"/health"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that only read: online features, exports (a copy of the tenant's own data), predict.
_READ_POSTS = re.compile(r"^/ai/(features/(get|get-batch|export)|models/[^/]+/predict)/?$")
_FORCE = re.compile(rb"(^|&)force=(true|1|yes|on)(&|$)", re.IGNORECASE)


def required_role(method: str, path: str, query: bytes = b"") -> str:
    """The least role an operation needs: reads need ``read``, changes ``write``, a forced
    delete (of a production or staging version) ``admin``."""
    if method in _READ_METHODS or (method == "POST" and _READ_POSTS.match(path)):
        return "read"
    if method == "DELETE" and _FORCE.search(query):
        return "admin"
    return "write"


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or is_open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        cache: KeyCache = scope["app"].state.services.key_cache
        if not cache.enabled():
            await self.app(scope, receive, send)
            return
        try:
            principal = await _authenticate(cache, scope)
        except AihubError as exc:
            response = error_response(exc)
            if isinstance(exc, Unauthorized):
                response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        token = set_current(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_current(token)


async def _authenticate(cache: KeyCache, scope: Scope) -> Any:
    key = presented_key(scope["headers"])
    if key is None:
        raise Unauthorized("an API key is required: 'Authorization: Bearer <key>' or "
                           "'X-API-Key: <key>'")
    hit, principal = cache.cached(key)
    if not hit:
        principal = await run_in_threadpool(cache.verify, key)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    need = required_role(scope["method"], scope["path"], scope.get("query_string", b""))
    if not principal.may(need):
        raise Forbidden(f"this key's role '{principal.role}' can't do this; it needs '{need}'")
    return principal
