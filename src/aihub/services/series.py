"""An asset's hourly rollups over a bounded range, as compact columns (for charts and
notebooks): one indexed read of the rollup table, no feature computation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aihub.errors import InvalidInput, NotFound
from aihub.stores.timeseries.base import TimeSeriesStore
from aihub.timeutil import floor_hour, to_us

MAX_RANGE = timedelta(days=731)  # two years (one leap day included)
HOUR_US = 3_600_000_000


@dataclass(frozen=True, slots=True)
class HourlySeries:
    tenant_id: str
    asset_id: str
    start: datetime
    end: datetime
    hour: list[int]  # epoch seconds of each hour's start, ascending
    mean: list[float]
    min: list[float]
    max: list[float]
    n: list[int]


class SeriesService:
    def __init__(self, store: TimeSeriesStore) -> None:
        self.store = store

    def hourly(
        self, tenant_id: str, asset_id: str, start: datetime, end: datetime
    ) -> HourlySeries:
        """Rollups of the hours ``start <= hour < end`` (``start`` floored to its hour)."""
        if end <= start:
            raise InvalidInput("end: must be after start")
        if end - start > MAX_RANGE:
            raise InvalidInput(f"end: the range may span at most {MAX_RANGE.days} days")
        found = self.store.get_assets(tenant_id, [asset_id])
        if not found:
            raise NotFound(f"unknown asset '{asset_id}' for tenant '{tenant_id}'")
        start = floor_hour(start)
        df = self.store.load_rollups(
            [found[0].key], to_us(start), to_us(end), columns=("n", "mean", "min", "max")
        )
        return HourlySeries(
            tenant_id=tenant_id,
            asset_id=asset_id,
            start=start,
            end=end,
            hour=[h // 1_000_000 for h in df["hour"].to_list()],
            mean=df["mean"].to_list(),
            min=df["min"].to_list(),
            max=df["max"].to_list(),
            n=df["n"].to_list(),
        )
