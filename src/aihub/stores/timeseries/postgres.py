"""PostgreSQL (and TimescaleDB) time-series store: the production backend.

What differs from SQLite is the bulk path, and only that:

- readings go in through binary ``COPY`` built straight from the frame's columns with
  NumPy (no Python object per value). A batch of new data is copied into ``readings``
  directly; if it collides with stored readings (a correction) the copy is rolled back to
  a savepoint and the rows are copied into a temporary table, from which changed values
  move their older version to ``reading_versions`` and the newer is upserted;
- rollups of hours new to the store are the batch's own (``compute_rollups``, the one
  definition; where every hour of a run holds one reading, its readings projected, which
  leaves the core to PostgreSQL), computed on a second thread while PostgreSQL takes the
  readings and then copied. Runs of hours that held readings before are recomputed
  **in SQL** from the table itself, so the process never reads stored readings back (same
  semantics: sample std, null below two readings, exactly 0 when min == max);
- reads run as ``COPY (query) TO STDOUT``: binary for numeric columns (read by NumPy),
  CSV otherwise (parsed by Polars; PostgreSQL prints floats in shortest round-trip form):
  one buffer, no Python tuple per row, values back bit for bit.

Writers of different assets run concurrently; each write holds advisory locks on the
assets it writes, so the fast path's "no collision" assumption cannot race another writer
of the same asset. Locks and the change feed: ``pg_concurrency``.
"""

from __future__ import annotations

import io
import struct
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import psycopg
import sqlalchemy as sa

from aihub.errors import BackendUnavailable
from aihub.features.frames import EDITED, ESTIMATED, WEATHER_FIELDS
from aihub.stores.timeseries import pg_concurrency
from aihub.stores.timeseries.base import ChangeBatch
from aihub.stores.timeseries.rollups import compute_rollups, in_runs, touched_hour_runs
from aihub.stores.timeseries.sql import SqlTimeSeriesStore, rows_frame
from aihub.timeutil import HOUR_US

BACKEND = "postgresql"

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
# One binary COPY tuple of (int4 asset_key, int8 ts, float8 value), big-endian, unpadded.
_READING_TUPLE = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_key", ">i4"), ("asset_key", ">i4"),
        ("len_ts", ">i4"), ("ts", ">i8"),
        ("len_value", ">i4"), ("value", ">f8"),
    ]
)

# The same with the knowledge time (int8) and quality (int2): what ingest sends.
_KNOWN_READING_TUPLE = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_key", ">i4"), ("asset_key", ">i4"),
        ("len_ts", ">i4"), ("ts", ">i8"),
        ("len_value", ">i4"), ("value", ">f8"),
        ("len_known", ">i4"), ("known_at", ">i8"),
        ("len_quality", ">i4"), ("quality", ">i2"),
    ]
)

_COPY_IN = (
    "COPY {table} (asset_key, ts, value, known_at, quality) FROM STDIN (FORMAT binary)"
)
# One binary COPY tuple of an hour's rollup and its marks. A NULL is sent as a field of
# length -1 without data, so each combination of a NULL std (hours of one reading) and a
# NULL first_known (equal to known_at) has a layout of its own.
def _rollup_layout(with_std: bool, with_first_known: bool) -> np.dtype:
    return np.dtype([
        ("nfields", ">i2"),
        ("len_key", ">i4"), ("asset_key", ">i4"),
        ("len_hour", ">i4"), ("hour", ">i8"),
        ("len_n", ">i4"), ("n", ">i4"),
        ("len_mean", ">i4"), ("mean", ">f8"),
        ("len_std", ">i4"), *([("std", ">f8")] if with_std else []),
        ("len_min", ">i4"), ("min", ">f8"),
        ("len_max", ">i4"), ("max", ">f8"),
        ("len_known", ">i4"), ("known_at", ">i8"),
        ("len_first", ">i4"), *([("first_known", ">i8")] if with_first_known else []),
        ("len_quality", ">i4"), ("quality", ">i2"),
    ])


