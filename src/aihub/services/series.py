"""An asset's hourly rollups over a bounded range, as compact columns (for charts and
notebooks): one indexed read of the rollup table, no feature computation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aihub.errors import InvalidInput, NotFound
from aihub.stores.timeseries.base import TimeSeriesStore
from aihub.timeutil import floor_hour, from_us, to_us

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
    last_hour: int | None  # epoch seconds of the asset's last hour with readings (any range)


class SeriesService:
    def __init__(self, store: TimeSeriesStore) -> None:
        self.store = store

    def hourly(
        self,
        tenant_id: str,
        asset_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        days: int = 365,
    ) -> HourlySeries:
        """Rollups of the hours ``start <= hour < end`` (``start`` floored to its hour).
        Without ``end``: up to and including the asset's last hour with readings (the
        current hour if it has none); without ``start``: ``days`` before ``end``."""
        if not 1 <= days <= MAX_RANGE.days:
            raise InvalidInput(f"days: must be between 1 and {MAX_RANGE.days}")
        found = self.store.get_assets(tenant_id, [asset_id])
        if not found:
            raise NotFound(f"unknown asset '{asset_id}' for tenant '{tenant_id}'")
        key = found[0].key
        last = self.store.last_rollup_hour(key)
        if end is None:
            end = (from_us(last) if last is not None else floor_hour(datetime.now(UTC))) \
                + timedelta(hours=1)
        if start is None:
            start = end - timedelta(days=days)
        if end <= start:
            raise InvalidInput("end: must be after start")
        if end - start > MAX_RANGE:
            raise InvalidInput(f"end: the range may span at most {MAX_RANGE.days} days")
        start = floor_hour(start)
        df = self.store.load_rollups([key], to_us(start), to_us(end),
                                     columns=("n", "mean", "min", "max"))
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
            last_hour=None if last is None else last // 1_000_000,
        )
