"""Who is calling (authentication, one ASGI middleware) and what they may do (authorization,
one FastAPI dependency per route).

**Authentication.** With keys configured (any key in the database), every request but
``/health`` needs ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``: none, unknown or
revoked is a 401 before any route runs, so no route can skip it. The key's tenants become
the request's scope (``aihub.auth.scope``), which every tenant id in a request is checked
against (404 outside it). Verification comes from memory after a key's first request
(``aihub.auth.cache``); a database failure while checking a key is a 503 naming the
database. Without keys the service is open (``aihub serve`` allows that on loopback
addresses only).

**Authorization.** Roles (``read`` < ``write`` < ``admin``) are decided on the request *as
the route parses it*, never by matching raw paths or query strings: every route declares
its role with exactly one role dependency, ``require_role("read")`` (or ``"write"``), or
``ForceDep`` for deletes, whose ``force`` parameter is the one the route itself receives
(forced: ``admin``). ``tests/security/test_auth.py`` fails when a route declares none.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Security
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from aihub.api.errors import error_response, translate_backend_error
from aihub.auth.cache import KeyCache
from aihub.auth.scope import ROLES, Principal, current, reset_current, set_current
from aihub.dashboard import is_open_path
from aihub.errors import AihubError, Forbidden, Unauthorized

OPEN_PATHS = frozenset({"/health"})


# -- authorization: one dependency per route ----------------------------------------------

def authorize(role: str) -> Principal | None:
    """The calling key if its role reaches ``role`` (None when no keys are configured);
    else ``Forbidden``."""
    principal = current()
    if principal is not None and not principal.may(role):
        raise Forbidden(f"this key's role '{principal.role}' can't do this; it needs '{role}'")
    return principal


class RoleCheck:
    """A route's fixed role: ``dependencies=[require_role("write")]``."""

    def __init__(self, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        self.role = role

    async def __call__(self) -> None:
        authorize(self.role)

    def __repr__(self) -> str:
        return f"RoleCheck({self.role!r})"


class ForceRole:
    """The role of a delete, decided on its parsed ``force`` (``write``, or ``admin`` when
    forced). The route takes ``force`` from this dependency, so the value that decides the
    role is the value the route acts on."""

    role = "write"
    forced_role = "admin"

    async def __call__(
        self,
        force: Annotated[bool, Query(description="delete even if in production or staging "
                                                 "(needs the admin role)")] = False,
    ) -> bool:
        authorize(self.forced_role if force else self.role)
        return force


_CHECKS = {role: RoleCheck(role) for role in ROLES}
_FORCE = ForceRole()


def require_role(role: str) -> Any:
    """The dependency a route lists to declare the least role it needs."""
    return Security(_CHECKS[role])


# A delete's ``force`` flag, parsed once, with the role check it implies.
ForceDep = Annotated[bool, Depends(_FORCE)]


def declared_roles(route: Any) -> list[str]:
    """Every role declaration on ``route`` (an ``APIRoute``, or the route as included with
    its router's dependencies): e.g. ``["read"]``, or ``["write|admin"]`` for a delete's
    ``force`` check. A well-formed route has exactly one."""
    found: list[str] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        call = dep.call
        if isinstance(call, RoleCheck):
            found.append(call.role)
        elif isinstance(call, ForceRole):
            found.append(f"{call.role}|{call.forced_role}")
        stack.extend(dep.dependencies)
    return found


# -- authentication: the middleware -------------------------------------------------------

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
        services = scope["app"].state.services
        cache: KeyCache = services.key_cache
        enabled = cache.enabled_now()
        if enabled is False:  # no keys configured (known from memory): open
            await self.app(scope, receive, send)
            return
        try:
            principal = await _authenticate(cache, scope, enabled)
        except Exception as exc:
            error = exc if isinstance(exc, AihubError) else translate_backend_error(
                exc, services.engine.dialect.name)
            if error is None:
                raise
            response = error_response(error)
            if isinstance(error, Unauthorized):
                response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        if principal is None:  # no keys configured: open
            await self.app(scope, receive, send)
            return
        token = set_current(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_current(token)


async def _authenticate(cache: KeyCache, scope: Scope, enabled: bool | None
                        ) -> Principal | None:
    """The calling key's principal; None when no keys are configured. Database work (the
    first sight of a key, the first "are there keys?" look) runs in a worker thread."""
    if enabled is None:
        enabled = await run_in_threadpool(cache.check_enabled)
    if not enabled:
        return None
    key = presented_key(scope["headers"])
    if key is None:
        raise Unauthorized("an API key is required: 'Authorization: Bearer <key>' or "
                           "'X-API-Key: <key>'")
    hit, principal = cache.cached(key)
    if not hit:
        principal = await run_in_threadpool(cache.verify, key)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return principal