_ROLLUP_LAYOUTS = {(s, f): _rollup_layout(s, f) for s in (True, False) for f in (True, False)}
_COPY_ROLLUPS = (
    "COPY hourly_rollups (asset_key, hour, n, mean, std, min, max, known_at, first_known, "
    "quality) FROM STDIN (FORMAT binary)"
)
_STAGE = "aihub_known_readings_in"
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (asset_key integer, ts bigint, "
    "value double precision, known_at bigint, quality smallint) ON COMMIT DELETE ROWS"
)
# Versions: of two different values of an (asset, ts), the older by known_at goes to
# reading_versions and the newer stays in readings (a tie replaces); an equal one is a no-op.
_CHANGED = "(s.value <> r.value OR s.quality <> r.quality)"
_VERSIONS_FROM_STAGE = f"""
INSERT INTO reading_versions (asset_key, ts, known_at, value, quality)
SELECT r.asset_key, r.ts, r.known_at, r.value, r.quality
FROM {_STAGE} s JOIN readings r ON r.asset_key = s.asset_key AND r.ts = s.ts
WHERE {_CHANGED} AND s.known_at > r.known_at
UNION ALL
SELECT s.asset_key, s.ts, s.known_at, s.value, s.quality
FROM {_STAGE} s JOIN readings r ON r.asset_key = s.asset_key AND r.ts = s.ts
WHERE {_CHANGED} AND s.known_at < r.known_at
ON CONFLICT (asset_key, ts, known_at) DO UPDATE SET
    value = EXCLUDED.value, quality = EXCLUDED.quality
"""
# Versions older than the current one that a batch sends go straight to history; their
# knowledge time counts towards their hour's first_known (run before the upsert).
_SUPERSEDED_MARKS = f"""
UPDATE hourly_rollups h
SET first_known = NULLIF(LEAST(COALESCE(h.first_known, h.known_at), m.k), h.known_at)
FROM (SELECT s.asset_key, s.ts / {HOUR_US} * {HOUR_US} AS hour, min(s.known_at) AS k
      FROM {_STAGE} s JOIN readings r ON r.asset_key = s.asset_key AND r.ts = s.ts
      WHERE {_CHANGED} AND s.known_at < r.known_at GROUP BY 1, 2) m
WHERE h.asset_key = m.asset_key AND h.hour = m.hour
"""
_UPSERT_FROM_STAGE = (
    f"INSERT INTO readings (asset_key, ts, value, known_at, quality) "
    f"SELECT asset_key, ts, value, known_at, quality FROM {_STAGE} "
    "ON CONFLICT (asset_key, ts) DO UPDATE SET value = EXCLUDED.value, "
    "known_at = EXCLUDED.known_at, quality = EXCLUDED.quality "
    "WHERE EXCLUDED.known_at >= readings.known_at "
    "AND (EXCLUDED.value <> readings.value OR EXCLUDED.quality <> readings.quality)"
)
# Rollups of the touched hours, computed where the readings are. Runs arrive as parallel
# arrays (asset_key, start, end) so one statement covers every run of a batch.
_RUNS = "unnest(%s::integer[], %s::bigint[], %s::bigint[]) AS u(k, s, e)"
# Marks: first_known only ever moves earlier (versions are never dropped), so an upsert
# keeps the earlier of the stored and the recomputed one; NULL where it equals known_at.
_FIRST_KNOWN = (
    "NULLIF(LEAST(COALESCE(hourly_rollups.first_known, hourly_rollups.known_at), "
    "COALESCE(EXCLUDED.first_known, EXCLUDED.known_at)), EXCLUDED.known_at)"
)
_RECOMPUTE_ROLLUPS = f"""
INSERT INTO hourly_rollups (asset_key, hour, n, mean, std, min, max, known_at, first_known,
                            quality)
SELECT r.asset_key, r.ts - r.ts %% {HOUR_US} AS hour, count(*), avg(r.value),
       CASE WHEN count(*) < 2 THEN NULL
            WHEN min(r.value) = max(r.value) THEN 0.0
            ELSE stddev_samp(r.value) END,
       min(r.value), max(r.value), max(r.known_at),
       NULLIF(min(r.known_at), max(r.known_at)),
       {ESTIMATED} * max(CASE WHEN r.quality = 1 THEN 1 ELSE 0 END)
       + {EDITED} * max(CASE WHEN r.quality = 2 THEN 1 ELSE 0 END)
FROM {_RUNS}
JOIN readings r ON r.asset_key = u.k AND r.ts >= u.s AND r.ts < u.e
GROUP BY 1, 2
ON CONFLICT (asset_key, hour) DO UPDATE SET
    n = EXCLUDED.n, mean = EXCLUDED.mean, std = EXCLUDED.std,
    min = EXCLUDED.min, max = EXCLUDED.max, known_at = EXCLUDED.known_at,
    quality = EXCLUDED.quality, first_known = {_FIRST_KNOWN}
"""
# Runs that already had rollups (so readings) before this batch; rollups are exact, so a
# run without any had no readings either.
_RUNS_WITH_HISTORY = """
SELECT u.i FROM unnest(%s::integer[], %s::bigint[], %s::bigint[]) WITH ORDINALITY
    AS u(k, s, e, i)
WHERE EXISTS (SELECT 1 FROM hourly_rollups h
              WHERE h.asset_key = u.k AND h.hour >= u.s AND h.hour < u.e)
"""
_UPSERT_WEATHER = (
    f"INSERT INTO weather (tenant_id, location_id, ts, {', '.join(WEATHER_FIELDS)}, known_at) "
    f"VALUES (%s, %s, %s, {', '.join('%s' for _ in WEATHER_FIELDS)}, %s) "
    "ON CONFLICT (tenant_id, location_id, ts) DO UPDATE SET known_at = EXCLUDED.known_at, "
    + ", ".join(f"{f} = EXCLUDED.{f}" for f in WEATHER_FIELDS)
)


