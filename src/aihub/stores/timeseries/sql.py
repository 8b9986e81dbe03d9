"""The parts of the time-series store that are the same SQL on SQLite and PostgreSQL.

Backends subclass ``SqlTimeSeriesStore`` and provide the bulk paths (``_write_readings``,
``_write_weather``, ``_fetch``), the write locks (``_lock``, ``_lock_rows``), the change
feed's numbers (``_next_seq``) and its reader (``changes_since``): where SQLite and
PostgreSQL really differ.

Every write follows one shape, inside the caller's transaction: take the locks of what it
writes (``_lock``: the assets, or the weather locations), write, then ``_stamp`` the
changed assets: lock their rows in key order, draw the write's change-feed number and
record it on each row (``data_seq``, and on PostgreSQL the transaction id, ``data_xid``).
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa

from aihub.features.frames import (
    EDITED,
    ESTIMATED,
    MARK_COLUMNS,
    MARK_SCHEMA,
    READING_VERSIONS_SCHEMA,
    ROLLUP_SCHEMA,
    ROLLUP_VALUES,
    WEATHER_FIELDS,
    WEATHER_SCHEMA,
    WEATHER_VERSIONS_SCHEMA,
)
from aihub.stores.feature_tables import assets
from aihub.stores.timeseries.base import (
    HOUR_MARKS_SCHEMA,
    Asset,
    AssetChanges,
    ChangeBatch,
    IngestResult,
    Progress,
    TenantStats,
    TimeSeriesStore,
)
from aihub.stores.timeseries.rollups import HOUR_BITS
from aihub.stores.timeseries.versions import (
    keyed_readings,
    known_weather,
    weather_changes,
)
from aihub.timeutil import HOUR_US, to_us, utcnow

DEFAULT_TIMEZONE = "UTC"
DEFAULT_KIND = "load"
_IN_CHUNK = 500  # ids per IN (...) list
# A stored NULL first_known means "the same as known_at".
_ROLLUP_SELECT = {"first_known": "COALESCE(first_known, known_at) AS first_known"}


_EXACT = float(2**53)  # integers below this are exact as float64


def rows_frame(rows: list[Any], schema: dict[str, Any]) -> pl.DataFrame:
    """Rows as a frame of ``schema``. Numeric rows go through one float64 array (twice as
    fast as building the frame row by row): exact for floats (a NULL becomes NaN, and back:
    no stored value is NaN) and for integers below 2**53; anything else takes the general
    path. SQLite's reads, and PostgreSQL's reads of few rows."""
    width = len(schema)
    if rows and all(t in (pl.Int64, pl.Float64) for t in schema.values()):
        try:
            table = np.fromiter(chain.from_iterable(rows), dtype=np.float64,
                                count=len(rows) * width).reshape(len(rows), width)
        except (TypeError, ValueError):
            table = None
        ints = [i for i, t in enumerate(schema.values()) if t == pl.Int64]
        if table is not None and not (ints and not np.abs(table[:, ints]).max() < _EXACT):
            return pl.DataFrame(
                [pl.Series(name, table[:, i].astype(np.int64)) if t == pl.Int64
                 else pl.Series(name, table[:, i], nan_to_null=True)
                 for i, (name, t) in enumerate(schema.items())],
                schema=schema,
            )
    return pl.DataFrame(rows, schema=schema, orient="row")


def _asset(row: Any) -> Asset:
    return Asset(
        tenant_id=row.tenant_id,
        asset_id=row.asset_id,
        timezone=row.timezone,
        country=row.country,
        location_id=row.location_id,
        kind=row.kind,
        key=row.asset_key,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_ingest_at=row.last_ingest_at,
        data_seq=row.data_seq,
    )


_TENANT_ROLLUPS_SQL = """
SELECT COUNT(*), SUM(h.n), MIN(h.hour), MAX(h.hour) FROM hourly_rollups h
JOIN assets a ON a.asset_key = h.asset_key WHERE a.tenant_id = :t
"""
_TENANT_EDGES_SQL = """
SELECT
  (SELECT MIN(r.ts) FROM readings r JOIN assets a ON a.asset_key = r.asset_key
   WHERE a.tenant_id = :t AND r.ts < :first_end),
  (SELECT MAX(r.ts) FROM readings r JOIN assets a ON a.asset_key = r.asset_key
   WHERE a.tenant_id = :t AND r.ts >= :last_start)
