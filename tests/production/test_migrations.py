"""Migrations on PostgreSQL: ``aihub db upgrade`` reaches head; the TimescaleDB revision is
a no-op where the extension is missing (this machine) and leaves readings a plain table."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from aihub.config import Settings
from aihub.db import create_db_engine, downgrade, upgrade, write_transaction
from aihub.services.container import build_timeseries
from aihub.stores.timeseries.base import AssetChanges
from tests.conftest import PG_ADMIN_URL, require_production

AIHUB = str(Path(sys.executable).parent / "aihub")


def _revision_0003():  # type: ignore[no-untyped-def]
    import importlib

    return importlib.import_module("aihub.migrations.versions.0003_timescaledb")


def _head() -> str:
    from alembic.script import ScriptDirectory

    from aihub.db import _alembic_config

    script = ScriptDirectory.from_config(_alembic_config())
    assert "0003" in {r.revision for r in script.walk_revisions()}
    return str(script.get_current_head())


def test_db_upgrade_cli_reaches_head_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": pg_url, "AIHUB_DATA_DIR": str(tmp_path)}
    out = subprocess.run([AIHUB, "db", "upgrade"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    head = _head()
    assert head in out.stdout
    current = subprocess.run([AIHUB, "db", "current"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert current.stdout.strip().endswith(head)


def test_timescaledb_revision_is_a_no_op_without_the_extension(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        has_ext = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'readings'").fetchone()
    assert has_ext is None
    assert kind == ("r",)  # an ordinary table
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        assert _revision_0003().timescaledb_usable(conn) is False
    engine.dispose()


# -- 0005: the change feed's transaction ids and sequence ---------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on an empty database (no migrations applied yet)."""
    if request.param == "sqlite":
        yield Settings(AIHUB_DATA_DIR=tmp_path / "data")
        return
    require_production()
    name = f"aihub_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Settings(AIHUB_DATA_DIR=tmp_path / "data",
                       DATABASE_URL=PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_0005_keeps_assets_and_continues_the_change_numbers(fresh_settings: Settings) -> None:
    """Data written at 0004 survives 0005, up and down; the first write after the upgrade
    is numbered after the last one ``ingest_seq`` handed out (PostgreSQL: by the new
    sequence), and after a downgrade the counter continues past the sequence."""
    engine = create_db_engine(fresh_settings)
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO assets (tenant_id, asset_id, timezone, kind, created_at, updated_at, "
            "data_seq) VALUES ('t', 'm1', 'UTC', 'load', :now, :now, 41)"),
            {"now": datetime(2024, 1, 1, tzinfo=UTC)})
        conn.execute(sa.text("UPDATE ingest_seq SET seq = 41 WHERE id = 1"))
    upgrade(engine)
    store = build_timeseries(fresh_settings, engine)
    (asset,) = store.get_assets("t", ["m1"])
    assert asset.data_seq == 41 and asset.timezone == "UTC"
    with write_transaction(engine) as conn:
        changed = store.upsert_asset(conn, "t", "m1", AssetChanges(timezone="Europe/Berlin"))
    assert changed.data_seq == 42
    downgrade(engine, "0004")
    with engine.connect() as conn:
        seq = conn.execute(sa.text("SELECT seq FROM ingest_seq WHERE id = 1")).scalar_one()
        row = conn.execute(sa.text("SELECT timezone, data_seq FROM assets")).one()
    assert seq >= 42 and tuple(row) == ("Europe/Berlin", 42)
    store.close()