def binary_tuples(rows: pl.DataFrame, layout: np.dtype) -> np.ndarray:
    """Rows as binary COPY tuples of ``layout``: ``nfields``, then per field its length
    (``len_*``) and the column of ``rows`` of the same name; a length with no column after
    it is a NULL (-1, no data)."""
    fields = [n for n in layout.names or () if n != "nfields"]
    out = np.empty(rows.height, dtype=layout)
    out["nfields"] = sum(n.startswith("len_") for n in fields)
    for i, name in enumerate(fields):
        if not name.startswith("len_"):
            continue
        column = fields[i + 1] if i + 1 < len(fields) else None
        if column is None or column.startswith("len_"):
            out[name] = -1
        else:
            out[name] = layout[column].itemsize
            out[column] = rows.get_column(column).to_numpy()
    return out


def reading_tuples(rows: pl.DataFrame) -> np.ndarray:
    """``asset_key, ts, value`` rows as binary COPY tuples (``copy_tuples`` sends them)."""
    return binary_tuples(rows, _READING_TUPLE)


def known_reading_tuples(rows: pl.DataFrame) -> np.ndarray:
    """``asset_key, ts, value, known_at, quality`` rows as binary COPY tuples."""
    return binary_tuples(rows, _KNOWN_READING_TUPLE)


def copy_tuples(cur: psycopg.Cursor[Any], statement: str, *tuples: np.ndarray) -> None:
    """One binary ``COPY ... FROM STDIN`` of prepared tuples, sent without copying them."""
    with cur.copy(statement) as cp:
        cp.write(_COPY_HEADER)
        for part in tuples:
            cp.write(part.view(np.uint8).data)
        cp.write(_COPY_TRAILER)


def parse_binary_arrays(data: memoryview | bytes, schema: dict[str, Any]) -> pl.DataFrame:
    """A binary COPY of one row of arrays, one per column of ``schema``, of 8-byte values
    (bigint, float8; floats with NULL sent as NaN, which no stored value is) into a frame."""
    at = len(_COPY_HEADER) + 2  # past the row's field count
    columns = {}
    for name, dtype in schema.items():
        (length,) = struct.unpack_from(">i", data, at)
        at += 4
        if length < 0:  # array_agg of no rows: NULL
            return pl.DataFrame(schema=schema)
        ndim, has_null = struct.unpack_from(">ii", data, at)
        count = struct.unpack_from(">i", data, at + 12)[0] if ndim else 0
        code = ">q" if dtype == pl.Int64 else ">d"
        start = at + 12 + 8 * ndim
        at += length
        if has_null:  # a NULL integer (none is expected): element by element
            values: list[Any] = []
            pos = start
            for _ in range(count):
                (size,) = struct.unpack_from(">i", data, pos)
                values.append(None if size < 0 else struct.unpack_from(code, data, pos + 4)[0])
                pos += 4 + max(size, 0)
            columns[name] = pl.Series(name, values, dtype=dtype)
            continue
        element = np.dtype([("len", ">i4"), ("v", code)])
        array = np.frombuffer(data, dtype=element, count=count, offset=start)["v"]
        series = pl.Series(name, array.astype("<i8" if dtype == pl.Int64 else "<f8"))
        columns[name] = series.fill_nan(None) if dtype == pl.Float64 else series
    return pl.DataFrame(columns, schema=schema)


