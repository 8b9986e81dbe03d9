"""The prediction log and shadow flags in the SQL database (SQLite or
PostgreSQL; one module, the few dialect differences inline).

Instants are epoch microseconds (``origin``, ``target``, ``logged_at``), like the rollups'
``hour``, so a row's actual and baselines are plain equality lookups on
``hourly_rollups``. Every write takes the caller's connection; rows never leave this
module: callers get Polars frames with ``LOG_SCHEMA`` columns or plain tuples.
"""

from __future__ import annotations

import io
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import polars as pl
import psycopg
import sqlalchemy as sa

from aihub.stores.model_tables import metadata as model_metadata
from aihub.stores.model_tables import model_versions
from aihub.stores.sql_types import UTCDateTime
from aihub.timeutil import HOUR_US, from_us, to_us

LOG_SCHEMA: dict[str, Any] = {
    "version_id": pl.Int64,
    "asset_id": pl.String,
    "origin": pl.Int64,
    "target": pl.Int64,
    "horizon": pl.Int64,
    "prediction": pl.Float64,
    "actual": pl.Float64,
    "persistence": pl.Float64,
    "seasonal": pl.Float64,
    "logged_at": pl.Int64,
    "source": pl.String,
}
LOG_COLUMNS = list(LOG_SCHEMA)
_KEY = ["version_id", "asset_id", "origin", "target"]
_WEEK_US = 168 * HOUR_US
_IN_CHUNK = 500

model_shadows = sa.Table(
    "model_shadows",
    model_metadata,
    sa.Column("version_id", sa.Integer, primary_key=True),
    sa.Column("enabled_at", UTCDateTime, nullable=False),
)

_UPSERT_TAIL = (
    " ON CONFLICT (version_id, asset_id, origin, target) DO UPDATE SET "
    "horizon = excluded.horizon, prediction = excluded.prediction, "
    "actual = excluded.actual, persistence = excluded.persistence, "
    "seasonal = excluded.seasonal, logged_at = excluded.logged_at, source = excluded.source"
)
# PostgreSQL: COPY (CSV from Polars) into a session-local stage, then one upsert.
_PG_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS prediction_log_in (LIKE prediction_log) "
             "ON COMMIT DELETE ROWS")
_PG_COPY = f"COPY prediction_log_in ({', '.join(LOG_COLUMNS)}) FROM STDIN (FORMAT csv)"
_PG_COPY_DIRECT = _PG_COPY.replace("prediction_log_in", "prediction_log")
_PG_UPSERT = (
    f"INSERT INTO prediction_log ({', '.join(LOG_COLUMNS)}) "
    f"SELECT {', '.join(LOG_COLUMNS)} FROM prediction_log_in" + _UPSERT_TAIL
)
# SQLite: many rows per INSERT (multi-row VALUES). ``executemany`` stepped once per row
# and released the GIL around every step: thousands of hand-offs per write, each one
# slowing the request threads of the same process. A statement of 1,000 rows binds them
# all at once and steps once; the tail goes in statements of 100, 10 and 1 rows, so only
# four statements are ever compiled (Python's statement cache keeps them).
_SQLITE_ROW = "(" + ", ".join("?" * len(LOG_COLUMNS)) + ")"
_SQLITE_ROWS_PER_STATEMENT = (1000, 100, 10, 1)


def _sqlite_upsert(n: int) -> str:
    return ("INSERT INTO prediction_log (" + ", ".join(LOG_COLUMNS) + ") VALUES "
            + ", ".join([_SQLITE_ROW] * n) + _UPSERT_TAIL)

# The actual and the baselines of logged rows, refreshed for hours an ingest touched.
# ``{value}`` is the hour whose rollup mean the column holds; the bounds on ``origin``
# follow from 0 <= target - origin <= 168h and keep the lookups on the primary key.
_REFRESH = """
UPDATE prediction_log SET {column} = (
    SELECT r.mean FROM hourly_rollups r JOIN assets a ON a.asset_key = r.asset_key
    WHERE a.tenant_id = :tenant AND a.asset_id = prediction_log.asset_id
      AND r.hour = {value})
WHERE version_id IN (SELECT id FROM model_versions WHERE tenant_id = :tenant)
  AND asset_id IN :assets
  AND {where}
"""
_REFRESHES = (
    ("actual", "prediction_log.target",
     "target >= :lo AND target < :hi AND origin >= :lo - :week AND origin < :hi"),
    ("persistence", "prediction_log.origin - :hour",
     "origin >= :lo + :hour AND origin < :hi + :hour"),
    ("seasonal", "prediction_log.target - :week",
     "target >= :lo + :week AND target < :hi + :week AND origin >= :lo AND origin < :hi + :week"),
)


