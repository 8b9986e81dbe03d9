"""API keys in the database: only a sha256 of each key is stored.

A key is ``aihub_<key_id>_<secret>`` with a 256-bit random secret; ``key_id`` is public
(listing, revocation). A stolen database yields no usable key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from aihub.auth.scope import ALL_TENANTS, ROLES, Principal
from aihub.errors import InvalidInput, NotFound
from aihub.names import is_valid_name
from aihub.stores.sql_types import UTCDateTime
from aihub.timeutil import utcnow

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("tenants", sa.JSON, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    tenants: tuple[str, ...]
    role: str
    description: str
    created_at: datetime
    revoked_at: datetime | None
    key_hash: str = ""

    def principal(self) -> Principal:
        return Principal(self.key_id, frozenset(self.tenants), self.role)


def _check(tenants: list[str], role: str) -> tuple[str, ...]:
    if role not in ROLES:
        raise InvalidInput(f"role: {role!r:.40} is not one of {', '.join(ROLES)}")
    if not tenants:
        raise InvalidInput("tenants: a key needs at least one tenant (or '*')")
    for t in tenants:
        if t != ALL_TENANTS and not is_valid_name(t):
            raise InvalidInput(f"tenants: {t!r:.80} is not a valid tenant name")
    return tuple(dict.fromkeys(tenants))


class ApiKeyStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, tenants: list[str], role: str, description: str = "") -> tuple[ApiKey, str]:
        """A new key; the plain key is returned once and never stored."""
        scoped = _check(tenants, role)
        key_id = secrets.token_hex(6)
        plain = f"aihub_{key_id}_{secrets.token_urlsafe(32)}"
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(
                key_id=key_id, key_hash=hash_key(plain), tenants=list(scoped), role=role,
                description=description, created_at=now, revoked_at=None))
        return ApiKey(key_id, scoped, role, description, now, None, hash_key(plain)), plain

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at))
            return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with self.engine.begin() as conn:
            done = conn.execute(api_keys.update().where(
                api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)
            ).values(revoked_at=utcnow())).rowcount
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise NotFound(f"unknown key '{key_id}'")
        if not done and row.revoked_at is None:  # pragma: no cover - raced with itself
            raise NotFound(f"unknown key '{key_id}'")
        return _key(row)

    def find(self, key_hash: str) -> ApiKey | None:
        """The key with this hash (revoked or not), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return _key(row) if row else None

    def any(self) -> bool:
        """Whether keys are configured: any key ever created, revoked ones included, so
        revoking the last key never opens the service."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(api_keys.c.key_id).limit(1)).first() is not None


def _key(row: sa.Row) -> ApiKey:  # type: ignore[type-arg]
    return ApiKey(row.key_id, tuple(row.tenants), row.role, row.description, row.created_at,
                  row.revoked_at, row.key_hash)
