"""The prediction log: every forecast aihub makes (or is given) kept with its actual.

Requests never write the log themselves. ``PredictionLog.log`` appends to an in-memory
queue and returns; a background thread (started and stopped by the app's lifespan) writes
what is queued every ``interval`` seconds (at most 1 s) and once more at shutdown, in one
transaction per tenant, as an upsert on ``(version, asset, origin, target)``: logging the
same forecast again replaces it. A crash (not a shutdown) loses at most the last interval
of queued rows, and a database outage keeps them queued (up to ``max_pending`` rows, then
the oldest are dropped and counted) until it answers again.

Each row is written with its actual ``L(T)`` and its baselines (persistence ``L(O-1h)``,
seasonal naive ``L(T-168h)``) as the rollups hold them at that moment; every later ingest
of those hours refreshes them inside its own transaction (``refresh``), so scores read one
table. On PostgreSQL the writer share-locks the assets' rows first: an ingest of the same
assets either committed before (and the writer reads its rollups) or waits and then
refreshes the rows the writer just wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import repeat

import numpy as np
import polars as pl
import sqlalchemy as sa

from aihub.db import write_transaction
from aihub.services.background import PeriodicTask
from aihub.stores.metadata.models import ModelVersion
from aihub.stores.metadata.prediction_scores import DAY_US, ScoreStore
from aihub.stores.metadata.predictions import LOG_COLUMNS, LOG_SCHEMA, PredictionLogStore
from aihub.stores.metadata.served_features import ServedFeatureStore
from aihub.stores.timeseries.base import IngestResult, TimeSeriesStore
from aihub.timeutil import HOUR_US, to_us, utcnow

log = logging.getLogger("aihub.prediction_log")

MAX_HORIZON = 168
_WEEK_US = MAX_HORIZON * HOUR_US
SOURCES = ("predict", "shadow", "external")


@dataclass(frozen=True, slots=True)
class Forecasts:
    """Rows to log, as columns: instants in epoch us on hour boundaries."""

    asset_ids: Sequence[str]
    origins: Sequence[int]
    targets: Sequence[int]
    predictions: Sequence[float | None]

    def __len__(self) -> int:
        return len(self.predictions)


@dataclass(frozen=True, slots=True)
class _Batch:
    tenant_id: str
    version_id: int
    source: str
    logged_at: int
    forecasts: Forecasts
    features: Sequence[str] | None


def _frame(batches: Sequence[_Batch]) -> pl.DataFrame:
    """``LOG_SCHEMA`` without the actual and baselines, plus ``features``, of all
    ``batches`` in one frame (built by the writer, never on a request's path: the columns
    are gathered as lists first, so a thousand one-row requests cost one frame, not a
    thousand); rows without a finite prediction go."""
    asset_ids: list[str] = []
    origins: list[int] = []
    targets: list[int] = []
    predictions: list[float | None] = []
    features: list[str | None] = []
    for b in batches:
        f = b.forecasts
        asset_ids.extend(f.asset_ids)
        origins.extend(f.origins)
        targets.extend(f.targets)
        predictions.extend(f.predictions)
        features.extend(b.features if b.features is not None else repeat(None, len(f)))
    which = np.repeat(np.arange(len(batches)), [len(b.forecasts) for b in batches])
    per_batch = pl.DataFrame(
        {"version_id": [b.version_id for b in batches],
         "logged_at": [b.logged_at for b in batches], "source": [b.source for b in batches]},
        schema={"version_id": pl.Int64, "logged_at": pl.Int64, "source": pl.String})
    frame = pl.DataFrame(
        {"asset_id": asset_ids, "origin": origins, "target": targets,
         "prediction": predictions, "features": features},
        schema={"asset_id": pl.String, "origin": pl.Int64, "target": pl.Int64,
                "prediction": pl.Float64, "features": pl.String},
    ).hstack(per_batch[which])
    return frame.filter(pl.col("prediction").is_finite()).select(
        "version_id", "asset_id", "origin", "target",
        ((pl.col("target") - pl.col("origin")) // HOUR_US).alias("horizon"),
        "prediction", "logged_at", "source", "features",
    )


class PredictionLog(PeriodicTask):
    """Queues rows to log and writes them in the background (see the module docs)."""

    name = "aihub-prediction-log"

    def __init__(self, *, engine: sa.Engine, store: PredictionLogStore, scores: ScoreStore,
                 features: ServedFeatureStore, timeseries: TimeSeriesStore,
                 interval: float = 1.0,
                 retention_days: int = 400, max_pending: int = 2_000_000) -> None:
        super().__init__(min(interval, 1.0))
        self.engine = engine
        self.store = store
        self.scores = scores
        self.features = features
        self.timeseries = timeseries
        self.retention_days = retention_days
        self.max_pending = max_pending
        self.dropped = 0
        self.written = 0
        self._queue: deque[_Batch] = deque()
        self._pending = 0
        self._queue_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # -- the request side: never touches the database ------------------------------------
    def log(self, version: ModelVersion, forecasts: Forecasts, *, source: str,
            features: Sequence[str] | None = None) -> int:
        """Queue ``forecasts`` under ``version`` (a row without a finite prediction is
        skipped when written). ``features``: each row's served features as JSON text
        (drift). Returns how many rows were queued."""
        assert source in SOURCES
        if not len(forecasts):
            return 0
        self._push(_Batch(version.tenant_id, version.id, source, to_us(utcnow()), forecasts,
                          features))
        return len(forecasts)

    def _push(self, batch: _Batch) -> None:
        with self._queue_lock:
            self._queue.append(batch)
            self._pending += len(batch.forecasts)
            while self._pending > self.max_pending and len(self._queue) > 1:
                old = self._queue.popleft()
                self._pending -= len(old.forecasts)
                self.dropped += len(old.forecasts)
                log.warning("prediction log queue full: dropped %d queued rows",
                            len(old.forecasts))

    @property
    def pending(self) -> int:
        return self._pending

    # -- the background side --------------------------------------------------------------
    def run_once(self) -> None:
        self.flush()

    def stop(self) -> None:
        super().stop()
        try:
            self.flush()
        except Exception:  # the database is gone at shutdown: say what is lost
            log.exception("prediction log: %d queued rows could not be written at shutdown",
                          self._pending)

    def flush(self) -> int:
        """Write everything queued so far (the thread's round; tests and shutdown call it
        directly). On failure the rows go back to the queue and the error is raised."""
        with self._write_lock:
            with self._queue_lock:
                batches = list(self._queue)
                self._queue.clear()
                self._pending = 0
            if not batches:
                return 0
            by_tenant: dict[str, list[_Batch]] = {}
            for b in batches:
                by_tenant.setdefault(b.tenant_id, []).append(b)
            written = 0
            done: set[str] = set()
            try:
                for tenant_id, group in by_tenant.items():
                    written += self._write(tenant_id, _frame(group))
                    done.add(tenant_id)
            except Exception:
                self.store.forget_partitions()
                with self._queue_lock:
                    retry = [b for b in batches if b.tenant_id not in done]
                    self._queue.extendleft(reversed(retry))
                    self._pending += sum(len(b.forecasts) for b in retry)
                raise
            self.written += written
            return written

    def _write(self, tenant_id: str, rows: pl.DataFrame) -> int:
        """Upsert ``rows`` (``_Batch.frame``) of one tenant with their actuals."""
        rows = rows.unique(subset=["version_id", "asset_id", "origin", "target"],
                           keep="last", maintain_order=True)
        served = rows.filter(pl.col("features").is_not_null()).select(
            "version_id", "asset_id", "origin", "target", "features")
        rows = rows.drop("features")
        if self.store.postgres:
            self.store.ensure_partitions(rows.get_column("target"))
        asset_ids = rows.get_column("asset_id").unique().sort().to_list()
        with ThreadPoolExecutor(1, thread_name_prefix="aihub-log-features") as pool:
            # the served features compress on a thread of their own (it releases the GIL)
            # while the log rows are written
            blocks = pool.submit(self.features.blocks, served)
            with write_transaction(self.engine) as conn:
                keys = self.store.asset_keys(conn, tenant_id, asset_ids, lock=True)
                full = self._with_baselines(rows, keys)
                self.store.upsert(conn, full)
                self.features.insert(conn, blocks.result())
                self.scores.mark(conn, rows.select(
                    "version_id", pl.col("target") // DAY_US).unique().iter_rows())
        return rows.height

    def _with_baselines(self, rows: pl.DataFrame, keys: dict[str, int]) -> pl.DataFrame:
        """``rows`` with ``actual``, ``persistence`` and ``seasonal`` from the rollups."""
        keyed = rows.with_columns(
            pl.col("asset_id").replace_strict(keys, default=None, return_dtype=pl.Int64)
            .alias("_k"))
        if keys:
            lo = min(int(rows.get_column("origin").min()) - HOUR_US,  # type: ignore[arg-type]
                     int(rows.get_column("target").min()) - _WEEK_US)  # type: ignore[arg-type]
            hi = int(rows.get_column("target").max()) + HOUR_US  # type: ignore[arg-type]
            means = self.timeseries.load_rollups(sorted(set(keys.values())), lo, hi,
                                                 columns=["mean"])
            means = means.select(pl.col("asset_key").cast(pl.Int64).alias("_k"),
                                 pl.col("hour").cast(pl.Int64).alias("_h"),
                                 pl.col("mean").cast(pl.Float64))
        else:
            means = pl.DataFrame(schema={"_k": pl.Int64, "_h": pl.Int64, "mean": pl.Float64})
        for column, hour in (("actual", pl.col("target")),
                             ("persistence", pl.col("origin") - HOUR_US),
                             ("seasonal", pl.col("target") - _WEEK_US)):
            keyed = keyed.with_columns(hour.alias("_h")).join(
                means.rename({"mean": column}), on=["_k", "_h"], how="left",
                maintain_order="left")
        return keyed.select(LOG_COLUMNS).cast(LOG_SCHEMA)  # type: ignore[arg-type]

    # -- called by ingest, in its transaction ---------------------------------------------
    def refresh(self, conn: sa.Connection, tenant_id: str, result: IngestResult) -> None:
        """Ingest hook: the hours a committed batch touched get their logged rows' actual
        and baselines re-read (a correction re-scores)."""
        if not result.accepted or result.first_ts is None or result.last_ts is None:
            return
        lo = result.first_ts // HOUR_US * HOUR_US
        hi = result.last_ts // HOUR_US * HOUR_US + HOUR_US
        if self.store.refresh(conn, tenant_id, result.asset_ids, lo, hi):
            # the targets whose actual or baselines may have changed: [lo, hi + 168h)
            self.scores.mark_tenant_days(conn, tenant_id, lo // DAY_US,
                                         (hi + _WEEK_US) // DAY_US)

    def forget(self, version: ModelVersion) -> None:
        """Registry hook: a deleted version's log, served features and shadow flag go."""
        with write_transaction(self.engine) as conn:
            self.store.delete_version(conn, version.id)
            self.scores.delete_version(conn, version.id)
            self.features.delete_version(conn, version.id)

    # -- retention ------------------------------------------------------------------------
    def purge(self, now: datetime | None = None) -> int:
        """Delete rows whose target is older than the retention (``AIHUB_PREDICTION_LOG_DAYS``)."""
        cutoff = to_us((now or utcnow()) - timedelta(days=self.retention_days))
        cutoff = cutoff // HOUR_US * HOUR_US
        with write_transaction(self.engine) as conn:
            deleted = self.store.purge(conn, cutoff)
            self.scores.purge(conn, cutoff)
            self.features.purge(conn, cutoff)
            return deleted


class LogPurger(PeriodicTask):
    """Applies the retention in the background (default every 6 hours)."""

    name = "aihub-prediction-log-purge"

    def __init__(self, prediction_log: PredictionLog, interval: float) -> None:
        super().__init__(interval, first_delay=min(interval, 60.0))
        self.prediction_log = prediction_log

    def run_once(self) -> None:
        started = time.monotonic()
        n = self.prediction_log.purge()
        if n:
            log.info("purged %d logged predictions in %.1f s", n, time.monotonic() - started)


class ScoreCompactor(PeriodicTask):
    """Rebuilds the score sums of the days changed since their last rebuild (default
    every 10 s), one day per transaction."""

    name = "aihub-score-compactor"

    def __init__(self, engine: sa.Engine, scores: ScoreStore, interval: float) -> None:
        super().__init__(interval)
        self.engine = engine
        self.scores = scores

    def run_once(self) -> None:
        while batch := self.scores.dirty():
            for version_id, day in batch:
                with write_transaction(self.engine) as conn:
                    self.scores.recompute(conn, version_id, day)
            if len(batch) < 1000:
                return
