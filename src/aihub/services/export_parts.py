"""An export as a Parquet dataset: one part per partition of assets, each written by a task
that may run in another process or on another host (``aihub.services.executors``).

A task gets the export request as a whole, its partition's assets and the dataset's place;
it opens its own database connection from the settings (once per worker process), computes
its rows with the export's own writer (``ExportService.write_part``: the one pipeline, the
same per-chunk code as a single-file export) and writes ``part-NNNNN.parquet``:

- to a local directory (every worker must see the same path): written as a hidden
  ``.part-NNNNN.parquet.<random>.tmp`` and renamed into place, so a part is complete or
  absent, and a retried task (its worker died) replaces it;
- to S3 (``s3://bucket/prefix/<dataset>/part-NNNNN.parquet``): written to a local
  temporary file and uploaded; an object appears whole, and a retry overwrites it.

Parts are contiguous ranges of the export's asset order, numbered in that order, so
``pyarrow.parquet.read_table(<dataset>)`` reads them back as one table with exactly the
rows, in the order, of the single-file export.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING, Any

from aihub.stores.timeseries.base import Asset
from aihub.timeutil import HOUR_US

if TYPE_CHECKING:
    from aihub.config import Settings
    from aihub.services.exports import ExportRequest, ExportService

# A partition is at least this many cells of the hourly grid (asset-hours of the export's
# span plus its history), so a task is >= ~100 ms of work and its overhead stays small ...
MIN_PART_GRID_ROWS = 60_000
# ... and at most this many (one chunk of the writer: a task's memory is that of one chunk).
MAX_PART_GRID_ROWS = 300_000
# Partitions per worker when there are assets enough: the slower ones don't idle the rest.
PARTS_PER_WORKER = 4


@dataclass(frozen=True, slots=True)
class PartTask:
    settings: Settings | None  # None only for tasks run by the exporting process itself
    req: ExportRequest
    assets: list[Asset]
    start: int
    end: int
    index: int
    dataset: str  # a local directory, or s3://bucket/prefix/name


@dataclass(frozen=True, slots=True)
class PartResult:
    index: int
    name: str
    rows: int
    bytes: int
    assets: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.name, "rows": self.rows, "bytes": self.bytes}


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def partition(assets: list[Asset], *, span_hours: int, workers: int,
              per_part: int | None = None) -> list[list[Asset]]:
    """Contiguous ranges of ``assets``: ``per_part`` each, or sized between the grid-row
    bounds above with about ``PARTS_PER_WORKER`` per worker. Never empty: an export without
    assets is one empty part (the columns, no rows)."""
    if not assets:
        return [[]]
    if per_part is None:
        least = math.ceil(MIN_PART_GRID_ROWS / span_hours)
        most = max(1, MAX_PART_GRID_ROWS // span_hours)
        even = math.ceil(len(assets) / (workers * PARTS_PER_WORKER))
        per_part = max(1, min(most, max(least, even)))
    return [assets[i : i + per_part] for i in range(0, len(assets), per_part)]


# -- the task side --------------------------------------------------------------------------

_context: dict[str, ExportService] = {}  # at most one: the settings of the last task
_context_lock = Lock()


def _worker_exports(settings: Settings) -> ExportService:
    """This process's export writer on ``settings``' database, opened on first use and
    kept for the next tasks (a Dask worker runs many); tasks of other settings replace it."""
    key = settings.model_dump_json()
    with _context_lock:
        found = _context.get(key)
        if found is None:
            for old in _context.values():
                old.engine.dispose()
            _context.clear()
            found = _context[key] = _open_exports(settings)
        return found


def _open_exports(settings: Settings) -> ExportService:
    from aihub.db import create_db_engine
    from aihub.services.container import build_timeseries
    from aihub.services.exports import ExportService
    from aihub.services.features import FeatureService
    from aihub.stores.metadata.exports import ExportStore
    from aihub.stores.metadata.features import FeatureSetStore
    from aihub.stores.online.memory import MemoryOnlineStore

    engine = create_db_engine(settings)
    store = build_timeseries(settings, engine)
    features = FeatureService(engine=engine, store=store, sets=FeatureSetStore(),
                              online=MemoryOnlineStore(), cache_ttl=0,
                              max_lookback_hours=settings.max_lookback_hours)
    return ExportService(engine=engine, features=features, records=ExportStore(),
                         export_dir=Path(tempfile.gettempdir()))


def run_part(task: PartTask, exports: ExportService | None = None) -> PartResult:
    """Compute and write one part (``exports``: the caller's own writer when the task runs
    in the process that started the export; else this process's, from the settings)."""
    if exports is None and task.settings is None:
        raise ValueError("a task run in another process needs the settings")
    writer = exports if exports is not None else _worker_exports(task.settings)  # type: ignore[arg-type]
    name = part_name(task.index)
    if task.dataset.startswith("s3://"):
        assert task.settings is not None  # an S3 export path comes from the settings
        return _write_to_s3(task, task.settings, writer, name)
    final = Path(task.dataset) / name
    tmp = final.with_name(f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        rows = writer.write_part(task.req, task.assets, task.start, task.end, tmp)
        size = tmp.stat().st_size
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return PartResult(task.index, name, rows, size, len(task.assets))


def _write_to_s3(task: PartTask, settings: Settings, writer: ExportService, name: str
                 ) -> PartResult:
    from aihub.stores.export_targets import S3ExportTarget

    staging = Path(tempfile.mkdtemp(prefix="aihub-part-"))
    try:
        path = staging / name
        rows = writer.write_part(task.req, task.assets, task.start, task.end, path)
        size = path.stat().st_size
        target = S3ExportTarget.from_settings(settings)
        S3ExportTarget(target.client, task.dataset)(path)  # one object, whole or absent
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PartResult(task.index, name, rows, size, len(task.assets))


# -- the coordinator side -------------------------------------------------------------------


def dataset_location(export_storage_path: str, export_dir: Path, name: str) -> str:
    """Where a dataset's parts go: under the S3 export prefix, or a directory in the
    export directory."""
    if export_storage_path.startswith("s3://"):
        return f"{export_storage_path.rstrip('/')}/{name}"
    return str(export_dir / name)


def span_hours(start: int, end: int, history_hours: int) -> int:
    return (end - start) // HOUR_US + history_hours


def remove_leftovers(dataset: str) -> None:
    """Temporary files of tasks whose worker died mid-write (their retry wrote the part)."""
    if dataset.startswith("s3://"):
        return
    for stray in Path(dataset).glob(".part-*.tmp"):
        stray.unlink(missing_ok=True)


def remove_dataset(settings: Settings | None, dataset: str) -> None:
    """A failed export's parts (best effort: a failure here is logged by the caller)."""
    if not dataset.startswith("s3://") or settings is None:
        shutil.rmtree(dataset, ignore_errors=True)
        return
    from aihub.stores.export_targets import S3ExportTarget, parse_s3_url

    client = S3ExportTarget.from_settings(settings).client
    bucket, prefix = parse_s3_url(dataset)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    for obj in listed.get("Contents", []):
        client.delete_object(Bucket=bucket, Key=obj["Key"])
