"""Ingest of readings and weather: validate the whole batch, store it in one transaction
this service opens, then, once it committed, drop the online features of every touched
asset."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl
import sqlalchemy as sa

from aihub.db import write_transaction
from aihub.metrics import record_ingest
from aihub.names import check_name
from aihub.services.validation import validate_readings, validate_weather
from aihub.stores.online.base import OnlineStore, cache_key
from aihub.stores.timeseries.base import IngestResult, Progress, TimeSeriesStore


class IngestService:
    def __init__(
        self, *, engine: sa.Engine, store: TimeSeriesStore, online: OnlineStore, max_rows: int
    ) -> None:
        self.engine = engine
        self.store = store
        self.online = online
        self.max_rows = max_rows
        # Called inside a readings batch's transaction once it is stored (the prediction
        # log refreshes the actuals of the hours it touched).
        self.on_readings: list[Callable[[sa.Connection, str, IngestResult], None]] = []

    def ingest_readings(
        self,
        tenant_id: str,
        readings: pl.DataFrame,
        *,
        progress: Progress | None = None,
        max_rows: int | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> IngestResult:
        """``max_rows`` overrides the API's batch limit (the CLI imports whole files);
        ``labels`` name the fields in messages (the CLI: the file's columns)."""
        check_name(tenant_id, "tenant_id")
        batch = validate_readings(readings, max_rows=max_rows or self.max_rows, labels=labels)
        with write_transaction(self.engine) as conn:
            result = self.store.ingest_readings(conn, tenant_id, batch, progress=progress)
            for hook in self.on_readings:
                hook(conn, tenant_id, result)
        record_ingest("readings", result.accepted)
        # After the commit: a reader that filled the cache before it is invalidated now.
        self.online.invalidate(
            [cache_key(tenant_id, a) for a in result.asset_ids], seq=result.seq or None
        )
        return result

    def ingest_weather(
        self,
        tenant_id: str,
        observations: pl.DataFrame,
        *,
        max_rows: int | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> IngestResult:
        check_name(tenant_id, "tenant_id")
        batch = validate_weather(
            observations, max_rows=max_rows or self.max_rows, labels=labels
        )
        with write_transaction(self.engine) as conn:
            result = self.store.ingest_weather(conn, tenant_id, batch)
        record_ingest("weather", result.accepted)
        # Weather features of every asset at these locations may have changed.
        self.online.invalidate(
            [cache_key(tenant_id, a) for a in result.asset_ids], seq=result.seq or None
        )
        return result
