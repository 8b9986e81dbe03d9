"""Database engine and schema migrations shared by every SQL-backed store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event

from aihub.config import Settings
from aihub.errors import BackendUnavailable


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(settings: Settings) -> sa.Engine:
    """An engine for ``settings``; SQLite gets WAL so a CLI and the server share the file."""
    url = settings.sqlalchemy_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=8,
            max_overflow=8,
            pool_timeout=settings.db_pool_timeout,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "handle_error", _unavailable, retval=True)
        return engine
    engine = sa.create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10,
        pool_timeout=settings.db_pool_timeout,
        connect_args={"connect_timeout": 5},  # a silent server fails a request, not hangs it
    )
    event.listen(engine, "handle_error", _unavailable, retval=True)
    return engine


def _unavailable(ctx: sa.engine.ExceptionContext) -> BaseException | None:
    """The one place where a lost or refused database connection becomes
    ``BackendUnavailable`` (503 naming the database), for every store on the engine.

    SQLAlchemy still invalidates the dead connection (and the pool's others), so once the
    server answers again the next checkout reconnects: no restart needed. Pre-ping failures
    are left alone, since that is the pool finding a stale connection and replacing it."""
    if ctx.is_pre_ping:
        return None
    if ctx.is_disconnect or isinstance(ctx.sqlalchemy_exception, sa.exc.OperationalError):
        orig = ctx.original_exception
        text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        return BackendUnavailable(ctx.dialect.name, text)
    return None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, emit BEGIN (see ``_sqlite_begin``).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()
    try:
        dbapi_conn.execute("SELECT sqrt(4.0)")
    except Exception:  # SQLite built without math functions
        import math

        dbapi_conn.create_function(
            "sqrt", 1, lambda x: None if x is None else math.sqrt(x), deterministic=True
        )


def _sqlite_begin(conn: sa.Connection) -> None:
    immediate = conn.get_execution_options().get("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that holds the write lock from its start.

    On SQLite that is ``BEGIN IMMEDIATE``, so a read-then-write never fails on a snapshot
    another writer moved; on PostgreSQL callers lock rows with ``SELECT ... FOR UPDATE``.
    """
    with engine.connect() as conn:
        conn.execution_options(immediate=True)
        with conn.begin():
            yield conn


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    location = resources.files("aihub") / "migrations"
    cfg.set_main_option("script_location", str(Path(str(location))))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (idempotent)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (tests of the migrations themselves)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
