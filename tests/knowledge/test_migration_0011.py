"""Migration 0011 fills the knowledge marks of the hours stored before it (from the
readings and their superseded versions), so "as known at K" needs no pass over readings;
ingest keeps them after it, and it reverts cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import sqlalchemy as sa

from aihub.config import Settings
from aihub.db import create_db_engine, downgrade, upgrade, write_transaction
from aihub.services.container import build_timeseries
from tests.contract.test_knowledge_store import marks_by_definition, stored_marks
from tests.production.test_migrations import fresh_settings

__all__ = ["fresh_settings"]

H0 = 1_704_067_200_000_000
HOUR = 3_600_000_000
MIN = 60_000_000

# (ts, value, known_at, quality) current readings, and superseded versions, as 0010 held them
_CURRENT = [(H0, 1.0, H0 + HOUR + MIN, 0), (H0 + 30 * MIN, 2.0, H0 + 5 * HOUR, 2),
            (H0 + HOUR, 4.0, H0 + 30 * HOUR, 0), (H0 + 2 * HOUR, 5.0, H0 + 3 * HOUR, 1)]
_SUPERSEDED = [(H0 + HOUR, 3.5, H0 + 2 * HOUR, 1), (H0 + HOUR, 3.0, H0 + 90 * MIN, 1)]
_ROLLUPS = [(H0, 2, 1.5, 1.0, 2.0), (H0 + HOUR, 1, 4.0, 4.0, 4.0),
            (H0 + 2 * HOUR, 1, 5.0, 5.0, 5.0)]


def test_0011_fills_the_marks_of_existing_hours(fresh_settings: Settings) -> None:
    engine = create_db_engine(fresh_settings)
    upgrade(engine, "0010")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO assets (tenant_id, asset_id, timezone, kind, created_at, updated_at, "
            "data_seq) VALUES ('t', 'm1', 'UTC', 'load', :now, :now, 1)"),
            {"now": datetime(2024, 1, 1, tzinfo=UTC)})
        key = conn.execute(sa.text("SELECT asset_key FROM assets")).scalar_one()
        for table, rows in (("readings", _CURRENT), ("reading_versions", _SUPERSEDED)):
            conn.execute(sa.text(
                f"INSERT INTO {table} (asset_key, ts, value, known_at, quality) "
                "VALUES (:k, :ts, :v, :known, :q)"),
                [{"k": key, "ts": t, "v": v, "known": k, "q": q} for t, v, k, q in rows])
        conn.execute(sa.text(
            "INSERT INTO hourly_rollups (asset_key, hour, n, mean, std, min, max) "
            "VALUES (:k, :h, :n, :mean, NULL, :lo, :hi)"),
            [{"k": key, "h": h, "n": n, "mean": m, "lo": lo, "hi": hi}
             for h, n, m, lo, hi in _ROLLUPS])
    upgrade(engine)
    store = build_timeseries(fresh_settings, engine)
    try:
        assert stored_marks(store, key) == [
            (key, H0, H0 + 5 * HOUR, H0 + HOUR + MIN, 2),
            (key, H0 + HOUR, H0 + 30 * HOUR, H0 + 90 * MIN, 0),
            (key, H0 + 2 * HOUR, H0 + 3 * HOUR, H0 + 3 * HOUR, 1),
        ]
        assert stored_marks(store, key) == marks_by_definition(store, key)
        # Ingest after the migration keeps them.
        with write_transaction(engine) as conn:
            store.ingest_readings(conn, "t", pl.DataFrame(
                {"asset_id": ["m1", "m1"], "ts": [H0 + 2 * HOUR, H0 + 3 * HOUR],
                 "value": [6.0, 1.0], "known_at": [H0 + 50 * HOUR, H0 + 4 * HOUR]}))
        assert stored_marks(store, key) == marks_by_definition(store, key)
        assert stored_marks(store, key)[2] == (key, H0 + 2 * HOUR, H0 + 50 * HOUR,
                                               H0 + 3 * HOUR, 0)
        downgrade(engine, "0010")
        with engine.connect() as conn:
            cols = {c["name"] for c in sa.inspect(conn).get_columns("hourly_rollups")}
            assert not cols & {"known_at", "first_known", "quality"}
            assert conn.execute(sa.text("SELECT COUNT(*) FROM hourly_rollups")).scalar() == 4
    finally:
        store.close()