class PredictionLogStore:
    """Reads open connections of their own; writes run on the caller's transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._months: set[int] = set()  # PostgreSQL partitions known to exist
        self._months_lock = threading.Lock()
        self._refresh = [
            sa.text(_REFRESH.format(column=c, value=v, where=w)).bindparams(
                sa.bindparam("assets", expanding=True))
            for c, v, w in _REFRESHES
        ]
        self._any_logged = sa.text(
            "SELECT 1 FROM prediction_log WHERE version_id IN "
            "(SELECT id FROM model_versions WHERE tenant_id = :tenant) "
            "AND asset_id IN :assets LIMIT 1").bindparams(sa.bindparam("assets", expanding=True))

    # -- writes ---------------------------------------------------------------------------
    def upsert(self, conn: sa.Connection, rows: pl.DataFrame) -> None:
        """Insert or replace rows (``LOG_SCHEMA``; unique on the key within the frame).
        They go in key order: consecutive rows then land on the same index pages instead
        of one page per asset in turn (a fifth less time in SQLite's insert)."""
        if rows.is_empty():
            return
        rows = rows.select(LOG_COLUMNS).sort(_KEY)
        raw: Any = conn.connection.driver_connection
        if self.postgres:
            self.ensure_partitions(rows.get_column("target"))
            buf = io.BytesIO()
            rows.write_csv(buf, include_header=False, null_value="")
            data = buf.getvalue()
            with raw.cursor() as cur:
                # New rows (the usual case) go straight in by COPY; if some exist, the
                # batch is staged and upserted instead.
                cur.execute("SAVEPOINT aihub_log_copy")
                try:
                    with cur.copy(_PG_COPY_DIRECT) as copy:
                        copy.write(data)
                except psycopg.errors.UniqueViolation:
                    cur.execute("ROLLBACK TO SAVEPOINT aihub_log_copy")
                    cur.execute(_PG_STAGE)
                    with cur.copy(_PG_COPY) as copy:
                        copy.write(data)
                    cur.execute(_PG_UPSERT)
                    cur.execute("TRUNCATE prediction_log_in")
                cur.execute("RELEASE SAVEPOINT aihub_log_copy")
        else:
            width = len(LOG_COLUMNS)
            values = list(chain.from_iterable(
                zip(*(rows.get_column(c).to_list() for c in LOG_COLUMNS), strict=True)))
            limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            at = 0
            for per in (n for n in _SQLITE_ROWS_PER_STATEMENT if n * width <= limit):
                sql = _sqlite_upsert(per)
                while rows.height - at >= per:
                    raw.execute(sql, values[at * width:(at + per) * width])
                    at += per

    def refresh(self, conn: sa.Connection, tenant_id: str, asset_ids: Sequence[str],
                lo: int, hi: int) -> int:
        """Re-read the actual and baselines of logged rows whose hours lie in ``[lo, hi)``
        (hour boundaries, epoch us) for these assets: called by ingest inside its
        transaction, after it rewrote those hours' rollups. Returns the rows updated."""
        updated = 0
        for i in range(0, len(asset_ids), _IN_CHUNK):
            params = {"tenant": tenant_id, "assets": list(asset_ids[i:i + _IN_CHUNK]),
                      "lo": lo, "hi": hi, "hour": HOUR_US, "week": _WEEK_US}
            if conn.execute(self._any_logged, params).first() is None:
                continue  # nothing logged for these assets: one cheap look, no updates
            for stmt in self._refresh:
                updated += conn.execute(stmt, params).rowcount
        return updated

    def asset_keys(self, conn: sa.Connection, tenant_id: str, asset_ids: Sequence[str],
                   *, lock: bool) -> dict[str, int]:
        """``asset_id -> asset_key`` of the tenant's known assets; with ``lock`` (PostgreSQL)
        their rows are share-locked in key order, so an ingest of them waits for this
        transaction (and its refresh then sees the rows it wrote) or has committed."""
        out: dict[str, int] = {}
        for i in range(0, len(asset_ids), _IN_CHUNK):
            q = sa.text(
                "SELECT asset_id, asset_key FROM assets WHERE tenant_id = :t "
                "AND asset_id IN :ids ORDER BY asset_key"
                + (" FOR SHARE" if lock and self.postgres else "")
            ).bindparams(sa.bindparam("ids", expanding=True))
            for a, k in conn.execute(q, {"t": tenant_id, "ids": list(asset_ids[i:i + _IN_CHUNK])}):
                out[a] = int(k)
        return out

    def ensure_partitions(self, targets: pl.Series) -> None:
        """PostgreSQL: create the monthly partitions ``targets`` fall in (each in a
        transaction of its own, so a concurrent creator is harmless); SQLite: nothing."""
        if not self.postgres:
            return
        months = set(pl.from_epoch(targets.unique(), time_unit="us").dt.truncate("1mo")
                     .dt.epoch("us").to_list())
        with self._months_lock:
            missing = sorted(months - self._months)
        for start in missing:
            name, end = _partition_name(start), _next_month(start)
            try:
                with self.engine.begin() as c:
                    c.exec_driver_sql(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF prediction_log "
                        f"FOR VALUES FROM ({start}) TO ({end})")
            except sa.exc.ProgrammingError:  # created concurrently by another process
                pass
            with self._months_lock:
                self._months.add(start)

    def forget_partitions(self) -> None:
        """Look the partitions up again on the next write (another process may have
        dropped one this process knew)."""
        with self._months_lock:
            self._months.clear()

    def purge(self, conn: sa.Connection, cutoff: int) -> int:
        """Delete rows with target before ``cutoff``; on PostgreSQL
        whole months go by dropping their partitions. Returns the rows deleted where
        counted (dropped partitions count their rows first)."""
        deleted = 0
        if self.postgres:
            for name, start in self._partitions(conn):
                if _next_month(start) <= cutoff:
                    deleted += int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}")
                                   .scalar_one())
                    conn.exec_driver_sql(f"DROP TABLE {name}")
                    with self._months_lock:
                        self._months.discard(start)
        deleted += conn.execute(sa.text("DELETE FROM prediction_log WHERE target < :c"),
                                {"c": cutoff}).rowcount
        return deleted

    def _partitions(self, conn: sa.Connection) -> list[tuple[str, int]]:
        rows = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'prediction_log'"
        ).all()
        out = []
        for (name,) in rows:
            try:
                y, m = int(name[-7:-3]), int(name[-2:])
            except ValueError:
                continue
            out.append((name, to_us(datetime(y, m, 1, tzinfo=UTC))))
        return sorted(out, key=lambda p: p[1])

    def delete_version(self, conn: sa.Connection, version_id: int) -> None:
        for table in ("prediction_log", "model_shadows"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE version_id = :v"),
                         {"v": version_id})

    # -- shadows --------------------------------------------------------------------------
    def set_shadow(self, conn: sa.Connection, version_id: int, enabled: bool,
                   at: datetime) -> None:
        conn.execute(model_shadows.delete().where(model_shadows.c.version_id == version_id))
        if enabled:
            conn.execute(model_shadows.insert().values(version_id=version_id, enabled_at=at))

    def shadow_versions(self, conn: sa.Connection, tenant_id: str,
                        model_name: str) -> list[str]:
        """The versions (``v1.2.0``) of the model's staging versions marked as shadows."""
        T = model_versions
        rows = conn.execute(
            sa.select(T.c.version).join(model_shadows, model_shadows.c.version_id == T.c.id)
            .where(T.c.tenant_id == tenant_id, T.c.model_name == model_name,
                   T.c.stage == "staging").order_by(T.c.id))
        return [str(r[0]) for r in rows]

    def is_shadow(self, conn: sa.Connection, version_id: int) -> bool:
        return conn.execute(sa.select(model_shadows.c.version_id)
                            .where(model_shadows.c.version_id == version_id)).first() is not None

    # -- reads ----------------------------------------------------------------------------
    def count(self, version_id: int | None = None) -> int:
        with self.engine.connect() as conn:
            q = "SELECT count(*) FROM prediction_log"
            if version_id is None:
                return int(conn.exec_driver_sql(q).scalar_one())
            return int(conn.execute(sa.text(q + " WHERE version_id = :v"),
                                    {"v": version_id}).scalar_one())

    def rows(self, version_id: int, start: int | None = None,
             end: int | None = None) -> pl.DataFrame:
        """A version's logged rows (tests, exports of the log), sorted by key."""
        where, params = "version_id = :v", {"v": version_id}
        if start is not None:
            where += " AND target >= :s"
            params["s"] = start
        if end is not None:
            where += " AND target < :e"
            params["e"] = end
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(
                f"SELECT {', '.join(LOG_COLUMNS)} FROM prediction_log WHERE {where} "
                "ORDER BY asset_id, origin, target"), params).all()
        return pl.DataFrame([tuple(r) for r in result], schema=LOG_SCHEMA, orient="row")

    def asset_page(self, version_id: int, asset_id: str, start: int, end: int, *,
                   limit: int, offset: int) -> tuple[pl.DataFrame, int]:
        """One asset's logged rows of a version with target in ``[start, end)``, by target
        then origin: a page of them and how many there are."""
        where = ("version_id = :v AND asset_id = :a AND target >= :s AND target < :e")
        params: dict[str, Any] = {"v": version_id, "a": asset_id, "s": start, "e": end}
        with self.engine.connect() as conn:
            total = int(conn.execute(sa.text(f"SELECT count(*) FROM prediction_log WHERE {where}"),
                                     params).scalar_one())
            result = conn.execute(sa.text(
                f"SELECT {', '.join(LOG_COLUMNS)} FROM prediction_log WHERE {where} "
                "ORDER BY target, origin LIMIT :limit OFFSET :offset"),
                {**params, "limit": limit, "offset": offset}).all()
        return pl.DataFrame([tuple(r) for r in result], schema=LOG_SCHEMA, orient="row"), total


def _next_month(us: int) -> int:


    d = from_us(us)
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return to_us(datetime(y, m, 1, tzinfo=UTC))


def _partition_name(start: int) -> str:
    d = from_us(start)
    return f"prediction_log_p{d.year:04d}_{d.month:02d}"


__all__ = ["LOG_COLUMNS", "LOG_SCHEMA", "PredictionLogStore", "model_shadows"]
