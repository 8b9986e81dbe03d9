"""Ingest of readings and weather: validate the whole batch, store it in one transaction
this service opens, then, once it committed, drop the online features of every touched
asset."""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from aihub.db import write_transaction
from aihub.errors import InvalidInput, PayloadTooLarge
from aihub.features.frames import READINGS_SCHEMA, WEATHER_FIELDS, WEATHER_SCHEMA
from aihub.metrics import record_ingest
from aihub.names import check_name, is_valid_name
from aihub.stores.online.base import OnlineStore, cache_key
from aihub.stores.timeseries.base import IngestResult, Progress, TimeSeriesStore
from aihub.timeutil import MAX_TS, MIN_TS, to_us

_MIN_US, _MAX_US = to_us(MIN_TS), to_us(MAX_TS)


def _first_bad(frame: pl.DataFrame, bad: pl.Expr, field: str, why: str) -> None:
    """Raise naming the first row where ``bad`` holds. One vectorised pass decides whether
    any row is bad; only then are row numbers looked up."""
    if not frame.select(bad.any()).item():
        return
    hits = frame.with_row_index("_row").filter(bad)
    row = int(hits.get_column("_row")[0])
    raise InvalidInput(
        f"row {row}, field '{field}': {why} ({hits.height} bad row(s) in the batch; "
        "nothing was stored)",
        details={"row": row, "field": field, "bad_rows": hits.height},
    )


def _check_ids(frame: pl.DataFrame, column: str) -> None:
    _first_bad(frame, pl.col(column).is_null(), column, "missing")
    # A batch names few distinct ids: check those, not every row.
    distinct = frame.get_column(column).drop_nulls().unique()
    bad = [v for v in distinct.to_list() if not is_valid_name(v)]
    if bad:
        _first_bad(
            frame,
            pl.col(column).is_in(pl.Series(bad, dtype=pl.String).implode()),
            column,
            "not a valid name (letters, digits, '_', '.', '-'; at most 128)",
        )


def _check_times(frame: pl.DataFrame, column: str) -> None:
    _first_bad(frame, pl.col(column).is_null(), column, "missing timestamp")
    _first_bad(
        frame,
        (pl.col(column) < _MIN_US) | (pl.col(column) >= _MAX_US),
        column,
        "timestamp outside 1970..2200",
    )


def validate_readings(frame: pl.DataFrame, *, max_rows: int) -> pl.DataFrame:
    """Check a readings frame (``READINGS_SCHEMA``) row by row; return it deduplicated so
    that a later row for the same (asset, ts) replaces an earlier one."""
    if frame.height > max_rows:
        raise PayloadTooLarge(f"{frame.height} readings in one batch; the limit is {max_rows}")
    frame = frame.select(list(READINGS_SCHEMA)).cast(READINGS_SCHEMA)  # type: ignore[arg-type]
    _check_ids(frame, "asset_id")
    _check_times(frame, "ts")
    value = pl.col("value")
    _first_bad(
        frame,
        value.is_null() | ~value.is_finite(),
        "value",
        "value must be a finite number",
    )
    if not frame.select(pl.struct("asset_id", "ts").is_duplicated().any()).item():
        return frame
    return frame.unique(subset=["asset_id", "ts"], keep="last", maintain_order=True)


def validate_weather(frame: pl.DataFrame, *, max_rows: int) -> pl.DataFrame:
    if frame.height > max_rows:
        raise PayloadTooLarge(f"{frame.height} observations in one batch; the limit is {max_rows}")
    for f in WEATHER_FIELDS:
        if f not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Float64).alias(f))
    frame = frame.select(list(WEATHER_SCHEMA)).cast(WEATHER_SCHEMA)  # type: ignore[arg-type]
    _check_ids(frame, "location_id")
    _check_times(frame, "ts")
    for f in WEATHER_FIELDS:
        _first_bad(
            frame,
            pl.col(f).is_nan() | pl.col(f).is_infinite(),
            f,
            "must be a finite number or null",
        )
    return frame.unique(subset=["location_id", "ts"], keep="last", maintain_order=True)


class IngestService:
    def __init__(
        self, *, engine: sa.Engine, store: TimeSeriesStore, online: OnlineStore, max_rows: int
    ) -> None:
        self.engine = engine
        self.store = store
        self.online = online
        self.max_rows = max_rows

    def ingest_readings(
        self,
        tenant_id: str,
        readings: pl.DataFrame,
        *,
        progress: Progress | None = None,
        max_rows: int | None = None,
    ) -> IngestResult:
        """``max_rows`` overrides the API's batch limit (the CLI imports whole files)."""
        check_name(tenant_id, "tenant_id")
        batch = validate_readings(readings, max_rows=max_rows or self.max_rows)
        with write_transaction(self.engine) as conn:
            result = self.store.ingest_readings(conn, tenant_id, batch, progress=progress)
        record_ingest("readings", result.accepted)
        # After the commit: a reader that filled the cache before it is invalidated now.
        self.online.invalidate(
            [cache_key(tenant_id, a) for a in result.asset_ids], seq=result.seq or None
        )
        return result

    def ingest_weather(
        self, tenant_id: str, observations: pl.DataFrame, *, max_rows: int | None = None
    ) -> IngestResult:
        check_name(tenant_id, "tenant_id")
        batch = validate_weather(observations, max_rows=max_rows or self.max_rows)
        with write_transaction(self.engine) as conn:
            result = self.store.ingest_weather(conn, tenant_id, batch)
        record_ingest("weather", result.accepted)
        # Weather features of every asset at these locations may have changed.
        self.online.invalidate(
            [cache_key(tenant_id, a) for a in result.asset_ids], seq=result.seq or None
        )
        return result
