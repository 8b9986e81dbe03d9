"""Feature drift: the features a version was served, against the training export it names.

Every export records, per feature, reference bins of the rows it wrote: 9 inner edges at
the 10%..90% quantiles (so 10 bins), the share of non-null values in each bin, and the
null rate (``reference_bins``). Above ``QUANTILE_SAMPLE`` non-null values the edges and
shares come from a fixed-seed uniform sample of that many of them (``bins_of``): each edge
lies within 0.01 in rank of the exact quantile and each share within 0.01 of the share of
all values in its bin; the null rate is always exact. ``GET /ai/models/{id}/drift`` bins
the features logged with that version's predictions in a window the same way and reports
the population stability index ``PSI = sum((s - t) * ln(s / t))`` over the bins (an empty
bin counts as 1e-4), the null rates, and ``drifted`` at PSI >= 0.2.

Served values are those stored with each logged prediction (``ServedFeatureStore``), not
recomputed: a correction arriving later must not rewrite what the model actually saw.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from aihub.errors import Conflict, NotFound
from aihub.services.registry import RegistryService
from aihub.stores.metadata.exports import ExportStore
from aihub.stores.metadata.served_features import ServedFeatureStore
from aihub.timeutil import to_us

log = logging.getLogger("aihub.drift")

BINS = 10
SERVED_ROWS = 200_000  # the latest served rows of a window that drift reads
EMPTY_BIN = 1e-4
DRIFTED_AT = 0.2


# Non-null values of a feature the edges and shares are computed from at most: a uniform
# sample of this size puts an edge within about 0.0016 (one standard deviation) in rank of
# the exact quantile, and costs a tenth of exact quantiles over a 876,000-row export.
QUANTILE_SAMPLE = 100_000
SAMPLE_SEED = 0  # the same values always give the same bins


def bins_of(values: np.ndarray, n_total: int) -> dict[str, Any]:
    """Reference bins of one feature: ``values`` are its non-null values out of
    ``n_total`` rows. Edges and shares are exact up to ``QUANTILE_SAMPLE`` values; above,
    they are those of a uniform sample (without replacement, fixed seed) of that many:
    each edge is within 0.01 in rank of the exact quantile (the share of all values below
    it is within 0.01 of its quantile's), each share within 0.01 of the share of all
    values in its bin (both a sampling error of at most ~0.0016 at one standard
    deviation). ``n`` and the null rate count every value."""
    null_rate = 1.0 - len(values) / n_total if n_total else 0.0
    if len(values) == 0:
        return {"edges": [], "shares": [], "null_rate": null_rate, "n": 0}
    sample = uniform_sample(values, QUANTILE_SAMPLE)
    edges = np.quantile(sample, np.linspace(0, 1, BINS + 1)[1:-1])
    counts = np.bincount(np.searchsorted(edges, sample, side="right"), minlength=BINS)
    return {"edges": [float(e) for e in edges],
            "shares": [float(c) / len(sample) for c in counts],
            "null_rate": null_rate, "n": len(values)}


def uniform_sample(values: np.ndarray, size: int) -> np.ndarray:
    """``size`` of ``values`` drawn uniformly without replacement with a fixed seed (all of
    them, as they are, when there are no more)."""
    if len(values) <= size:
        return values
    rng = np.random.default_rng(SAMPLE_SEED)
    return values[np.sort(rng.choice(len(values), size, replace=False))]


SAMPLE_ROWS = 1_000_000  # rows read for the quantile edges, whatever the export's size


class ReferenceAccumulator:
    """Reference bins built from tables added one by one: every added table counts for
    the null rates, those added with ``sample`` also for the quantile edges and shares."""

    def __init__(self, features: Sequence[str]) -> None:
        self.features = list(features)
        self.total = 0
        self.valid = dict.fromkeys(self.features, 0)
        self.samples: dict[str, list[np.ndarray]] = {f: [] for f in self.features}
        self._result: dict[str, Any] | None = None

    def add(self, table: pa.Table, *, sample: bool = True) -> None:
        """Count (and, with ``sample``, keep) the table's values. All or nothing: a table
        that fails to convert leaves the counts as they were, so ``total`` tells whether
        every row went in."""
        # Through Polars (zero-copy from Arrow): Arrow's own cast and to_numpy import
        # pandas and pyarrow.compute, 0.3 s on the first export of a process.
        frame = pl.from_arrow(table.select(self.features))
        assert isinstance(frame, pl.DataFrame)
        valid: dict[str, int] = {}
        kept: dict[str, np.ndarray] = {}
        for name in self.features:
            column = frame.get_column(name).cast(pl.Float64).to_numpy()
            finite = np.isfinite(column)
            valid[name] = int(finite.sum())
            if sample:
                kept[name] = column[finite]  # a copy: no Arrow buffer is held on to
        self.total += table.num_rows
        for name in self.features:
            self.valid[name] += valid[name]
            if sample:
                self.samples[name].append(kept[name])
        self._result = None

    def result(self) -> dict[str, Any]:
        """The bins of everything added so far (computed once until the next ``add``: an
        export computes them beside its last write, then asks again)."""
        if self._result is not None:
            return self._result
        out: dict[str, Any] = {}
        for name in self.features:
            values = np.concatenate(self.samples[name]) if self.samples[name] else np.empty(0)
            ref = bins_of(values, len(values))
            ref["null_rate"] = 1.0 - self.valid[name] / self.total if self.total else 0.0
            ref["n"] = self.valid[name]
            out[name] = ref
        self._result = {"bins": BINS, "features": out}
        return self._result


class ReferenceThread:
    """Feeds an accumulator on a thread of its own, in order, beside the caller's work (an
    export's writes); after the ``last`` table it computes the bins there too, so a later
    ``result()`` finds them done. Failures are logged, never raised: an export does not
    fail on its reference bins (a table that failed to go in leaves ``total`` short, and
    the export reads its file back instead)."""

    def __init__(self, accumulator: ReferenceAccumulator) -> None:
        self.accumulator = accumulator
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference-bins")
        self._jobs: list[Future[Any]] = []

    def add(self, table: pa.Table, *, last: bool = False) -> None:
        self._jobs.append(self._pool.submit(self.accumulator.add, table))
        if last:
            self._jobs.append(self._pool.submit(self.accumulator.result))

    def close(self) -> None:
        """Wait for the thread's work."""
        self._pool.shutdown(wait=True)
        for job in self._jobs:
            if job.exception() is not None:
                log.warning("reference bins: %r", job.exception())


def reference_bins(path: Path | str, features: Sequence[str]) -> dict[str, Any]:
    """Reference bins of every feature column of the Parquet file (or dataset directory)
    at ``path``, in bounded memory: null rates are exact (counted over every row), the
    quantile edges and shares come from evenly spaced row groups holding about
    ``SAMPLE_ROWS`` rows (all of them for an export that small). The writers put a few
    hundred thousand rows of whole assets in each row group, so the sample spans assets
    and the whole time range. (An export of at most ``SAMPLE_ROWS`` rows gets the same bins
    from its tables as it writes them: ``ReferenceAccumulator``.)

    The files are read one at a time, without pre-buffering: an open reader keeps the
    bytes it pre-buffered for its last row group until it is closed, so a reader held open
    per part of a dataset kept a row group of every part (memory growing with the assets)."""
    files = sorted(Path(path).glob("*.parquet")) if Path(path).is_dir() else [Path(path)]
    footers = [pq.read_metadata(f) for f in files]
    total = sum(m.num_rows for m in footers)
    step = max(1, -(-total // SAMPLE_ROWS))
    acc = ReferenceAccumulator(features)
    k = 0  # row groups read so far, over all files
    for file, footer in zip(files, footers, strict=True):
        with pq.ParquetFile(file, metadata=footer, pre_buffer=False) as pf:
            for i in range(footer.num_row_groups):
                acc.add(pf.read_row_group(i, columns=list(features)), sample=k % step == 0)
                k += 1
    return acc.result()


def psi(reference: dict[str, Any], values: np.ndarray) -> float | None:
    """PSI of ``values`` (non-null served values) against one feature's reference bins."""
    if len(values) == 0 or not reference["shares"]:
        return None
    edges = np.asarray(reference["edges"])
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=BINS)
    served = np.maximum(counts / len(values), EMPTY_BIN)
    train = np.maximum(np.asarray(reference["shares"]), EMPTY_BIN)
    return float(np.sum((served - train) * np.log(served / train)))


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    psi: float | None
    null_rate_train: float
    null_rate_served: float | None
    drifted: bool


@dataclass(frozen=True, slots=True)
class Drift:
    model_id: str
    export_id: str
    start: datetime | None
    end: datetime | None
    served_rows: int
    features: dict[str, FeatureDrift]


class DriftService:
    def __init__(self, *, engine: sa.Engine, registry: RegistryService,
                 exports: ExportStore, store: ServedFeatureStore) -> None:
        self.engine = engine
        self.registry = registry
        self.exports = exports
        self.store = store

    def drift(self, model_id: str, *, start: datetime | None = None,
              end: datetime | None = None) -> Drift:
        version = self.registry.get(model_id)
        export_id = version.metadata.get("export_id")
        if not isinstance(export_id, str) or not export_id:
            raise Conflict(f"{version.model_id} names no training export (metadata.export_id)")
        with self.engine.connect() as conn:
            record = self.exports.get(conn, export_id)
            reference = self.exports.reference(conn, export_id) if record else None
        if record is None or record.tenant_id != version.tenant_id:
            raise NotFound(f"unknown export '{export_id}' (metadata.export_id of "
                           f"{version.model_id})")
        if reference is None:
            raise Conflict(f"export '{export_id}' has no reference bins (it failed, or was "
                           "made before exports recorded them); export again")
        names = list(reference["features"])
        if version.feature_names:
            names = [n for n in names if n in set(version.feature_names)]
        lo = to_us(start) if start is not None else -(2**62)
        hi = to_us(end) if end is not None else 2**62
        rows = [orjson.loads(r) for r in self.store.read(version.id, lo, hi, SERVED_ROWS)]
        features = {}
        for name in names:
            ref = reference["features"][name]
            raw = [r.get(name) for r in rows]
            present = np.array([v for v in raw if isinstance(v, int | float)], dtype=np.float64)
            present = present[np.isfinite(present)]
            p = psi(ref, present)
            features[name] = FeatureDrift(
                psi=p, null_rate_train=float(ref["null_rate"]),
                null_rate_served=1.0 - len(present) / len(rows) if rows else None,
                drifted=p is not None and p >= DRIFTED_AT)
        return Drift(version.model_id, export_id, start, end, len(rows), features)
