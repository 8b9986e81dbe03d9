"""TimescaleDB: make ``readings`` a hypertable where the extension exists.

Only on PostgreSQL with the ``timescaledb`` extension installed (or available and preloaded,
which ``CREATE EXTENSION`` needs); everywhere else, SQLite and plain PostgreSQL included,
this revision does nothing and the rest of aihub is unchanged. ``readings`` keys instants as
BIGINT epoch microseconds, so chunks are an integer interval (7 days).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHUNK_US = 7 * 24 * 3600 * 1_000_000


def timescaledb_usable(bind: sa.Connection) -> bool:
    if bind.dialect.name != "postgresql":
        return False
    installed = bind.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    ).first()
    if installed:
        return True
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).first()
    preload = bind.execute(sa.text("SHOW shared_preload_libraries")).scalar() or ""
    return bool(available) and "timescaledb" in preload


def upgrade() -> None:
    bind = op.get_bind()
    if not timescaledb_usable(bind):
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    op.execute(
        "SELECT create_hypertable('readings', 'ts', "
        f"chunk_time_interval => {CHUNK_US}::bigint, "
        "migrate_data => true, if_not_exists => true)"
    )


def downgrade() -> None:
    # A hypertable stays one (TimescaleDB has no in-place reversal); the schema aihub
    # reads and writes is identical either way, so 0002 code runs on it unchanged.
    pass
