"""Offline export: point-in-time feature rows for every asset-hour with readings, written
to Parquet (zstd) one row group per chunk of assets, so memory stays bounded whatever the
number of assets. Every export is recorded; a file is only presented once complete."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from aihub.auth.scope import check_tenant, visible_tenants
from aihub.errors import AihubError, BackendUnavailable, InvalidInput, NotFound
from aihub.features.catalog import CATALOG, FeatureSet
from aihub.features.compute import MAX_SHIFT_HOURS
from aihub.metrics import record_export
from aihub.names import check_name
from aihub.services.drift import reference_bins
from aihub.services.export_reaper import owner_token, reap_stale_exports
from aihub.services.features import FeatureService
from aihub.stores.metadata.exports import ExportRecord, ExportStore
from aihub.stores.timeseries.base import Asset
from aihub.timeutil import HOUR_US, require_aware, to_us, utcnow

# Rows of the dense hourly grid computed at once; sets the memory of an export.
CHUNK_GRID_ROWS = 300_000
MAX_EXPORT_HOURS = 20 * 8784


@dataclass(frozen=True, slots=True)
class ExportRequest:
    tenant_id: str
    feature_set: str
    start_time: datetime
    end_time: datetime
    asset_ids: Sequence[str] | None = None
    lookback_hours: int = 168


ExportProgress = Callable[[int, int], None]  # (assets done, assets total)
log = logging.getLogger("aihub.exports")


def export_file_name(tenant_id: str, feature_set: str, export_id: str) -> str:
    """``{tenant}_{set}_{export_id}.parquet`` with the full id, so the file names its
    record; the (validated) names are shortened to keep it within a file name's 255 bytes."""
    return f"{tenant_id[:64]}_{feature_set[:64]}_{export_id}.parquet"


def failure_message(exc: BaseException, ref: str) -> str:
    """What an export record says about a failure: its kind and a reference to the server
    log, never the exception's own text."""
    if isinstance(exc, BackendUnavailable):
        kind = f"{exc.backend} unavailable"
    elif isinstance(exc, AihubError):
        kind = exc.code.replace("_", " ")
    else:
        kind = "internal error"
    return f"export failed ({kind}); see the server log, reference {ref}"


@dataclass(frozen=True, slots=True)
class _Job:
    """A validated, recorded export waiting to be written."""

    req: ExportRequest
    record: ExportRecord
    assets: list[Asset]
    start: int
    end: int
    final: Path


def _parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    # Dictionary-encode the id columns only: trying it on high-cardinality floats costs
    # more time than it saves space.
    return pq.ParquetWriter(
        str(path), schema, compression="zstd", use_dictionary=["tenant_id", "asset_id"]
    )


