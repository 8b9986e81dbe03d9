"""Offline export: point-in-time feature rows for every asset-hour with readings, written
to Parquet (zstd) one row group per chunk of assets, so memory stays bounded whatever the
number of assets. Every export is recorded; a file is only presented once complete.

Given an executor (``aihub.services.executors``: local processes or a Dask cluster), the
export is a dataset instead: partitions of assets written as parts by tasks that each run
this module's per-chunk writer (``write_part``) on their own connection
(``aihub.services.export_parts``); the record lists the parts."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from aihub.auth.scope import check_tenant, visible_tenants
from aihub.config import Settings
from aihub.errors import AihubError, BackendUnavailable, InvalidInput, NotFound
from aihub.features.catalog import CATALOG, FeatureSet
from aihub.features.compute import MAX_SHIFT_HOURS
from aihub.features.knowledge import Knowledge, OriginSchedule, schedule_origins
from aihub.features.origin_compute import WINDOW
from aihub.metrics import record_export
from aihub.names import check_name
from aihub.services import export_parts
from aihub.services.drift import (
    SAMPLE_ROWS,
    ReferenceAccumulator,
    ReferenceThread,
    reference_bins,
)
from aihub.services.executors import DaskExecutor, Executor, InlineExecutor
from aihub.services.export_files import ExportFile, open_export_file
from aihub.services.export_reaper import owner_token, reap_stale_exports
from aihub.services.features import FeatureService, check_horizons
from aihub.stores.metadata.exports import ExportRecord, ExportStore
from aihub.stores.timeseries.base import Asset
from aihub.timeutil import HOUR_US, require_aware, to_us, utcnow

# Rows of the dense hourly grid computed at once; sets the memory of an export.
CHUNK_GRID_ROWS = 300_000
# Cells of the origin windows (and rows) computed at once, for exports at origins.
CHUNK_KNOWN_CELLS = 8_000_000
MAX_EXPORT_HOURS = 20 * 8784


@dataclass(frozen=True, slots=True)
class ExportRequest:
    tenant_id: str
    feature_set: str
    start_time: datetime
    end_time: datetime
    asset_ids: Sequence[str] | None = None
    lookback_hours: int = 168
    # origins, horizons, as_known ("What was known when"); None: today's rows and columns
    knowledge: Knowledge | None = None


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
    dataset: str | None = None  # where the parts go, for an export run on an executor


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
        settings: Settings | None = None,
    ) -> None:
        self.engine = engine
        self.features = features
        self.records = records
        self.export_dir = export_dir
        # Moves a finished file to its final home (S3) and returns the path to record.
        self.publish = publish
        # A "running" export older than this is failed even when its writer can't be seen.
        self.stale_after_s = 6 * 3600
        # What tasks on other processes open their connections and storage with; with
        # AIHUB_DASK_SCHEDULER set, exports run on that Dask cluster unless told otherwise.
        self.settings = settings
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
        fs = self.features.feature_set(req.tenant_id, req.feature_set)
        if req.knowledge is not None:
            check_horizons(fs, req.knowledge.horizons)
        if req.asset_ids is not None:
            for a in req.asset_ids:
                check_name(a, "asset_ids")
            known = {a.asset_id for a in store.get_assets(req.tenant_id, req.asset_ids)}
            unknown = [a for a in req.asset_ids if a not in known]
            if unknown:
                raise NotFound(f"unknown asset(s) for tenant '{req.tenant_id}': {unknown[:20]}")
        assets = store.asset_keys_with_data(req.tenant_id, req.asset_ids, start, end)
        return assets, start, end

    def export(
        self,
        req: ExportRequest,
        *,
        progress: ExportProgress | None = None,
        executor: Executor | None = None,
        part_assets: int | None = None,
    ) -> ExportRecord:
        """Validate, record, write and publish; returns the finished record. With an
        ``executor`` (or AIHUB_DASK_SCHEDULER set) the result is a dataset of parts, each
        of ``part_assets`` assets (default: sized by ``export_parts.partition``)."""
        if executor is None and self._dask_address():
            with DaskExecutor(self._dask_address()) as dask:
                return self.export(req, progress=progress, executor=dask,
                                   part_assets=part_assets)
        job = self._begin(req, dataset=executor is not None)
        if executor is None:
            return self._run(job, progress)
        return self._run_dataset(job, executor, progress, part_assets)

    def submit(self, req: ExportRequest) -> ExportRecord:
        """Validate and record the export, then write it in the background (one at a time,
        so memory stays that of one export); returns the ``running`` record to poll."""
        job = self._begin(req, dataset=bool(self._dask_address()))
        self._background.submit(self._run_quietly, job)
        return job.record

    def write_part(
        self, req: ExportRequest, assets: list[Asset], start: int, end: int, path: Path
    ) -> int:
        """One partition's rows, written to ``path`` exactly as the single-file export
        writes them (an executor's task); returns the rows."""
        return self._write(req, assets, start, end, path, None)

    def _dask_address(self) -> str | None:
        return self.settings.dask_scheduler if self.settings is not None else None

    def close(self) -> None:
        """Wait for background exports to finish."""
        self._background.shutdown(wait=True)

    def _begin(self, req: ExportRequest, *, dataset: bool = False) -> _Job:
        assets, start, end = self.validate(req)
        fs = self.features.feature_set(req.tenant_id, req.feature_set)
        export_id = str(uuid.uuid4())
        self.export_dir.mkdir(parents=True, exist_ok=True)
        final = self.export_dir / export_file_name(req.tenant_id, fs.name, export_id)
        where = None
        if dataset:
            where = export_parts.dataset_location(
                self.settings.export_storage_path if self.settings else str(self.export_dir),
                self.export_dir, final.stem)
        record = ExportRecord(
            export_id=export_id,
            tenant_id=req.tenant_id,
            feature_set=fs.name,
            status="running",
            start_time=req.start_time,
            end_time=req.end_time,
            asset_ids=list(req.asset_ids) if req.asset_ids is not None else None,
            lookback_hours=req.lookback_hours,
            storage_path=where or str(final),
            row_count=None,
            file_size_bytes=None,
            message=None,
            created_at=utcnow(),
            completed_at=None,
            options=req.knowledge.to_dict() if req.knowledge else None,
        )
        # The record and its owner in one transaction: a crash can't leave a running
        # export that no process owns.
        with self.engine.begin() as conn:
            self.records.insert(conn, record, owner=owner_token())
        return _Job(req, record, assets, start, end, final, where)

    def _run_quietly(self, job: _Job) -> None:
        try:
            if job.dataset is not None:
                self._run_on_dask(job)
            else:
                self._run(job, None)
        except Exception:  # recorded as failed by _run; nobody waits for this thread
            log.exception("background export %s failed", job.record.export_id)

    def _run(self, job: _Job, progress: ExportProgress | None) -> ExportRecord:
        req, record, final = job.req, job.record, job.final
        partial = final.with_suffix(".parquet.partial")
        began = time.perf_counter()
        try:
            reference_acc = ReferenceAccumulator(self._features_of(req))
            rows = self._write(req, job.assets, job.start, job.end, partial, progress,
                               reference_acc)
            partial.replace(final)
            size = final.stat().st_size
            # All rows went into the accumulator (an export of at most SAMPLE_ROWS), or none.
            reference = self._reference(
                req, final, reference_acc if reference_acc.total == rows else None
            )
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

    def _run_on_dask(self, job: _Job) -> ExportRecord:
        """A recorded dataset export on the configured Dask cluster (in the background)."""
        try:
            dask = DaskExecutor(self._dask_address())
        except AihubError as exc:
            self._failed(job.record, exc, time.perf_counter())
            raise
        with dask:
            return self._run_dataset(job, dask, None, None)

    def _failed(self, record: ExportRecord, exc: BaseException, began: float) -> None:
        """Record a dataset export as failed; the error itself goes to the log."""
        record_export("failed", time.perf_counter() - began)
        ref = uuid.uuid4().hex[:12]
        log.error("export %s failed (reference %s)", record.export_id, ref, exc_info=exc)
        self._save(record.finished(status="failed", message=failure_message(exc, ref),
                                   completed_at=utcnow()))

    def _run_dataset(
        self,
        job: _Job,
        executor: Executor,
        progress: ExportProgress | None,
        part_assets: int | None,
    ) -> ExportRecord:
        """The export as parts written by ``executor``'s tasks; the record lists them."""
        req, record, dataset = job.req, job.record, job.dataset
        assert dataset is not None
        began = time.perf_counter()
        groups = export_parts.partition(
            job.assets,
            span_hours=export_parts.span_hours(job.start, job.end, MAX_SHIFT_HOURS),
            workers=executor.workers,
            per_part=part_assets,
        )
        tasks = [
            export_parts.PartTask(self.settings, req, group, job.start, job.end, i, dataset)
            for i, group in enumerate(groups)
        ]
        done_assets = 0

        def on_done(part: export_parts.PartResult) -> None:
            nonlocal done_assets
            done_assets += part.assets
            if progress:
                progress(done_assets, len(job.assets))

        if not dataset.startswith("s3://"):
            Path(dataset).mkdir(parents=True, exist_ok=True)
        try:
            if isinstance(executor, InlineExecutor):
                parts = executor.run(partial(export_parts.run_part, exports=self), tasks,
                                     on_done)
            else:
                parts = executor.run(export_parts.run_part, tasks, on_done)
            export_parts.remove_leftovers(dataset)
        except BaseException as exc:
            try:
                export_parts.remove_dataset(self.settings, dataset)
            except Exception:  # the failure above is what the record reports
                log.warning("export %s: parts not removed", record.export_id, exc_info=True)
            self._failed(record, exc, began)
            raise
        rows = sum(p.rows for p in parts)
        size = sum(p.bytes for p in parts)
        record_export("completed", time.perf_counter() - began, rows)
        done = record.finished(
            status="completed",
            row_count=rows,
            file_size_bytes=size,
            completed_at=utcnow(),
            parts=[p.to_dict() for p in parts],
            message=f"Exported {rows} rows in {len(parts)} part(s) to {dataset} "
            f"({executor.name}, {executor.workers} worker(s))",
        )
        # Reference bins for drift from a local dataset (read as one table); a dataset on
        # S3 gets none (its parts would be read back over the network).
        reference = None if dataset.startswith("s3://") else self._reference(req, Path(dataset))
        with self.engine.begin() as conn:
            self.records.update(conn, done)
            if reference is not None:
                self.records.set_reference(conn, done.export_id, reference)
        return done
    def _features_of(self, req: ExportRequest) -> tuple[str, ...]:
        return self.features.feature_set(req.tenant_id, req.feature_set).features

    def _reference(
        self, req: ExportRequest, path: Path, written: ReferenceAccumulator | None = None
    ) -> dict[str, Any] | None:
        """Reference bins of the written features (drift): from the tables as they were
        written (``written``, every row of an export that fits the sample), else read back
        from the file. An export never fails on them."""
        try:
            if written is not None:
                return written.result()
            return reference_bins(path, self._features_of(req))
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
        reference: ReferenceAccumulator | None = None,
    ) -> int:
        fs = self.features.feature_set(req.tenant_id, req.feature_set)
        known = req.knowledge
        origins = schedule_origins(known.origins or OriginSchedule(), start, end) if known else []
        span_hours = (end - start) // HOUR_US + MAX_SHIFT_HOURS
        per_chunk = max(1, CHUNK_GRID_ROWS // span_hours)
        if known is not None:  # a window of WINDOW hours per origin, a row per horizon
            cells = max(1, len(origins)) * (WINDOW + 8 * len(known.horizons))
            per_chunk = max(1, CHUNK_KNOWN_CELLS // cells)
        chunks = [assets[i : i + per_chunk] for i in range(0, len(assets), per_chunk)]
        weather_memo: dict[tuple[Any, ...], pl.DataFrame] = {}

        def compute(chunk: list[Asset]) -> pl.DataFrame:
            if known is not None:
                return self._known_rows(req, fs, chunk, origins, known, weather_memo)
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
        # The reference bins (drift) of an export that fits the sample are taken from its
        # tables on a thread of their own, beside the writes: no reading the file back,
        # and the last table's bins are computed while it is written.
        bins = ReferenceThread(reference) if reference is not None else None
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
                    total += frame.height
                    if bins is not None and total <= SAMPLE_ROWS:
                        bins.add(table, last=pending is None)
                    writer.write_table(table)
                    done_assets += len(chunks[i])
                    if progress:
                        progress(done_assets, len(assets))
            if writer is None:  # no rows: still a valid, empty file with the right columns
                empty = self._empty(fs, known is not None)
                writer = _parquet_writer(path, empty.to_arrow().schema)
                writer.write_table(empty.to_arrow())
        finally:
            if bins is not None:
                bins.close()
            if writer is not None:
                writer.close()
        return total

    def _known_rows(
        self, req: ExportRequest, fs: FeatureSet, chunk: list[Asset], origins: list[int],
        known: Knowledge, weather_memo: dict[tuple[Any, ...], pl.DataFrame] | None = None,
    ) -> pl.DataFrame:
        """One chunk's rows at (origin, horizon), as known per the request."""
        rows = self.features.knowledge_frame(
            chunk, fs, origins=origins, horizons=known.horizons,
            lookback_hours=req.lookback_hours, as_known=known.as_known, with_target_only=True,
            weather_memo=weather_memo,
        )
        ids = pl.DataFrame(
            {"asset_key": [a.key for a in chunk], "asset_id": [a.asset_id for a in chunk]},
            schema={"asset_key": pl.Int64, "asset_id": pl.String},
        )
        utc = pl.Datetime("us", "UTC")
        return rows.join(ids, on="asset_key", how="left").select(
            pl.lit(req.tenant_id).alias("tenant_id"),
            "asset_id",
            pl.col("origin").cast(utc),
            pl.col("hour").cast(utc).alias("timestamp"),
            "horizon",
            *fs.features,
            *(["target", "target_quality"] if fs.has_target else []),
        )

    @staticmethod
    def _empty(fs: FeatureSet, known: bool = False) -> pl.DataFrame:
        schema: dict[str, pl.DataType] = {
            "tenant_id": pl.String(),
            "asset_id": pl.String(),
        }
        if known:
            schema["origin"] = pl.Datetime("us", "UTC")
        schema["timestamp"] = pl.Datetime("us", "UTC")
        if known:
            schema["horizon"] = pl.Int32()
        for f in fs.features:
            schema[f] = pl.Int32() if CATALOG[f].dtype == "int" else pl.Float64()
        if fs.has_target:
            schema["target"] = pl.Float64()
            if known:
                schema["target_quality"] = pl.String()
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

    def open_file(self, export_id: str, part: int | None = None) -> ExportFile:
        """The bytes of a completed export (``part`` N of a dataset) to stream; the record
        is read (and its tenant checked) exactly as ``get`` does (``export_files``)."""
        record = self.get(export_id)
        root = self.settings.export_storage_path if self.settings is not None else ""
        s3_root = root if root.startswith("s3://") else None
        return open_export_file(record, part, export_dir=self.export_dir, s3_root=s3_root,
                                s3_client=self._s3_client)

    def _s3_client(self) -> Any:
        from aihub.stores.export_targets import S3ExportTarget

        if isinstance(self.publish, S3ExportTarget):
            return self.publish.client
        assert self.settings is not None
        return S3ExportTarget.from_settings(self.settings).client

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
