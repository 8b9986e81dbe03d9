"""The current request's tenant scope: the one tenant check.

The API's auth middleware sets the scope of the calling key for the request; everything
else (CLI, tests, open mode) runs unrestricted. A tenant outside the scope is reported as
**not found**, exactly like a tenant, asset, export or model that does not exist, so ids of
other tenants can't be probed.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from aihub.errors import NotFound

ROLES = ("read", "write", "admin")
ALL_TENANTS = "*"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's id, its tenants (``*`` = every tenant) and its role."""

    key_id: str
    tenants: frozenset[str]
    role: str

    @property
    def all_tenants(self) -> bool:
        return ALL_TENANTS in self.tenants

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def covers(self, tenant_id: str) -> bool:
        return ALL_TENANTS in self.tenants or tenant_id in self.tenants


_current: ContextVar[Principal | None] = ContextVar("aihub_principal", default=None)


def current() -> Principal | None:
    """The calling key, or None when unrestricted (no keys configured, CLI, tests)."""
    return _current.get()


def set_current(principal: Principal | None) -> object:
    return _current.set(principal)


def reset_current(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def check_tenant(tenant_id: str, not_found: str | None = None) -> str:
    """``tenant_id`` if the caller may reach it, else NotFound with ``not_found`` (the
    message an unknown id of that kind gets, so the two can't be told apart)."""
    p = _current.get()
    if p is None or p.covers(tenant_id):
        return tenant_id
    raise NotFound(not_found or f"unknown tenant '{tenant_id}'")


def visible_tenants() -> tuple[str, ...] | None:
    """The tenants a listing without ``tenant_id`` may show; None = every tenant."""
    p = _current.get()
    if p is None or p.all_tenants:
        return None
    return tuple(sorted(p.tenants))
