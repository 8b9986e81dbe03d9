"""Migration 0007 keeps the data stored before it: readings and weather become known at
their own timestamp, the current values are unchanged, and it reverts cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import sqlalchemy as sa

from aihub.config import Settings
from aihub.db import create_db_engine, downgrade, upgrade, write_transaction
from aihub.services.container import build_timeseries
from tests.production.test_migrations import fresh_settings

__all__ = ["fresh_settings"]

H0 = 1_704_067_200_000_000


def test_0007_keeps_readings_and_weather_known_at_their_time(fresh_settings: Settings) -> None:
    engine = create_db_engine(fresh_settings)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO assets (tenant_id, asset_id, timezone, kind, created_at, updated_at, "
            "data_seq) VALUES ('t', 'm1', 'UTC', 'load', :now, :now, 1)"),
            {"now": datetime(2024, 1, 1, tzinfo=UTC)})
        key = conn.execute(sa.text("SELECT asset_key FROM assets")).scalar_one()
        conn.execute(sa.text("INSERT INTO readings (asset_key, ts, value) VALUES (:k, :ts, 2.5)"),
                     {"k": key, "ts": H0})
        conn.execute(sa.text("INSERT INTO weather (tenant_id, location_id, ts, temperature) "
                             "VALUES ('t', 'l1', :ts, 4.0)"), {"ts": H0})
    upgrade(engine)
    store = build_timeseries(fresh_settings, engine)
    assert store.load_reading_versions([key], 0, 2**62).rows() == [(key, H0, H0, 2.5, 0)]
    w = store.load_weather_versions("t", ["l1"], 0, 2**62)
    assert w.select("ts", "known_at", "temperature").rows() == [(H0, H0, 4.0)]
    # A correction after the migration keeps the migrated value as a version.
    with write_transaction(engine) as conn:
        store.ingest_readings(conn, "t", pl.DataFrame(
            {"asset_id": ["m1"], "ts": [H0], "value": [3.0]}))
    assert [r[3] for r in store.load_reading_versions([key], 0, 2**62).rows()] == [2.5, 3.0]
    downgrade(engine, "0005")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM readings")).scalar_one() == 3.0
    store.close()
