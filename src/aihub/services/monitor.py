"""What a prediction hands to forecast monitoring: its rows for the log, and, through the
production alias, the same inputs for the shadow versions. Called by ``PredictionService``
once predictions are computed; it only queues work (no I/O on the request's path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from aihub.errors import InvalidInput
from aihub.services.prediction_log import MAX_HORIZON, Forecasts, PredictionLog
from aihub.services.registry import RegistryService
from aihub.timeutil import HOUR_US, to_us

if TYPE_CHECKING:
    from aihub.services.predictions import Prediction
    from aihub.services.shadow import ShadowRunner


@dataclass(frozen=True, slots=True)
class LogKey:
    """What a predicted row forecasts: ``asset_id`` at ``target`` as seen from ``origin``
    (both hour boundaries)."""

    asset_id: str
    origin: datetime
    target: datetime


def check_keys(keys: Sequence[LogKey], field: str) -> None:
    """Origins and targets on hour boundaries, ``0 <= target - origin <= 168h``; else a 422
    naming the entry (``field[i]``)."""
    for i, k in enumerate(keys):
        o, t = to_us(k.origin), to_us(k.target)
        if o % HOUR_US or t % HOUR_US:
            raise InvalidInput(f"{field}[{i}]: origin and timestamp must be hour boundaries",
                               details={"index": i})
        if not 0 <= t - o <= MAX_HORIZON * HOUR_US:
            raise InvalidInput(f"{field}[{i}]: timestamp must be 0 to {MAX_HORIZON} hours "
                               "after origin", details={"index": i})


@dataclass(frozen=True, slots=True)
class LoggedPage:
    model_id: str
    rows: list[dict[str, Any]]  # LOG_SCHEMA columns (times in epoch microseconds)
    total: int


class Monitor:
    def __init__(self, *, registry: RegistryService, prediction_log: PredictionLog,
                 shadows: ShadowRunner | None = None) -> None:
        self.registry = registry
        self.prediction_log = prediction_log
        self.shadows = shadows

    def log_external(self, model_id: str, keys: Sequence[LogKey],
                     values: Sequence[float]) -> int:
        """Forecasts made elsewhere, logged under an existing version (no artifact
        needed): ``keys[i]`` forecast ``values[i]``. Returns how many were accepted."""
        check_keys(keys, "predictions")
        version = self.registry.get(model_id)
        rows = Forecasts([k.asset_id for k in keys], [to_us(k.origin) for k in keys],
                         [to_us(k.target) for k in keys], list(values))
        return self.prediction_log.log(version, rows, source="external")

    def logged(self, model_id: str, asset_id: str, start: datetime | None,
               end: datetime | None, *, limit: int, offset: int) -> LoggedPage:
        """One asset's logged forecasts of a version (aliases resolve), target in
        ``[start, end)`` (open ends: everything), by target then origin, a page at a time.
        Rows still queued for the log (at most a second old) are not there yet."""
        version = self.registry.get(model_id)
        lo = to_us(start) if start is not None else 0
        hi = to_us(end) if end is not None else 2**62
        if hi <= lo:
            raise InvalidInput("end: must be after start")
        frame, total = self.prediction_log.store.asset_page(
            version.id, asset_id, lo, hi, limit=limit, offset=offset)
        return LoggedPage(version.model_id, frame.to_dicts(), total)

    def predicted(self, model_id: str, p: Prediction, inputs: Sequence[dict[str, Any]], *,
                  keys: Sequence[LogKey] | None = None, forecasts: Forecasts | None = None,
                  log: bool = True) -> None:
        """Log ``p`` (predictions by assets unless ``log`` is false; by rows when ``keys``
        are given, or ``forecasts`` already keyed in epoch microseconds) and hand its
        inputs to the shadows when ``model_id`` is the production alias."""
        if not log:
            return
        if forecasts is not None:
            rows = forecasts
        elif p.asset_ids is not None and p.timestamp is not None:
            hour = to_us(p.timestamp)
            n = len(p.asset_ids)
            rows = Forecasts(p.asset_ids, [hour] * n, [hour] * n, p.predictions)
        elif keys is not None:
            rows = Forecasts([k.asset_id for k in keys], [to_us(k.origin) for k in keys],
                             [to_us(k.target) for k in keys], p.predictions)
        else:
            return
        features = [orjson.dumps(row).decode() for row in inputs]
        self.prediction_log.log(p.version, rows, source="predict", features=features)
        if self.shadows is not None and model_id.endswith(":production"):
            self.shadows.submit(p.version, inputs, rows, features)