def _ordered(frame: pl.DataFrame, order: int) -> pl.DataFrame:
    """``frame`` sorted by its first ``order`` columns, as its query ordered it: an array
    aggregate over an ordered subquery keeps that order in practice; this makes sure."""
    if order == 0 or frame.height < 2:
        return frame
    keys = frame.columns[:order]
    codes = [frame.get_column(k).to_numpy() for k in keys]
    later = np.zeros(frame.height - 1, dtype=bool)
    same = np.ones(frame.height - 1, dtype=bool)
    for c in codes:
        d = np.diff(c)
        later |= same & (d > 0)
        same &= d == 0
    if (later | same).all():
        return frame
    return frame.sort(keys, maintain_order=True)


def rollup_tuples(rollups: pl.DataFrame) -> list[np.ndarray]:
    """Rollups with their marks (``compute_rollups(..., with_marks=True)``) as binary COPY
    tuples, one array per layout (``_ROLLUP_LAYOUTS``) that has rows."""
    if rollups.is_empty():
        return []
    std_nulls = rollups.get_column("std").null_count()
    first_nulls = rollups.get_column("first_known").null_count()
    if std_nulls in (0, rollups.height) and first_nulls in (0, rollups.height):
        # One layout for all (hourly data: no std, one arrival): no partitioning copy.
        return [binary_tuples(rollups, _ROLLUP_LAYOUTS[(std_nulls == 0, first_nulls == 0)])]
    parts = rollups.with_columns(
        pl.col("std").is_not_null().alias("_s"), pl.col("first_known").is_not_null().alias("_f")
    ).partition_by("_s", "_f", as_dict=True)
    return [binary_tuples(part, _ROLLUP_LAYOUTS[(bool(s), bool(f))])
            for (s, f), part in parts.items()]


@dataclass(frozen=True)
class _RollupPrep:
    """What an ingest's rollups need from the batch alone, prepared while its readings
    are being copied (``_prepare_rollups``)."""

    runs: pl.DataFrame  # touched_hour_runs of the batch
    rollups: pl.DataFrame  # of the batch's readings alone: exact for hours new to the store
    tuples: list[np.ndarray]  # those rollups for COPY


def _prepare_rollups(readings: pl.DataFrame) -> _RollupPrep:
    runs = touched_hour_runs(readings)
    rollups = batch_rollups(readings, runs)
    return _RollupPrep(runs, rollups, rollup_tuples(rollups))