"""


class SqlTimeSeriesStore(TimeSeriesStore):
    backend_name = "database"

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._pinned = threading.local()

    # -- bulk paths, per backend ----------------------------------------------------------
    @abstractmethod
    def _write_readings(self, conn: sa.Connection, rows: pl.DataFrame) -> None:
        """Write ``asset_key, ts, value, known_at, quality`` rows inside ``conn``'s
        transaction, keeping versions: a row whose value or quality differs from the stored
        one of its ``(asset_key, ts)`` moves the older of the two (by ``known_at``) to
        ``reading_versions`` and leaves the newer in ``readings``; an equal one changes
        nothing; a tie in ``known_at`` replaces the stored row."""

    @abstractmethod
    def _start_rollups(self, conn: sa.Connection, readings: pl.DataFrame) -> Any:
        """Begin the rollups of the hours ``readings`` (``asset_key, ts, value``) touch,
        before they are written: read what the recomputation needs of the stored readings,
        or start preparing in the background. Returns what ``_finish_rollups`` takes."""

    @abstractmethod
    def _finish_rollups(self, conn: sa.Connection, started: Any) -> None:
        """Recompute and upsert the touched hours' rollups, after the readings are written."""

    @abstractmethod
    def _write_weather(self, conn: sa.Connection, tenant_id: str, rows: pl.DataFrame) -> None:
        """Upsert current weather rows (``location_id, ts``, the fields, ``known_at``)
        inside ``conn``'s transaction."""

    @abstractmethod
    def _fetch(
        self, sql: str, params: Sequence[Any], schema: dict[str, Any], order: int = 0
    ) -> pl.DataFrame:
        """Run a read query with positional ``?``-style params; return a typed frame, in
        the query's order (which is by its first ``order`` columns)."""

    @abstractmethod
    def _lock(
        self,
        conn: sa.Connection,
        tenant_id: str,
        *,
        asset_ids: Sequence[str] = (),
        location_ids: Sequence[str] = (),
    ) -> None:
        """Hold the write locks of a tenant's assets and weather locations until the
        transaction ends. Called first by every write."""

    @abstractmethod
    def _lock_rows(self, conn: sa.Connection, keys: Sequence[int]) -> None:
        """Lock the ``assets`` rows of ``keys`` (sorted) for update, in key order."""

    @abstractmethod
    def _next_seq(self, conn: sa.Connection, now: datetime) -> tuple[int, int | None]:
        """The change-feed number of this write and the transaction's id (or None)."""

    def _check_write(self, conn: sa.Connection) -> None:
        """Raise if ``conn`` is not in a transaction this backend can write in."""

    def _placeholders(self, n: int) -> str:
        """``n`` placeholders for ``_fetch`` (which takes ``?`` on every backend)."""
        return ",".join(["?"] * n)

    # -- assets ---------------------------------------------------------------------------
    def get_assets(self, tenant_id: str, asset_ids: Sequence[str]) -> list[Asset]:
        if not asset_ids:
            return []
        found: list[Asset] = []
        with self._reader() as conn:
            ids = list(dict.fromkeys(asset_ids))
            for i in range(0, len(ids), _IN_CHUNK):
                q = sa.select(assets).where(
                    assets.c.tenant_id == tenant_id,
                    assets.c.asset_id.in_(ids[i : i + _IN_CHUNK]),
                )
                found.extend(_asset(r) for r in conn.execute(q))
        return found

    def list_assets(
        self, tenant_id: str, *, limit: int, offset: int, prefix: str | None = None
    ) -> tuple[list[Asset], int]:
        where = [assets.c.tenant_id == tenant_id]
        if prefix:
            # substr, not LIKE: exact and case-sensitive on both SQLite and PostgreSQL.
            where.append(sa.func.substr(assets.c.asset_id, 1, len(prefix)) == prefix)
        with self._connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(assets).where(*where)
            ).scalar_one()
            rows = conn.execute(
                sa.select(assets)
                .where(*where)
                .order_by(assets.c.asset_id)
                .limit(limit)
                .offset(offset)
            )
            return [_asset(r) for r in rows], int(total)

    def upsert_asset(
        self, conn: sa.Connection, tenant_id: str, asset_id: str, changes: AssetChanges
    ) -> Asset:
        self._check_write(conn)
        now = utcnow()
        # The asset's lock covers its creation; the new location's lock orders this edit
        # with weather writes there (which change the data_seq of the assets they find).
        moved_to = [changes.location_id] if changes.location_id else []
        self._lock(conn, tenant_id, asset_ids=[asset_id], location_ids=moved_to)
        row = conn.execute(
            sa.select(assets)
            .where(assets.c.tenant_id == tenant_id, assets.c.asset_id == asset_id)
            .with_for_update()
        ).first()
        if row is None:
            conn.execute(
                assets.insert().values(
                    tenant_id=tenant_id,
                    asset_id=asset_id,
                    timezone=changes.timezone or DEFAULT_TIMEZONE,
                    country=changes.country,
                    location_id=changes.location_id,
                    kind=changes.kind or DEFAULT_KIND,
                    created_at=now,
                    updated_at=now,
                    data_seq=0,
                )
            )
        else:
            values: dict[str, Any] = {
                k: v
                for k, v in (
                    ("timezone", changes.timezone),
                    ("country", changes.country),
                    ("location_id", changes.location_id),
                    ("kind", changes.kind),
                )
                if v is not None
            }
            values.update({k: None for k in changes.clear & {"country", "location_id"}})
            # Calendar and weather features depend on these: make caches drop the asset.
            self._stamp(conn, [row.asset_key], updated_at=now, **values)
        fresh = conn.execute(
            sa.select(assets).where(assets.c.tenant_id == tenant_id, assets.c.asset_id == asset_id)
        ).one()
        return _asset(fresh)

    def tenant_exists(self, tenant_id: str) -> bool:
        with self._connect() as conn:
            q = sa.select(assets.c.asset_key).where(assets.c.tenant_id == tenant_id).limit(1)
            return conn.execute(q).first() is not None

    # -- writes ---------------------------------------------------------------------------
    def ingest_readings(
        self,
        conn: sa.Connection,
        tenant_id: str,
        readings: pl.DataFrame,
        *,
        progress: Progress | None = None,
    ) -> IngestResult:
        if readings.is_empty():
            return IngestResult(accepted=0, asset_ids=[], first_ts=None, last_ts=None)
        self._check_write(conn)
        now = utcnow()
        asset_ids = readings.get_column("asset_id").unique().sort().to_list()
        self._lock(conn, tenant_id, asset_ids=asset_ids)
        keys = self._ensure_assets(conn, tenant_id, asset_ids, now)
        keyed = keyed_readings(readings, keys, to_us(now))
        rollups = self._start_rollups(conn, keyed)
        chunk = 100_000
        for i in range(0, keyed.height, chunk):
            part = keyed.slice(i, chunk)
            self._write_readings(conn, part)
            if progress:
                progress(part.height)
        self._finish_rollups(conn, rollups)
        seq = self._stamp(conn, list(keys.values()), last_ingest_at=now)
        ts = readings.get_column("ts")
        return IngestResult(
            accepted=readings.height,
            asset_ids=asset_ids,
            first_ts=int(ts.min()),  # type: ignore[arg-type]
            last_ts=int(ts.max()),  # type: ignore[arg-type]
            seq=seq,
        )

    def ingest_weather(
        self, conn: sa.Connection, tenant_id: str, observations: pl.DataFrame
    ) -> IngestResult:
        if observations.is_empty():
            return IngestResult(accepted=0, asset_ids=[], first_ts=None, last_ts=None)
        self._check_write(conn)
        locations = observations.get_column("location_id").unique().sort().to_list()
        self._lock(conn, tenant_id, location_ids=locations)
        batch = known_weather(observations, to_us(utcnow()))
        current, superseded = weather_changes(batch, self._stored_weather(conn, tenant_id, batch))
        if superseded.height:
            conn.execute(
                sa.text(
                    f"INSERT INTO weather_versions (tenant_id, location_id, ts, known_at, "
                    f"{', '.join(WEATHER_FIELDS)}) VALUES (:tenant_id, :location_id, :ts, "
                    f":known_at, {', '.join(':' + f for f in WEATHER_FIELDS)}) "
                    f"ON CONFLICT (tenant_id, location_id, ts, known_at) DO UPDATE SET "
                    + ", ".join(f"{f} = excluded.{f}" for f in WEATHER_FIELDS)
                ),
                [{"tenant_id": tenant_id, **r} for r in superseded.iter_rows(named=True)],
            )
        if current.height:
            self._write_weather(conn, tenant_id, current)
        # Weather features of every asset at these locations may have changed. An asset
        # edit moving one here holds this location's lock, so none is missed.
        affected: dict[int, str] = {}
        for i in range(0, len(locations), _IN_CHUNK):
            q = sa.select(assets.c.asset_key, assets.c.asset_id).where(
                assets.c.tenant_id == tenant_id,
                assets.c.location_id.in_(locations[i : i + _IN_CHUNK]),
            )
            affected.update({r.asset_key: r.asset_id for r in conn.execute(q)})
        seq = self._stamp(conn, list(affected)) if affected else 0
        ts = observations.get_column("ts")
        return IngestResult(
            accepted=observations.height,
            asset_ids=sorted(affected.values()),
            first_ts=int(ts.min()),  # type: ignore[arg-type]
            last_ts=int(ts.max()),  # type: ignore[arg-type]
            seq=seq,
        )

    def _stored_weather(
        self, conn: sa.Connection, tenant_id: str, batch: pl.DataFrame
    ) -> pl.DataFrame:
        """The current stored rows (``WEATHER_VERSIONS_SCHEMA``) at the batch's locations
        and within its time span, read in the write's transaction."""
        locations = batch.get_column("location_id").unique().to_list()
        ts = batch.get_column("ts")
        cols = ", ".join(WEATHER_VERSIONS_SCHEMA)
        rows: list[Any] = []
        for i in range(0, len(locations), _IN_CHUNK):
            part = locations[i : i + _IN_CHUNK]
            names = {f"l{j}": loc for j, loc in enumerate(part)}
            rows.extend(
                conn.execute(
                    sa.text(
                        f"SELECT {cols} FROM weather WHERE tenant_id = :t AND location_id IN "
                        f"({', '.join(':' + n for n in names)}) AND ts >= :lo AND ts <= :hi"
                    ),
                    {"t": tenant_id, "lo": ts.min(), "hi": ts.max(), **names},
                ).all()
            )
        return pl.DataFrame(
            [tuple(r) for r in rows], schema=WEATHER_VERSIONS_SCHEMA, orient="row"
        )

    def _stamp(self, conn: sa.Connection, keys: Sequence[int], **values: Any) -> int:
        """Record this write in the change feed on the assets of ``keys`` (and set
        ``values`` on them); returns the write's number. The rows are locked before the
        number is drawn, so an asset's ``data_seq`` only grows."""
        ordered = sorted(set(keys))
        self._lock_rows(conn, ordered)
        seq, xid = self._next_seq(conn, utcnow())
        for i in range(0, len(ordered), _IN_CHUNK):
            conn.execute(
                assets.update()
                .where(assets.c.asset_key.in_(ordered[i : i + _IN_CHUNK]))
                .values(data_seq=seq, data_xid=xid, **values)
            )
        return seq

    def _ensure_assets(
        self, conn: sa.Connection, tenant_id: str, asset_ids: list[str], now: datetime
    ) -> dict[str, int]:
        keys: dict[str, int] = {}
        for i in range(0, len(asset_ids), _IN_CHUNK):
            q = sa.select(assets.c.asset_id, assets.c.asset_key).where(
                assets.c.tenant_id == tenant_id,
                assets.c.asset_id.in_(asset_ids[i : i + _IN_CHUNK]),
            )
            keys.update({r.asset_id: r.asset_key for r in conn.execute(q)})
        missing = [a for a in asset_ids if a not in keys]
        if missing:
            conn.execute(
                assets.insert(),
                [
                    {
                        "tenant_id": tenant_id,
                        "asset_id": a,
                        "timezone": DEFAULT_TIMEZONE,
                        "kind": DEFAULT_KIND,
                        "created_at": now,
                        "updated_at": now,
                        "data_seq": 0,
                    }
                    for a in missing
                ],
            )
            for i in range(0, len(missing), _IN_CHUNK):
                q = sa.select(assets.c.asset_id, assets.c.asset_key).where(
                    assets.c.tenant_id == tenant_id,
                    assets.c.asset_id.in_(missing[i : i + _IN_CHUNK]),
                )
                keys.update({r.asset_id: r.asset_key for r in conn.execute(q)})
        return keys

    # -- reads ----------------------------------------------------------------------------
    def load_rollups(
        self,
        asset_keys: Sequence[int],
        start: int,
        end: int,
        *,
        columns: Sequence[str] = ROLLUP_VALUES,
    ) -> pl.DataFrame:
        # Fixed names only: safe in SQL.
        wanted = [c for c in (*ROLLUP_VALUES, *MARK_COLUMNS) if c in columns]
        schema = {c: {**ROLLUP_SCHEMA, **MARK_SCHEMA}[c] for c in ("asset_key", "hour", *wanted)}
        if not asset_keys:
            return pl.DataFrame(schema=schema)
        keys = sorted(set(asset_keys))
        select = ", ".join(_ROLLUP_SELECT.get(c, c) for c in schema)
        sql = (
            f"SELECT {select} FROM hourly_rollups "
            f"WHERE asset_key IN ({self._placeholders(len(keys))}) AND hour >= ? AND hour < ? "
            "ORDER BY asset_key, hour"
        )
        return self._fetch(sql, [*keys, start, end], schema, order=2)

    def last_rollup_hour(self, asset_key: int) -> int | None:
        q = sa.text("SELECT MAX(hour) FROM hourly_rollups WHERE asset_key = :k")
        with self._connect() as conn:
            last = conn.execute(q, {"k": asset_key}).scalar()
        return None if last is None else int(last)

    def load_weather(
        self, tenant_id: str, location_ids: Sequence[str], start: int, end: int
    ) -> pl.DataFrame:
        if not location_ids:
            return pl.DataFrame(schema=WEATHER_SCHEMA)
        locs = sorted(set(location_ids))
        cols = ", ".join(WEATHER_FIELDS)
        sql = (
            f"SELECT location_id, ts, {cols} FROM weather WHERE tenant_id = ? "
            f"AND location_id IN ({self._placeholders(len(locs))}) AND ts >= ? AND ts < ? "
            "ORDER BY location_id, ts"
        )
        return self._fetch(sql, [tenant_id, *locs, start, end], WEATHER_SCHEMA)

    def load_reading_versions(
        self, asset_keys: Sequence[int], start: int, end: int
    ) -> pl.DataFrame:
        if not asset_keys:
            return pl.DataFrame(schema=READING_VERSIONS_SCHEMA)
        keys = sorted(set(asset_keys))
        marks = self._placeholders(len(keys))
        cols = ", ".join(READING_VERSIONS_SCHEMA)
        sql = (
            f"SELECT {cols} FROM readings WHERE asset_key IN ({marks}) AND ts >= ? AND ts < ? "
            f"UNION ALL SELECT {cols} FROM reading_versions WHERE asset_key IN ({marks}) "
            "AND ts >= ? AND ts < ? ORDER BY 1, 2, 3"
        )
        return self._fetch(sql, [*keys, start, end, *keys, start, end], READING_VERSIONS_SCHEMA,
                           order=3)

    def load_hour_marks(
        self,
        asset_keys: Sequence[int],
        start: int,
        end: int,
        *,
        known_after: int | None = None,
        origins: Sequence[int] | None = None,
        reach_hours: int = 168,
    ) -> pl.DataFrame:
        if not asset_keys:
            return pl.DataFrame(schema=HOUR_MARKS_SCHEMA)
        keys = sorted(set(asset_keys))
        late: str
        params: list[Any]
        if origins is not None:
            # The origins as bytes, one per hour from ``start``: '1' at an origin. An hour is
            # late for one if a '1' lies among the hours from its end up to when it became
            # known (at most ``reach_hours``): a search of a few bytes, in SQL.
            first = start // HOUR_US
            flags = bytearray(b"0" * ((end - start) // HOUR_US + reach_hours + 2))
            for o in origins:
                if 0 <= o // HOUR_US - first < len(flags):
                    flags[o // HOUR_US - first] = ord("1")
            span = f"((known_at - 1) / {HOUR_US} - hour / {HOUR_US})"
            found = self._flag_in_range(
                f"CAST(hour / {HOUR_US} - ? + 2 AS integer)",
                f"CAST(CASE WHEN {span} > ? THEN ? ELSE {span} END AS integer)",
            )
            late = f"known_at > hour + {HOUR_US} AND {found}"
            params = [bytes(flags), first, reach_hours, reach_hours]
        elif known_after is None:
            late, params = f"known_at > hour + {HOUR_US}", []
        else:
            late, params = "known_at > ?", [known_after]
        sql = (
            "SELECT asset_key, hour, known_at, COALESCE(first_known, known_at) AS first_known, "
            f"quality & {ESTIMATED} AS estimated, (quality & {EDITED}) / {EDITED} AS edited "
            "FROM hourly_rollups "
            f"WHERE asset_key IN ({self._placeholders(len(keys))}) AND hour >= ? AND hour < ? "
            f"AND (quality <> 0 OR ({late})) ORDER BY asset_key, hour"
        )
        return self._fetch(sql, [*keys, start, end, *params], HOUR_MARKS_SCHEMA, order=2)

    @abstractmethod
    def _flag_in_range(self, start: str, length: str) -> str:
        """SQL true if the bytes parameter (placed first) holds a '1' among ``length``
        bytes from ``start`` (1-based): bytes, so the lookup does not walk characters."""

    @abstractmethod
    def _hour_list(self, codes: list[int]) -> tuple[str, list[Any]]:
        """A FROM item ``u`` with one row per code (column ``u.code``) and its params."""

    def load_hour_versions(self, hours: pl.DataFrame) -> pl.DataFrame:
        if hours.is_empty():
            return pl.DataFrame(schema=READING_VERSIONS_SCHEMA)
        # One code per (asset, hour number): the list travels as one parameter.
        codes = hours.select(
            pl.col("asset_key") * (1 << HOUR_BITS) + pl.col("hour") // HOUR_US
        ).to_series().to_list()
        source, params = self._hour_list(codes)
        cols = ", ".join(f"r.{c}" for c in READING_VERSIONS_SCHEMA)
        mask = (1 << HOUR_BITS) - 1
        join = (
            f"r.asset_key = (u.code >> {HOUR_BITS}) "
            f"AND r.ts >= (u.code & {mask}) * {HOUR_US} "
            f"AND r.ts < ((u.code & {mask}) + 1) * {HOUR_US}"
        )
        sql = (
            f"SELECT {cols} FROM {source} JOIN readings r ON {join} UNION ALL "
            f"SELECT {cols} FROM {source} JOIN reading_versions r ON {join} ORDER BY 1, 2, 3"
        )
        return self._fetch(sql, params * 2, READING_VERSIONS_SCHEMA, order=3)

    def load_weather_versions(
        self, tenant_id: str, location_ids: Sequence[str], start: int, end: int
    ) -> pl.DataFrame:
        if not location_ids:
            return pl.DataFrame(schema=WEATHER_VERSIONS_SCHEMA)
        locs = sorted(set(location_ids))
        marks = self._placeholders(len(locs))
        if len(locs) == 1:
            # One location (an online request): numbers only, which PostgreSQL sends as
            # binary arrays instead of a CSV row per version; the location is a constant.
            numeric = {c: t for c, t in WEATHER_VERSIONS_SCHEMA.items() if c != "location_id"}
            cols = ", ".join(numeric)
            where = "tenant_id = ? AND location_id = ? AND ts >= ? AND ts < ?"
            sql = (
                f"SELECT {cols} FROM weather WHERE {where} "
                f"UNION ALL SELECT {cols} FROM weather_versions WHERE {where} ORDER BY 1, 2"
            )
            params = [tenant_id, locs[0], start, end]
            return self._fetch(sql, params * 2, numeric, order=2).select(
                pl.lit(locs[0], pl.String).alias("location_id"), *numeric
            )
        cols = ", ".join(WEATHER_VERSIONS_SCHEMA)
        where = f"tenant_id = ? AND location_id IN ({marks}) AND ts >= ? AND ts < ?"
        sql = (
            f"SELECT {cols} FROM weather WHERE {where} "
            f"UNION ALL SELECT {cols} FROM weather_versions WHERE {where} ORDER BY 1, 2, 3"
        )
        params = [tenant_id, *locs, start, end]
        return self._fetch(sql, params * 2, WEATHER_VERSIONS_SCHEMA)

    def load_readings(self, asset_key: int, start: int, end: int) -> pl.DataFrame:
        sql = (
            "SELECT ts, value FROM readings WHERE asset_key = ? AND ts >= ? AND ts < ? ORDER BY ts"
        )
        return self._fetch(sql, [asset_key, start, end], {"ts": pl.Int64, "value": pl.Float64},
                           order=1)

    def asset_keys_with_data(
        self, tenant_id: str, asset_ids: Sequence[str] | None, start: int, end: int
    ) -> list[Asset]:
        exists = (
            sa.select(sa.literal(1))
            .select_from(sa.table("hourly_rollups", sa.column("asset_key"), sa.column("hour")))
            .where(
                sa.column("asset_key") == assets.c.asset_key,
                sa.column("hour") >= start,
                sa.column("hour") < end,
            )
            .exists()
        )
        q = sa.select(assets).where(assets.c.tenant_id == tenant_id, exists)
        if asset_ids is not None:
            q = q.where(assets.c.asset_id.in_(list(asset_ids)))
        with self._connect() as conn:
            return [_asset(r) for r in conn.execute(q.order_by(assets.c.asset_id))]

    def tenant_stats(self, tenant_id: str) -> TenantStats:
        with self._connect() as conn:
            n_assets, last_ingest = conn.execute(
                sa.select(sa.func.count(), sa.func.max(assets.c.last_ingest_at)).where(
                    assets.c.tenant_id == tenant_id
                )
            ).one()
            hours, readings, first_hour, last_hour = conn.execute(
                sa.text(_TENANT_ROLLUPS_SQL), {"t": tenant_id}
            ).one()
            first_ts = last_ts = None
            if hours:  # exact instants, searched only within the first and last hour
                first_ts, last_ts = conn.execute(
                    sa.text(_TENANT_EDGES_SQL),
                    {
                        "t": tenant_id,
                        "first_end": int(first_hour) + HOUR_US,
                        "last_start": int(last_hour),
                    },
                ).one()
        return TenantStats(
            assets=int(n_assets),
            readings=int(readings or 0),
            rollup_hours=int(hours or 0),
            first_ts=first_ts,
            last_ts=last_ts,
            last_ingest_at=last_ingest,
        )

    # -- change feed ----------------------------------------------------------------------
    @abstractmethod
    def changes_since(self, cursor: int | None) -> ChangeBatch: ...

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # -- connections ----------------------------------------------------------------------
    # Lost or refused connections surface as ``BackendUnavailable`` from the engine itself
    # (``aihub.db.create_db_engine``), as they do for every other store.
    def _connect(self) -> Any:
        return self.engine.connect()

    @contextmanager
    def pinned_reads(self) -> Iterator[None]:
        """This thread's reads inside the block share one connection: one pool checkout
        (and liveness ping) for a request that reads several inputs."""
        if getattr(self._pinned, "conn", None) is not None:
            yield
            return
        with self._connect() as conn:
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None

    @contextmanager
    def few_rows(self) -> Iterator[None]:
        """This thread's reads inside the block return few rows (an online request)."""
        before = getattr(self._pinned, "few", False)
        self._pinned.few = True
        try:
            yield
        finally:
            self._pinned.few = before

    def _few(self) -> bool:
        return bool(getattr(self._pinned, "few", False))

    @contextmanager
    def _reader(self) -> Iterator[Any]:
        """The pinned connection of ``pinned_reads``, else a connection of its own."""
        conn = getattr(self._pinned, "conn", None)
        if conn is not None:
            yield conn
            return
        with self._connect() as own:
            yield own
