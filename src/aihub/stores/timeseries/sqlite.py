"""SQLite time-series store: the embedded default (WAL, one file under the data dir).

One writer at a time: every write runs in a ``BEGIN IMMEDIATE`` transaction
(``aihub.db.write_transaction``), which holds the database's write lock from its first
statement to its commit. Writes therefore commit in the order of the numbers they draw
from the ``ingest_seq`` counter, and the change feed is simply "assets whose ``data_seq``
is above the cursor".
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from aihub.features.frames import EDITED, ESTIMATED, WEATHER_FIELDS
from aihub.stores.feature_tables import ingest_seq
from aihub.stores.timeseries.base import Change, ChangeBatch
from aihub.stores.timeseries.rollups import (
    compute_rollups,
    in_runs,
    superseded_marks,
    touched_hour_runs,
)
from aihub.stores.timeseries.sql import SqlTimeSeriesStore, rows_frame
from aihub.stores.timeseries.versions import KEYED_COLUMNS, reading_changes
from aihub.timeutil import HOUR_US

# The current version stays unless the new one differs and is at least as recent; what is
# replaced was moved to reading_versions first (``_start_rollups``).
_UPSERT_READINGS = (
    "INSERT INTO readings (asset_key, ts, value, known_at, quality) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (asset_key, ts) DO UPDATE SET value = excluded.value, "
    "known_at = excluded.known_at, quality = excluded.quality "
    "WHERE excluded.known_at >= readings.known_at "
    "AND (excluded.value != readings.value OR excluded.quality != readings.quality)"
)
_INSERT_VERSIONS = (
    "INSERT INTO reading_versions (asset_key, ts, value, known_at, quality) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (asset_key, ts, known_at) DO UPDATE SET "
    "value = excluded.value, quality = excluded.quality"
)
# Rollups and their knowledge marks: ``first_known`` only ever moves earlier (versions are
# never dropped), so an upsert keeps the earlier of the stored and the recomputed one;
# stored NULL where it equals ``known_at``.
_FIRST_KNOWN = (
    "first_known = NULLIF(min(COALESCE(hourly_rollups.first_known, hourly_rollups.known_at), "
    "COALESCE(excluded.first_known, excluded.known_at)), excluded.known_at)"
)
_ON_ROLLUP_CONFLICT = (
    "ON CONFLICT (asset_key, hour) DO UPDATE SET "
    "n = excluded.n, mean = excluded.mean, std = excluded.std, "
    "min = excluded.min, max = excluded.max, known_at = excluded.known_at, "
    f"quality = excluded.quality, {_FIRST_KNOWN}"
)
_UPSERT_ROLLUPS = (
    "INSERT INTO hourly_rollups (asset_key, hour, n, mean, std, min, max, known_at, "
    "first_known, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " + _ON_ROLLUP_CONFLICT
)
_COPY_SINGLE_READING_HOURS = (
    "INSERT INTO hourly_rollups (asset_key, hour, n, mean, std, min, max, known_at, "
    f"first_known, quality) SELECT asset_key, ts - (ts % {HOUR_US}), 1, value, NULL, value, "
    f"value, known_at, NULL, CASE quality WHEN 1 THEN {ESTIMATED} WHEN 2 THEN {EDITED} "
    "ELSE 0 END FROM readings WHERE asset_key = ? AND ts >= ? AND ts < ? "
    + _ON_ROLLUP_CONFLICT
)
# Versions a write moved to history count towards their hour's first_known.
_SUPERSEDED_MARKS = (
    "UPDATE hourly_rollups SET first_known = NULLIF(min(COALESCE(first_known, known_at), ?), "
    "known_at) WHERE asset_key = ? AND hour = ?"
)
_UPSERT_WEATHER = (
    f"INSERT INTO weather (tenant_id, location_id, ts, {', '.join(WEATHER_FIELDS)}, known_at) "
    f"VALUES (?, ?, ?, {', '.join('?' for _ in WEATHER_FIELDS)}, ?) "
    "ON CONFLICT (tenant_id, location_id, ts) DO UPDATE SET known_at = excluded.known_at, "
    + ", ".join(f"{f} = excluded.{f}" for f in WEATHER_FIELDS)
)


class SqliteTimeSeriesStore(SqlTimeSeriesStore):
    backend_name = "sqlite"

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        self._watch: sqlite3.Connection | None = None
        self._watch_lock = threading.Lock()
        self._data_version: int | None = None
        self._seq = 0

    def changes_since(self, cursor: int | None) -> ChangeBatch:
        """Served before every online lookup, so "nothing new" must cost microseconds: a
        dedicated connection asks ``PRAGMA data_version`` (which moves when any other
        connection, in any process, commits) and reads the database only when it moved.
        The counter is read before the assets, and only numbers up to it are taken: every
        write with such a number has committed (one writer at a time)."""
        with self._watch_lock:
            if self._watch is None:
                path = self.engine.url.database or ""
                self._watch = sqlite3.connect(path, check_same_thread=False,
                                              isolation_level=None)
            watch = self._watch
            version = watch.execute("PRAGMA data_version").fetchone()[0]
            if cursor is not None and cursor == self._seq and version == self._data_version:
                return ChangeBatch([], cursor)
            seq = int(watch.execute("SELECT seq FROM ingest_seq WHERE id = 1").fetchone()[0])
            self._seq, self._data_version = seq, version
            if cursor is None or seq <= cursor:
                return ChangeBatch([], seq)
            rows = watch.execute(
                "SELECT tenant_id, asset_id, data_seq FROM assets "
                "WHERE data_seq > ? AND data_seq <= ?",
                (cursor, seq),
            ).fetchall()
        return ChangeBatch([Change(t, a, int(s)) for t, a, s in rows], seq)

    # -- writes: one at a time ------------------------------------------------------------
    def _check_write(self, conn: sa.Connection) -> None:
        if not conn.get_execution_options().get("immediate"):
            raise RuntimeError("SQLite writes need aihub.db.write_transaction (BEGIN IMMEDIATE)")

    def _lock(
        self,
        conn: sa.Connection,
        tenant_id: str,
        *,
        asset_ids: Sequence[str] = (),
        location_ids: Sequence[str] = (),
    ) -> None:
        """Nothing to take: ``BEGIN IMMEDIATE`` already holds the database's write lock."""

    def _lock_rows(self, conn: sa.Connection, keys: Sequence[int]) -> None:
        """Nothing to take: ``BEGIN IMMEDIATE`` already holds the database's write lock."""

    def _next_seq(self, conn: sa.Connection, now: datetime) -> tuple[int, int | None]:
        conn.execute(
            ingest_seq.update()
            .where(ingest_seq.c.id == 1)
            .values(seq=ingest_seq.c.seq + 1, last_ingest_at=now)
        )
        seq = conn.execute(sa.select(ingest_seq.c.seq).where(ingest_seq.c.id == 1)).scalar_one()
        return int(seq), None

    def close(self) -> None:
        with self._watch_lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None
        super().close()

    def _write_readings(self, conn: sa.Connection, rows: pl.DataFrame) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        known, quality = rows.get_column("known_at"), rows.get_column("quality")
        if known.n_unique() == 1 and quality.n_unique() == 1:
            # One knowledge time and quality for the batch (the usual ingest): bind only
            # the three varying values, as before knowledge time (binding is the slow part).
            statement = _UPSERT_READINGS.replace(
                "VALUES (?, ?, ?, ?, ?)", f"VALUES (?, ?, ?, {int(known[0])}, {int(quality[0])})"
            )
            raw.executemany(statement, _tuples(rows.select("asset_key", "ts", "value")))
            return
        raw.executemany(_UPSERT_READINGS, _tuples(rows))

    def _start_rollups(
        self, conn: sa.Connection, readings: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
        """The touched hours' stored readings overridden by the batch's winning versions,
        their runs, and the marks of what goes to history; superseded versions go to
        ``reading_versions`` here, before the batch overwrites them."""
        runs = touched_hour_runs(readings)
        prior = self._read_readings(conn, runs)
        if prior.is_empty():
            return readings, runs, None
        winners, superseded = reading_changes(readings, prior)
        moved = None
        if superseded.height:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.executemany(_INSERT_VERSIONS, _tuples(superseded))
            moved = superseded_marks(superseded)
        merged = pl.concat(
            [prior.join(winners, on=["asset_key", "ts"], how="anti"), winners],
            how="vertical",
        )
        return merged, touched_hour_runs(merged), moved

    def _finish_rollups(
        self, conn: sa.Connection, started: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None]
    ) -> None:
        readings, runs, moved = started
        raw = conn.connection.driver_connection
        assert raw is not None
        # Binding values from Python is the slow part of SQLite bulk writes. A run in which
        # every hour holds one reading has rollups equal to its readings: copy them inside
        # SQLite, and compute (and bind) only hours that aggregate several readings.
        for key, start, end in (
            runs.filter(pl.col("max_n") == 1).select("asset_key", "start", "end").iter_rows()
        ):
            raw.execute(_COPY_SINGLE_READING_HOURS, (key, start, end))
        multi = runs.filter(pl.col("max_n") > 1)
        if not multi.is_empty():
            rollups = compute_rollups(in_runs(readings, multi), with_marks=True)
            raw.executemany(_UPSERT_ROLLUPS, _tuples(rollups))
        if moved is not None:
            raw.executemany(
                _SUPERSEDED_MARKS, _tuples(moved.select("first_known", "asset_key", "hour"))
            )

    def _read_readings(self, conn: sa.Connection, runs: pl.DataFrame) -> pl.DataFrame:
        """Stored ``asset_key, ts, value, known_at, quality`` within ``runs`` (asset_key,
        start, end)."""
        raw = conn.connection.driver_connection
        assert raw is not None
        rows: list[tuple[int, int, float, int, int]] = []
        sql = (
            "SELECT asset_key, ts, value, known_at, quality FROM readings "
            "WHERE asset_key = ? AND ts >= ? AND ts < ?"
        )
        for key, start, end in runs.select("asset_key", "start", "end").iter_rows():
            rows.extend(raw.execute(sql, (key, start, end)).fetchall())
        # ``rows_frame``: through one float64 array where that is exact (a stream's batch
        # re-reads whole hours, thousands of rows, every commit).
        schema = {c: pl.Float64 if c == "value" else pl.Int64 for c in KEYED_COLUMNS}
        return rows_frame(rows, schema)

    def _write_weather(self, conn: sa.Connection, tenant_id: str, rows: pl.DataFrame) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        data = rows.select(
            pl.lit(tenant_id).alias("tenant_id"), "location_id", "ts", *WEATHER_FIELDS, "known_at"
        )
        raw.executemany(_UPSERT_WEATHER, _tuples(data))

    def _flag_in_range(self, start: str, length: str) -> str:
        return f"instr(substr(?, {start}, {length}), X'31') > 0"

    def _hour_list(self, codes: list[int]) -> tuple[str, list[Any]]:
        return "(SELECT value AS code FROM json_each(?)) AS u", [json.dumps(codes)]

    def _fetch(
        self, sql: str, params: Sequence[Any], schema: dict[str, Any], order: int = 0
    ) -> pl.DataFrame:
        with self._reader() as conn:
            raw = conn.connection.driver_connection
            rows = raw.execute(sql, list(params)).fetchall()
        return rows_frame(rows, schema)


def _tuples(frame: pl.DataFrame) -> Iterator[tuple[Any, ...]]:
    """The frame's rows as tuples for ``executemany``, made lazily from one Python list per
    column: the same values as ``frame.rows()`` (Python ints, floats, None) in about a
    third of the time, without holding every row's tuple at once."""
    return zip(*(column.to_list() for column in frame.get_columns()), strict=True)
