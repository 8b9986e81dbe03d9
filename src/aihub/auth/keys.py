"""API keys in the database: only a sha256 of each key is stored.

A key is ``aihub_<key_id>_<secret>`` with a 256-bit random secret; ``key_id`` is public
(listing, revocation). A stolen database yields no usable key.

``ApiKeyStore`` reads and writes rows on the caller's connection; ``ApiKeyService`` (what
the CLI, the server and the key cache use) opens and commits the transactions.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from aihub.auth.scope import ALL_TENANTS, ROLES, Principal
from aihub.db import write_transaction
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
    """Rows of ``api_keys``. Every method runs on the caller's connection; the
    ``ApiKeyService`` owns the transaction."""

    def insert(self, conn: sa.Connection, key: ApiKey) -> None:
        conn.execute(api_keys.insert().values(
            key_id=key.key_id, key_hash=key.key_hash, tenants=list(key.tenants),
            role=key.role, description=key.description, created_at=key.created_at,
            revoked_at=key.revoked_at))

    def list(self, conn: sa.Connection) -> builtins.list[ApiKey]:
        rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at))
        return [_key(r) for r in rows]

    def get(self, conn: sa.Connection, key_id: str) -> ApiKey | None:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        return _key(row) if row else None

    def revoke(self, conn: sa.Connection, key_id: str, at: datetime) -> bool:
        """Set ``revoked_at`` unless already revoked; True if this call revoked it."""
        done = conn.execute(api_keys.update().where(
            api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)
        ).values(revoked_at=at))
        return bool(done.rowcount)

    def find(self, conn: sa.Connection, key_hash: str) -> ApiKey | None:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return _key(row) if row else None

    def any(self, conn: sa.Connection) -> bool:
        return conn.execute(sa.select(api_keys.c.key_id).limit(1)).first() is not None


class ApiKeyService:
    """Create, list, revoke and look up keys; each call is one transaction of its own."""

    def __init__(self, engine: sa.Engine, store: ApiKeyStore | None = None) -> None:
        self.engine = engine
        self.store = store or ApiKeyStore()

    def create(self, tenants: builtins.list[str], role: str,
               description: str = "") -> tuple[ApiKey, str]:
        """A new key; the plain key is returned once and never stored."""
        scoped = _check(tenants, role)
        key_id = secrets.token_hex(6)
        plain = f"aihub_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, scoped, role, description, utcnow(), None, hash_key(plain))
        with self.engine.begin() as conn:
            self.store.insert(conn, key)
        return key, plain

    def list(self) -> builtins.list[ApiKey]:
        with self.engine.connect() as conn:
            return self.store.list(conn)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (revoking a revoked key changes nothing); NotFound if unknown."""
        with write_transaction(self.engine) as conn:
            self.store.revoke(conn, key_id, utcnow())
            key = self.store.get(conn, key_id)
        if key is None:
            raise NotFound(f"unknown key '{key_id}'")
        return key

    def find(self, key_hash: str) -> ApiKey | None:
        """The key with this hash (revoked or not), or None."""
        with self.engine.connect() as conn:
            return self.store.find(conn, key_hash)

    def any(self) -> bool:
        """Whether keys are configured: any key ever created, revoked ones included, so
        revoking the last key never opens the service."""
        with self.engine.connect() as conn:
            return self.store.any(conn)


def _key(row: sa.Row) -> ApiKey:  # type: ignore[type-arg]
    return ApiKey(row.key_id, tuple(row.tenants), row.role, row.description, row.created_at,
                  row.revoked_at, row.key_hash)
