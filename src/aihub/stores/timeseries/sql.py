"""The parts of the time-series store that are the same SQL on SQLite and PostgreSQL.

Backends subclass ``SqlTimeSeriesStore`` and provide the bulk paths (``_write_readings``,
``_write_weather``, ``_fetch``), which is where SQLite and PostgreSQL really differ.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from aihub.db import write_transaction
from aihub.stores.feature_tables import assets, ingest_seq
from aihub.stores.timeseries.base import (
    ROLLUP_SCHEMA,
    ROLLUP_VALUES,
    WEATHER_FIELDS,
    WEATHER_SCHEMA,
    Asset,
    AssetChanges,
    IngestResult,
    Progress,
    TenantStats,
    TimeSeriesStore,
)
from aihub.timeutil import HOUR_US, utcnow

DEFAULT_TIMEZONE = "UTC"
DEFAULT_KIND = "load"


def compute_rollups(readings: pl.DataFrame) -> pl.DataFrame:
    """Hourly rollups (``ROLLUP_SCHEMA``) of ``asset_key, ts, value`` readings.

    The one definition of a rollup: count, mean, sample std (ddof 1; null below two
    readings, exactly 0 when all readings of the hour are equal), min, max of ``[h, h+1h)``.
    """
    return (
        readings.group_by("asset_key", (pl.col("ts") // HOUR_US * HOUR_US).alias("hour"))
        .agg(
            n=pl.len().cast(pl.Int64),
            mean=pl.col("value").mean(),
            std=pl.col("value").std(ddof=1),
            min=pl.col("value").min(),
            max=pl.col("value").max(),
        )
        .with_columns(
            std=pl.when(pl.col("n") < 2)
            .then(None)
            .when(pl.col("min") == pl.col("max"))
            .then(0.0)
            .otherwise(pl.col("std"))
        )
        .select(list(ROLLUP_SCHEMA))
        .cast(ROLLUP_SCHEMA)  # type: ignore[arg-type]
        .sort("asset_key", "hour")
    )


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


def touched_hour_runs(readings: pl.DataFrame) -> pl.DataFrame:
    """Maximal runs of consecutive touched hours per asset, as ``asset_key, start, end``
    (``[start, end)`` in epoch us) with ``max_n``, the most readings any hour of it holds."""
    return (
        readings.group_by("asset_key", (pl.col("ts") // HOUR_US).alias("hb"))
        .agg(n=pl.len())
        .sort("asset_key", "hb")
        .with_columns(run=(pl.col("hb").diff().over("asset_key").fill_null(1) != 1).cum_sum())
        .group_by("asset_key", "run")
        .agg(
            start=pl.col("hb").min() * HOUR_US,
            end=(pl.col("hb").max() + 1) * HOUR_US,
            max_n=pl.col("n").max(),
        )
        .drop("run")
        .sort("asset_key", "start")
    )


def in_runs(readings: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """The readings that fall inside one of ``runs``."""
    if runs.is_empty():
        return readings.clear()
    return (
        readings.sort("ts")
        .join_asof(
            runs.select("asset_key", "start", "end").sort("start"),
            left_on="ts",
            right_on="start",
            by="asset_key",
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("ts") < pl.col("end"))
        .select(readings.columns)
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

    # -- bulk paths, per backend ----------------------------------------------------------
    @abstractmethod
    def _write_readings(self, conn: sa.Connection, rows: pl.DataFrame) -> None:
        """Upsert ``asset_key, ts, value`` rows inside ``conn``'s transaction."""

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
        """Upsert weather rows inside ``conn``'s transaction."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any], schema: dict[str, Any]) -> pl.DataFrame:
        """Run a read query with positional ``?``-style params; return a typed frame."""

    def _placeholders(self, n: int) -> str:
        return ",".join(["?"] * n)

    # -- assets ---------------------------------------------------------------------------
    def get_assets(self, tenant_id: str, asset_ids: Sequence[str]) -> list[Asset]:
        if not asset_ids:
            return []
        found: list[Asset] = []
        with self._connect() as conn:
            ids = list(dict.fromkeys(asset_ids))
            for i in range(0, len(ids), 500):
                q = sa.select(assets).where(
                    assets.c.tenant_id == tenant_id, assets.c.asset_id.in_(ids[i : i + 500])
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

    def upsert_asset(self, tenant_id: str, asset_id: str, changes: AssetChanges) -> Asset:
        now = utcnow()
        with self._write() as conn:
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
                seq = self._bump_seq(conn, now)
                conn.execute(
                    assets.update()
                    .where(assets.c.asset_key == row.asset_key)
                    .values(updated_at=now, data_seq=seq, **values)
                )
            fresh = conn.execute(
                sa.select(assets).where(
                    assets.c.tenant_id == tenant_id, assets.c.asset_id == asset_id
                )
            ).one()
            return _asset(fresh)

    def tenant_exists(self, tenant_id: str) -> bool:
        with self._connect() as conn:
            q = sa.select(assets.c.asset_key).where(assets.c.tenant_id == tenant_id).limit(1)
            return conn.execute(q).first() is not None

    # -- writes ---------------------------------------------------------------------------
    def ingest_readings(
        self, tenant_id: str, readings: pl.DataFrame, *, progress: Progress | None = None
    ) -> IngestResult:
        if readings.is_empty():
            return IngestResult(accepted=0, asset_ids=[], first_ts=None, last_ts=None)
        now = utcnow()
        asset_ids = readings.get_column("asset_id").unique().sort().to_list()
        with self._write() as conn:
            # The first statement writes, so the write lock is held from here to commit.
            seq = self._bump_seq(conn, now)
            keys = self._ensure_assets(conn, tenant_id, asset_ids, now)
            keyed = readings.select(
                pl.col("asset_id").replace_strict(keys, return_dtype=pl.Int64).alias("asset_key"),
                "ts",
                "value",
            )
            rollups = self._start_rollups(conn, keyed)
            chunk = 100_000
            for i in range(0, keyed.height, chunk):
                part = keyed.slice(i, chunk)
                self._write_readings(conn, part)
                if progress:
                    progress(part.height)
            self._finish_rollups(conn, rollups)
            conn.execute(
                assets.update()
                .where(assets.c.asset_key.in_(list(keys.values())))
                .values(data_seq=seq, last_ingest_at=now)
            )
        ts = readings.get_column("ts")
        return IngestResult(
            accepted=readings.height,
            asset_ids=asset_ids,
            first_ts=int(ts.min()),  # type: ignore[arg-type]
            last_ts=int(ts.max()),  # type: ignore[arg-type]
            seq=seq,
        )

    def ingest_weather(self, tenant_id: str, observations: pl.DataFrame) -> IngestResult:
        if observations.is_empty():
            return IngestResult(accepted=0, asset_ids=[], first_ts=None, last_ts=None)
        now = utcnow()
        locations = observations.get_column("location_id").unique().to_list()
        with self._write() as conn:
            seq = self._bump_seq(conn, now)
            self._write_weather(conn, tenant_id, observations)
            at_locations = (assets.c.tenant_id == tenant_id) & assets.c.location_id.in_(locations)
            affected = [
                r.asset_id for r in conn.execute(sa.select(assets.c.asset_id).where(at_locations))
            ]
            if affected:
                conn.execute(assets.update().where(at_locations).values(data_seq=seq))
        ts = observations.get_column("ts")
        return IngestResult(
            accepted=observations.height,
            asset_ids=affected,
            first_ts=int(ts.min()),  # type: ignore[arg-type]
            last_ts=int(ts.max()),  # type: ignore[arg-type]
            seq=seq,
        )

    def _bump_seq(self, conn: sa.Connection, now: datetime) -> int:
        conn.execute(
            ingest_seq.update()
            .where(ingest_seq.c.id == 1)
            .values(seq=ingest_seq.c.seq + 1, last_ingest_at=now)
        )
        return int(
            conn.execute(sa.select(ingest_seq.c.seq).where(ingest_seq.c.id == 1)).scalar_one()
        )

    def _ensure_assets(
        self, conn: sa.Connection, tenant_id: str, asset_ids: list[str], now: datetime
    ) -> dict[str, int]:
        keys: dict[str, int] = {}
        for i in range(0, len(asset_ids), 500):
            q = sa.select(assets.c.asset_id, assets.c.asset_key).where(
                assets.c.tenant_id == tenant_id, assets.c.asset_id.in_(asset_ids[i : i + 500])
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
            for i in range(0, len(missing), 500):
                q = sa.select(assets.c.asset_id, assets.c.asset_key).where(
                    assets.c.tenant_id == tenant_id, assets.c.asset_id.in_(missing[i : i + 500])
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
        wanted = [c for c in ROLLUP_VALUES if c in columns]  # fixed names: safe in SQL
        schema = {c: ROLLUP_SCHEMA[c] for c in ("asset_key", "hour", *wanted)}
        if not asset_keys:
            return pl.DataFrame(schema=schema)
        keys = sorted(set(asset_keys))
        sql = (
            f"SELECT {', '.join(schema)} FROM hourly_rollups "
            f"WHERE asset_key IN ({self._placeholders(len(keys))}) AND hour >= ? AND hour < ? "
            "ORDER BY asset_key, hour"
        )
        return self._fetch(sql, [*keys, start, end], schema)

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

    def load_readings(self, asset_key: int, start: int, end: int) -> pl.DataFrame:
        sql = (
            "SELECT ts, value FROM readings WHERE asset_key = ? AND ts >= ? AND ts < ? ORDER BY ts"
        )
        return self._fetch(sql, [asset_key, start, end], {"ts": pl.Int64, "value": pl.Float64})

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
    def change_seq(self) -> int:
        with self._connect() as conn:
            return int(
                conn.execute(sa.select(ingest_seq.c.seq).where(ingest_seq.c.id == 1)).scalar_one()
            )

    def changed_since(self, seq: int) -> list[tuple[str, str, int]]:
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(assets.c.tenant_id, assets.c.asset_id, assets.c.data_seq).where(
                    assets.c.data_seq > seq
                )
            )
            return [(r.tenant_id, r.asset_id, int(r.data_seq)) for r in rows]

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

    def _write(self) -> Any:
        return write_transaction(self.engine)