class ExportService:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        features: FeatureService,
        records: ExportStore,
        export_dir: Path,
        publish: Callable[[Path], str] | None = None,
    ) -> None:
        self.engine = engine
        self.features = features
        self.records = records
        self.export_dir = export_dir
        # Moves a finished file to its final home (S3) and returns the path to record.
        self.publish = publish
        # A "running" export older than this is failed even when its writer can't be seen.
        self.stale_after_s = 6 * 3600
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")

    def validate(self, req: ExportRequest) -> tuple[list[Asset], int, int]:
        check_name(req.tenant_id, "tenant_id")
        start = to_us(require_aware(req.start_time, "start_time"))
        end = to_us(require_aware(req.end_time, "end_time"))
        if end <= start:
            raise InvalidInput("end_time: must be after start_time")
        if (end - start) // HOUR_US > MAX_EXPORT_HOURS:
            raise InvalidInput(f"end_time: an export spans at most {MAX_EXPORT_HOURS} hours")
        self.features.check_lookback(req.lookback_hours)
        store = self.features.store
        if not store.tenant_exists(req.tenant_id):
            raise NotFound(f"unknown tenant '{req.tenant_id}'")
        self.features.feature_set(req.tenant_id, req.feature_set)
        if req.asset_ids is not None:
            for a in req.asset_ids:
                check_name(a, "asset_ids")
            known = {a.asset_id for a in store.get_assets(req.tenant_id, req.asset_ids)}
            unknown = [a for a in req.asset_ids if a not in known]
            if unknown:
                raise NotFound(f"unknown asset(s) for tenant '{req.tenant_id}': {unknown[:20]}")
        assets = store.asset_keys_with_data(req.tenant_id, req.asset_ids, start, end)
        return assets, start, end

    def export(self, req: ExportRequest, *, progress: ExportProgress | None = None) -> ExportRecord:
        """Validate, record, write and publish; returns the finished record."""
        job = self._begin(req)
        return self._run(job, progress)

    def submit(self, req: ExportRequest) -> ExportRecord:
        """Validate and record the export, then write it in the background (one at a time,
        so memory stays that of one export); returns the ``running`` record to poll."""
        job = self._begin(req)
        self._background.submit(self._run_quietly, job)
        return job.record

    def close(self) -> None:
        """Wait for background exports to finish."""
        self._background.shutdown(wait=True)

    def _begin(self, req: ExportRequest) -> _Job:
        assets, start, end = self.validate(req)
        fs = self.features.feature_set(req.tenant_id, req.feature_set)
        export_id = str(uuid.uuid4())
        self.export_dir.mkdir(parents=True, exist_ok=True)
        final = self.export_dir / export_file_name(req.tenant_id, fs.name, export_id)
        record = ExportRecord(
            export_id=export_id,
            tenant_id=req.tenant_id,
            feature_set=fs.name,
            status="running",
            start_time=req.start_time,
            end_time=req.end_time,
            asset_ids=list(req.asset_ids) if req.asset_ids is not None else None,
            lookback_hours=req.lookback_hours,
            storage_path=str(final),
            row_count=None,
            file_size_bytes=None,
            message=None,
            created_at=utcnow(),
            completed_at=None,
        )
        # The record and its owner in one transaction: a crash can't leave a running
        # export that no process owns.
        with self.engine.begin() as conn:
            self.records.insert(conn, record, owner=owner_token())
        return _Job(req, record, assets, start, end, final)

    def _run_quietly(self, job: _Job) -> None:
        try:
            self._run(job, None)
        except Exception:  # recorded as failed by _run; nobody waits for this thread
            log.exception("background export %s failed", job.record.export_id)

    def _run(self, job: _Job, progress: ExportProgress | None) -> ExportRecord:
        req, record, final = job.req, job.record, job.final
        partial = final.with_suffix(".parquet.partial")
        began = time.perf_counter()
        try:
            rows = self._write(req, job.assets, job.start, job.end, partial, progress)
            partial.replace(final)
            size = final.stat().st_size
            reference = self._reference(req, final)
            location = self.publish(final) if self.publish else str(final)
        except BaseException as exc:
            partial.unlink(missing_ok=True)
            if self.publish:  # never leave a staged copy behind
                final.unlink(missing_ok=True)
            record_export("failed", time.perf_counter() - began)
            # The exception's text goes to the log only: it may name hosts, paths or driver
            # internals. The record says what kind of failure it was and where to look.
            ref = uuid.uuid4().hex[:12]
            log.error("export %s failed (reference %s)", record.export_id, ref, exc_info=exc)
            self._save(record.finished(status="failed", message=failure_message(exc, ref),
                                       completed_at=utcnow()))
            raise
        record_export("completed", time.perf_counter() - began, rows)
        done = record.finished(
            status="completed",
            row_count=rows,
            file_size_bytes=size,
            storage_path=location,
            completed_at=utcnow(),
            message=f"Exported {rows} rows to {location}",
        )
        with self.engine.begin() as conn:
            self.records.update(conn, done)
            if reference is not None:
                self.records.set_reference(conn, done.export_id, reference)
        return done

    def _reference(self, req: ExportRequest, path: Path) -> dict[str, Any] | None:
        """Reference bins of the written features (drift); an export never fails on them."""
        try:
            features = self.features.feature_set(req.tenant_id, req.feature_set).features
            return reference_bins(path, features)
        except Exception:
            log.exception("reference bins of %s not computed", path)
            return None

    def _save(self, record: ExportRecord) -> None:
        with self.engine.begin() as conn:
            self.records.update(conn, record)

    def _write(
        self,
        req: ExportRequest,
        assets: list[Asset],
        start: int,
        end: int,
        path: Path,
        progress: ExportProgress | None,
    ) -> int:
        fs = self.features.feature_set(req.tenant_id, req.feature_set)
        span_hours = (end - start) // HOUR_US + MAX_SHIFT_HOURS
        per_chunk = max(1, CHUNK_GRID_ROWS // span_hours)
        chunks = [assets[i : i + per_chunk] for i in range(0, len(assets), per_chunk)]

        def compute(chunk: list[Asset]) -> pl.DataFrame:
            rows = self.features.frame(
                chunk, fs, start=start, end=end, lookback_hours=req.lookback_hours
            )
            ids = pl.DataFrame(
                {"asset_key": [a.key for a in chunk], "asset_id": [a.asset_id for a in chunk]},
                schema={"asset_key": pl.Int64, "asset_id": pl.String},
            )
            return rows.join(ids, on="asset_key", how="left").select(
                pl.lit(req.tenant_id).alias("tenant_id"),
                "asset_id",
                pl.col("hour").cast(pl.Datetime("us", "UTC")).alias("timestamp"),
                *fs.features,
                *(["target"] if fs.has_target else []),
            )

        total = 0
        writer: pq.ParquetWriter | None = None
        done_assets = 0
        try:
            # Compute the next chunk while the current one is written.
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(compute, chunks[0]) if chunks else None
                for i in range(len(chunks)):
                    assert pending is not None
                    frame = pending.result()
                    pending = pool.submit(compute, chunks[i + 1]) if i + 1 < len(chunks) else None
                    table = frame.to_arrow()
                    if writer is None:
                        writer = _parquet_writer(path, table.schema)
                    writer.write_table(table)
                    total += frame.height
                    done_assets += len(chunks[i])
                    if progress:
                        progress(done_assets, len(assets))
            if writer is None:  # no rows: still a valid, empty file with the right columns
                empty = self._empty(fs)
                writer = _parquet_writer(path, empty.to_arrow().schema)
                writer.write_table(empty.to_arrow())
        finally:
            if writer is not None:
                writer.close()
        return total

    @staticmethod
    def _empty(fs: FeatureSet) -> pl.DataFrame:
        schema: dict[str, pl.DataType] = {
            "tenant_id": pl.String(),
            "asset_id": pl.String(),
            "timestamp": pl.Datetime("us", "UTC"),
        }
        for f in fs.features:
            schema[f] = pl.Int32() if CATALOG[f].dtype == "int" else pl.Float64()
        if fs.has_target:
            schema["target"] = pl.Float64()
        return pl.DataFrame(schema=schema)

    # -- records --------------------------------------------------------------------------
    def reap_stale(self) -> list[str]:
        """Report exports whose writer died as failed (see ``export_reaper``)."""
        return reap_stale_exports(self.engine, self.records, stale_after_s=self.stale_after_s)

    def get(self, export_id: str) -> ExportRecord:
        record = self._get(export_id)
        if record is not None and record.status == "running" and self.reap_stale():
            record = self._get(export_id)
        if record is None:
            raise NotFound(f"unknown export '{export_id}'")
        check_tenant(record.tenant_id, f"unknown export '{export_id}'")
        return record

    def list(
        self, tenant_id: str | None, *, limit: int, offset: int
    ) -> tuple[list[ExportRecord], int]:
        if tenant_id is not None:
            check_tenant(tenant_id)
        self.reap_stale()
        with self.engine.connect() as conn:
            return self.records.list(conn, tenant_id, limit=limit, offset=offset,
                                     tenant_in=None if tenant_id else visible_tenants())

    def _get(self, export_id: str) -> ExportRecord | None:
        with self.engine.connect() as conn:
            return self.records.get(conn, export_id)
