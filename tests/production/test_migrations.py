"""Migrations on PostgreSQL: ``aihub db upgrade`` reaches head; the TimescaleDB revision is
a no-op where the extension is missing (this machine) and leaves readings a plain table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import sqlalchemy as sa

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