def batch_rollups(readings: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """``compute_rollups(readings, with_marks=True)``, grouping only where it must: in runs
    whose hours each hold one reading (hourly meters) a rollup is its reading.

    The grouping of every reading into its own hour costs the prepare thread ~0.3 s per
    million readings, on a core PostgreSQL needs at the same time for the readings' COPY;
    the projection costs a tenth of that."""
    single = runs.get_column("max_n") == 1
    if not single.any():
        return compute_rollups(readings, with_marks=True)
    if single.all():
        return single_reading_rollups(readings)
    one, several = runs.filter(single), runs.filter(~single)
    return pl.concat([
        single_reading_rollups(in_runs(readings, one)),
        compute_rollups(in_runs(readings, several), with_marks=True),
    ]).sort("asset_key", "hour")


def single_reading_rollups(readings: pl.DataFrame) -> pl.DataFrame:
    """What ``compute_rollups(readings, with_marks=True)`` gives when no two readings share
    an hour: each reading's hour with n 1, its value as mean, min and max, no std, its
    knowledge time (``first_known`` null: equal) and its quality as the hour's bits."""
    quality = pl.col("quality")
    rollups = readings.select(
        pl.col("asset_key").cast(pl.Int64),
        (pl.col("ts") // HOUR_US * HOUR_US).alias("hour"),
        pl.lit(1, pl.Int64).alias("n"),
        pl.col("value").cast(pl.Float64).alias("mean"),
        pl.lit(None, pl.Float64).alias("std"),
        pl.col("value").cast(pl.Float64).alias("min"),
        pl.col("value").cast(pl.Float64).alias("max"),
        pl.col("known_at").cast(pl.Int64),
        pl.lit(None, pl.Int64).alias("first_known"),
        ((quality == 1).cast(pl.Int64) * ESTIMATED + (quality == 2).cast(pl.Int64) * EDITED)
        .alias("quality"),
    )
    ordered = rollups.select(
        ((pl.col("asset_key").diff() > 0)
         | ((pl.col("asset_key").diff() == 0) & (pl.col("hour").diff() > 0))).all()
    ).item()
    return rollups if ordered else rollups.sort("asset_key", "hour")


def _prepare_in_background(readings: pl.DataFrame) -> Future[_RollupPrep]:
    """``_prepare_rollups`` on a thread of its own: NumPy and Polars release the GIL, so it
    runs on another core while PostgreSQL takes the readings. A thread per ingest (not a
    pool) keeps this safe in processes forked after an earlier ingest."""
    future: Future[_RollupPrep] = Future()

    def run() -> None:
        try:
            future.set_result(_prepare_rollups(readings))
        except BaseException as exc:  # handed to the ingest, which raises it
            future.set_exception(exc)

    threading.Thread(target=run, name="aihub-rollups", daemon=True).start()
    return future


@contextmanager
def _translated() -> Iterator[None]:
    """Driver-level connection failures become ``BackendUnavailable('postgresql')``."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise BackendUnavailable(BACKEND, str(exc).strip() or type(exc).__name__) from exc


def _raw(conn: sa.Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def _run_arrays(runs: pl.DataFrame) -> tuple[list[int], list[int], list[int]]:
    return (
        runs.get_column("asset_key").to_list(),
        runs.get_column("start").to_list(),
        runs.get_column("end").to_list(),
    )


class PostgresTimeSeriesStore(SqlTimeSeriesStore):
    backend_name = BACKEND

    # -- locks and the change feed (``pg_concurrency``) -----------------------------------
    def _lock(
        self,
        conn: sa.Connection,
        tenant_id: str,
        *,
        asset_ids: Sequence[str] = (),
        location_ids: Sequence[str] = (),
    ) -> None:
        with _translated(), _raw(conn).cursor() as cur:
            pg_concurrency.take_locks(cur, tenant_id, asset_ids, location_ids)

    def _lock_rows(self, conn: sa.Connection, keys: Sequence[int]) -> None:
        with _translated(), _raw(conn).cursor() as cur:
            pg_concurrency.lock_rows(cur, keys)

    def _next_seq(self, conn: sa.Connection, now: datetime) -> tuple[int, int | None]:
        with _translated(), _raw(conn).cursor() as cur:
            return pg_concurrency.next_seq(cur)

    def changes_since(self, cursor: int | None) -> ChangeBatch:
        """See ``pg_concurrency``: the cursor is a transaction horizon, never past a write
        still in flight."""
        with self._connect() as conn, _translated(), _raw(conn).cursor() as cur:
            return pg_concurrency.changes_since(cur, cursor)

    def _write_readings(self, conn: sa.Connection, rows: pl.DataFrame) -> None:
        tuples = known_reading_tuples(rows)
        raw = _raw(conn)
        with _translated(), raw.cursor() as cur:
            cur.execute("SAVEPOINT aihub_copy")
            try:
                copy_tuples(cur, _COPY_IN.format(table="readings"), tuples)
            except psycopg.errors.UniqueViolation:
                # Corrections: some rows exist. Stage them and upsert instead.
                cur.execute("ROLLBACK TO SAVEPOINT aihub_copy")
                cur.execute(_CREATE_STAGE)
                cur.execute(f"TRUNCATE {_STAGE}")
                copy_tuples(cur, _COPY_IN.format(table=_STAGE), tuples)
                cur.execute(_VERSIONS_FROM_STAGE)
                cur.execute(_SUPERSEDED_MARKS)
                cur.execute(_UPSERT_FROM_STAGE)
            cur.execute("RELEASE SAVEPOINT aihub_copy")

    def _start_rollups(self, conn: sa.Connection, readings: pl.DataFrame) -> Future[_RollupPrep]:
        return _prepare_in_background(readings)

    def _finish_rollups(self, conn: sa.Connection, started: Future[_RollupPrep]) -> None:
        prep = started.result()
        if prep.runs.is_empty():
            return
        with _translated(), _raw(conn).cursor() as cur:
            # Hours new to the store have the batch's rollups: they go in by COPY. Runs that
            # held readings before are recomputed in SQL from the table itself, so no stored
            # reading travels to this process.
            cur.execute(_RUNS_WITH_HISTORY, _run_arrays(prep.runs))
            history = {int(i) - 1 for (i,) in cur.fetchall()}
            if not history:
                copy_tuples(cur, _COPY_ROLLUPS, *prep.tuples)
                return
            rerun = prep.runs.with_row_index("_i").filter(pl.col("_i").is_in(list(history)))
            fresh = prep.rollups.rename({"hour": "ts"})
            fresh = fresh.join(in_runs(fresh, rerun), on=["asset_key", "ts"], how="anti")
            if not fresh.is_empty():
                copy_tuples(cur, _COPY_ROLLUPS, *rollup_tuples(fresh.rename({"ts": "hour"})))
            # Large aggregates: keep them in memory and skip JIT compilation (it costs more
            # than it saves on a statement that runs once).
            cur.execute("SET LOCAL jit = off")
            cur.execute("SET LOCAL work_mem = '256MB'")
            cur.execute(_RECOMPUTE_ROLLUPS, _run_arrays(rerun))

    def _write_weather(self, conn: sa.Connection, tenant_id: str, rows: pl.DataFrame) -> None:
        data = rows.select(
            pl.lit(tenant_id).alias("tenant_id"), "location_id", "ts", *WEATHER_FIELDS, "known_at"
        )
        with _translated(), _raw(conn).cursor() as cur:
            cur.executemany(_UPSERT_WEATHER, data.rows())

    def _flag_in_range(self, start: str, length: str) -> str:
        window = f"substring(CAST(? AS bytea) from {start} for {length})"
        return f"position('\\x31'::bytea in {window}) > 0"

    def _hour_list(self, codes: list[int]) -> tuple[str, list[Any]]:
        return "unnest(CAST(? AS bigint[])) AS u(code)", ["{" + ",".join(map(str, codes)) + "}"]

    def _fetch(
        self, sql: str, params: Sequence[Any], schema: dict[str, Any], order: int = 0
    ) -> pl.DataFrame:
        query = sql.replace("%", "%%").replace("?", "%s")  # "?" placeholders, literal "%"
        if self._few():
            # Few rows (an online request): a plain query, prepared by the driver once it
            # repeats (no planning), with binary results; a COPY costs more to start.
            with self._reader() as conn, _translated(), _raw(conn).cursor(binary=True) as cur:
                rows = cur.execute(query, list(params)).fetchall()
            return rows_frame(rows, schema)
        numeric = all(t in (pl.Int64, pl.Float64) for t in schema.values())
        if numeric:
            # Fixed-width binary: no float formatting on the server, no parsing here. The
            # rows travel as one array per column (one COPY message: a message per row
            # costs more in the driver than everything else); the arrays of one aggregate
            # step through the rows together.
            cols = ", ".join(
                f'array_agg(q."{c}"::bigint)' if t == pl.Int64
                else f"array_agg(COALESCE(q.\"{c}\"::float8, 'NaN'))"
                for c, t in schema.items()
            )
            copy = f"COPY (SELECT {cols} FROM ({query}) q) TO STDOUT (FORMAT binary)"
        else:
            copy = f"COPY ({query}) TO STDOUT (FORMAT csv)"
        buf = io.BytesIO()
        with (
            self._reader() as conn,
            _translated(),
            _raw(conn).cursor() as cur,
            cur.copy(copy, list(params)) as cp,
        ):
            for block in cp:
                buf.write(block)
        if numeric:
            return _ordered(parse_binary_arrays(buf.getbuffer(), schema), order)
        if buf.tell() == 0:
            return pl.DataFrame(schema=schema)
        buf.seek(0)
        return pl.read_csv(buf, has_header=False, schema=schema)
