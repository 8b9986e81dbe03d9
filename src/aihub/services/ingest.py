"""Ingest of readings and weather: validate the whole batch, store it in one transaction
this service opens, then, once it committed, drop the online features of every touched
asset.

A file of any size comes as a sequence of chunks (``ingest_chunks``): each chunk is one
batch, validated and committed on its own, so memory is that of a chunk. A chunk that fails
stops the file with an error saying how far it got (the rows stored before it); since
re-sent rows replace stored ones, running the same file again after a fix stores exactly
what one pass over the fixed file would have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import polars as pl
import sqlalchemy as sa

from aihub.db import write_transaction
from aihub.errors import AihubError
from aihub.metrics import record_ingest
from aihub.names import check_name
from aihub.services.validation import validate_readings, validate_weather
from aihub.stores.online.base import OnlineStore, cache_key
from aihub.stores.timeseries.base import IngestResult, Progress, TimeSeriesStore


def with_default(frame: pl.DataFrame, column: str, value: int | None) -> pl.DataFrame:
    """``frame`` with ``column``'s nulls (or the missing column) set to ``value``."""
    if value is None:
        return frame
    if column not in frame.columns:
        return frame.with_columns(pl.lit(value, pl.Int64).alias(column))
    return frame.with_columns(pl.col(column).fill_null(value))


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
        labels: Mapping[str, str] | None = None,
        first_row: int = 0,
        known_at: int | None = None,
    ) -> IngestResult:
        """``max_rows`` overrides the API's batch limit (the CLI imports whole files);
        ``labels`` name the fields in messages (the CLI: the file's columns); ``first_row``
        numbers the batch's rows in messages (a chunk of a file); ``known_at`` (epoch us) is
        the knowledge time of rows that give none (default: commit time)."""
        check_name(tenant_id, "tenant_id")
        readings = with_default(readings, "known_at", known_at)
        batch = validate_readings(
            readings, max_rows=max_rows or self.max_rows, labels=labels, first_row=first_row
        )
        with write_transaction(self.engine) as conn:
            result = self.store.ingest_readings(conn, tenant_id, batch, progress=progress)
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
        first_row: int = 0,
        issued_at: int | None = None,
    ) -> IngestResult:
        """Like ``ingest_readings``; ``issued_at`` is the knowledge time of rows that give
        none (a forecast's issue time; default: commit time)."""
        check_name(tenant_id, "tenant_id")
        observations = with_default(observations, "issued_at", issued_at)
        batch = validate_weather(
            observations, max_rows=max_rows or self.max_rows, labels=labels, first_row=first_row
        )
        with write_transaction(self.engine) as conn:
            result = self.store.ingest_weather(conn, tenant_id, batch)
        record_ingest("weather", result.accepted)
        # Weather features of every asset at these locations may have changed.
        self.online.invalidate(
            [cache_key(tenant_id, a) for a in result.asset_ids], seq=result.seq or None
        )
        return result

    # -- for a caller that owns the transaction (the stream's micro-batches) ---------------
    def store_readings(self, conn: sa.Connection, tenant_id: str,
                       batch: pl.DataFrame) -> IngestResult:
        """Store an already validated batch (``split_readings``) in the caller's write
        transaction; once it committed, ``committed`` invalidates what it touched."""
        return self.store.ingest_readings(conn, tenant_id, batch)

    def store_weather(self, conn: sa.Connection, tenant_id: str,
                      batch: pl.DataFrame) -> IngestResult:
        """Like ``store_readings`` for validated weather (``split_weather``)."""
        return self.store.ingest_weather(conn, tenant_id, batch)

    def committed(self, tenant_id: str, kind: str, result: IngestResult) -> None:
        """After the caller's commit: count the rows and drop the touched assets' online
        features, exactly as ``ingest_readings`` does."""
        record_ingest(kind, result.accepted)
        if result.asset_ids:
            self.online.invalidate(
                [cache_key(tenant_id, a) for a in result.asset_ids], seq=result.seq or None
            )
    def ingest_chunks(
        self,
        kind: Literal["readings", "weather"],
        tenant_id: str,
        chunks: Iterable[Chunk],
        *,
        progress: Progress | None = None,
    ) -> ChunkedResult:
        """Each chunk one batch and one transaction, in order; the next chunk is read while
        one is stored. ``progress`` hears the rows of the input done. A failing chunk raises
        its error with a message saying what was stored before it."""
        check_name(tenant_id, "tenant_id")
        done = ChunkedResult(accepted=0, rows=0, chunks=0, asset_ids=[], first_ts=None,
                             last_ts=None)
        assets: set[str] = set()
        source = iter(chunks)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-read") as reader:
            pending = reader.submit(next, source, None)
            while True:
                try:
                    chunk = pending.result()
                    if chunk is None:
                        break
                    pending = reader.submit(next, source, None)
                    result = self._one_chunk(kind, tenant_id, chunk, done.rows, progress)
                except AihubError as exc:
                    raise _stopped(exc, done)  # noqa: B904  (the same error, told more)
                assets.update(result.asset_ids)
                done = done.add(result, chunk.frame.height, sorted(assets))
        return done

    def _one_chunk(
        self,
        kind: Literal["readings", "weather"],
        tenant_id: str,
        chunk: Chunk,
        first_row: int,
        progress: Progress | None,
    ) -> IngestResult:
        rows = chunk.frame.height
        if kind == "readings":
            return self.ingest_readings(tenant_id, chunk.frame, progress=progress,
                                        max_rows=rows + 1, labels=chunk.labels,
                                        first_row=first_row)
        result = self.ingest_weather(tenant_id, chunk.frame, max_rows=rows + 1,
                                     labels=chunk.labels, first_row=first_row)
        if progress:
            progress(rows)
        return result


@dataclass(frozen=True, slots=True)
class Chunk:
    """One batch of a larger input (a file): rows in the store's columns, and how fields
    are named in messages."""

    frame: pl.DataFrame
    labels: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ChunkedResult:
    accepted: int  # rows stored (a later row for the same key within a chunk replaces)
    rows: int  # rows of the input read and committed
    chunks: int
    asset_ids: list[str]
    first_ts: int | None
    last_ts: int | None

    def add(self, r: IngestResult, rows: int, asset_ids: list[str]) -> ChunkedResult:
        firsts = [t for t in (self.first_ts, r.first_ts) if t is not None]
        lasts = [t for t in (self.last_ts, r.last_ts) if t is not None]
        return ChunkedResult(
            accepted=self.accepted + r.accepted,
            rows=self.rows + rows,
            chunks=self.chunks + 1,
            asset_ids=asset_ids,
            first_ts=min(firsts) if firsts else None,
            last_ts=max(lasts) if lasts else None,
        )


def _stopped(exc: AihubError, done: ChunkedResult) -> AihubError:
    """``exc`` with its message saying how far the input got before it."""
    if done.chunks == 0:
        return exc  # nothing stored: the error says all
    exc.message = (
        f"stopped after row {done.rows - 1}: rows 0..{done.rows - 1} ({done.chunks} "
        f"chunk(s), {done.accepted} rows) are stored; the chunk from row {done.rows} on is "
        f"not: {exc.message}. Fix the input and run the same import again: re-sent rows "
        "replace the stored ones"
    )
    exc.args = (exc.message,)
    return exc

