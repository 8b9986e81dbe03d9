"""The one feature pipeline, shared by online serving and offline export.

``compute_features`` turns hourly rollups into feature rows for target hours ``H``. It lays
every asset's hours on a dense UTC hourly grid, so "L(H - k)" is the row ``k`` above: lags
and windows are by elapsed time, and gaps, duplicate readings and DST shift nothing.
Windows are reduced row-wise in a fixed order, so the same inputs give bit-identical values
whether one hour is computed online or a year is exported. Calendar features alone use the
asset's local time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import holidays
import numpy as np
import polars as pl

from aihub.features.catalog import CATALOG, WEATHER_MAX_AGE_HOURS
from aihub.features.frames import WEATHER_FIELDS
from aihub.timeutil import HOUR_US

UTC_HOUR = pl.Datetime("us", "UTC")
ASSETS_SCHEMA = {
    "asset_key": pl.Int64,
    "timezone": pl.String,
    "country": pl.String,
    "location_id": pl.String,
}
SAME_HOUR_DAYS = range(1, 8)  # hourly_avg / hourly_std: L(H - 24h*k), k = 1..7
MAX_SHIFT_HOURS = 168  # the furthest any catalog feature reads before H
CALENDAR = ("hour_of_day", "day_of_week", "is_weekend", "month", "is_holiday")


@dataclass(frozen=True, slots=True)
class Grid:
    """Every hour of every target asset, from ``pad`` hours before its first target to its
    last, as flat arrays: ``level`` (hourly mean L), ``low``/``high`` (min/max), NaN where
    the hour has no readings; ``targets`` are the sorted, distinct grid rows asked for.

    Row ``i - k`` of an asset's block is exactly hour ``H - k``; a target row is at least
    ``pad`` rows into its block, so looking back at most ``pad`` never leaves the asset."""

    asset_key: np.ndarray
    hour: np.ndarray
    level: np.ndarray
    low: np.ndarray
    high: np.ndarray
    targets: np.ndarray


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    """Distinct values of an already sorted array (cheaper than ``np.unique``)."""
    if len(values) == 0:
        return values
    return values[np.r_[True, values[1:] != values[:-1]]]


def dense_grid(rollups: pl.DataFrame, targets: pl.DataFrame, pad: int) -> Grid:
    tk = targets.get_column("asset_key").to_numpy().astype(np.int64, copy=False)
    th = targets.get_column("hour").to_numpy().astype(np.int64, copy=False)
    if len(tk) == 0:
        empty = np.zeros(0, dtype=np.int64)
        nothing = np.zeros(0)
        return Grid(empty, empty, nothing, nothing, nothing, empty)
    order = np.lexsort((th, tk))
    tk, th = tk[order], th[order]
    first = np.flatnonzero(np.r_[True, tk[1:] != tk[:-1]])
    keys = tk[first]
    last = np.r_[first[1:], len(tk)] - 1
    starts = th[first] - pad * HOUR_US
    lengths = (th[last] - starts) // HOUR_US + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    total = int(lengths.sum())

    def positions(k: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid row of each (asset, hour), and which of them fall on the grid at all."""
        idx = np.clip(np.searchsorted(keys, k), 0, len(keys) - 1)
        step = h - starts[idx]
        inside = (keys[idx] == k) & (step >= 0) & (step % HOUR_US == 0)
        inside &= step // HOUR_US < lengths[idx]
        return offsets[idx[inside]] + step[inside] // HOUR_US, inside

    level, low, high = (np.full(total, np.nan) for _ in range(3))
    pos, inside = positions(
        rollups.get_column("asset_key").to_numpy(), rollups.get_column("hour").to_numpy()
    )
    level[pos] = rollups.get_column("mean").to_numpy()[inside]
    if "min" in rollups.columns:  # only the sets that judge an hour load min/max
        low[pos] = rollups.get_column("min").to_numpy()[inside]
        high[pos] = rollups.get_column("max").to_numpy()[inside]
    row = np.arange(total, dtype=np.int64) - np.repeat(offsets, lengths)
    return Grid(
        asset_key=np.repeat(keys, lengths),
        hour=np.repeat(starts, lengths) + row * HOUR_US,
        level=level,
        low=low,
        high=high,
        targets=_distinct_sorted(positions(tk, th)[0]),
    )


def _window_stats(level: np.ndarray, lags: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean (>= 1 value) and sample std (>= 2 values) of ``L(H - k)`` over ``lags`` for
    every grid row; NaN where undefined (and meaningless on padding rows).

    Each row sums its own window over ``lags`` in a fixed order with IEEE element-wise
    operations, so its value depends on nothing else: bit-identical online and in an export.
    """
    n = level.shape[0]
    present = (~np.isnan(level)).astype(np.float64)
    filled = np.where(present > 0, level, 0.0)
    total = np.zeros(n)
    count = np.zeros(n)
    for k in lags:  # adding 0.0 for a missing hour leaves a sum exactly as it was
        total[k:] += filled[: n - k]
        count[k:] += present[: n - k]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count >= 1, total / count, np.nan)
        squares = np.zeros(n)
        term = np.empty(n)
        for k in lags:
            d = term[k:]
            np.subtract(filled[: n - k], mean[k:], out=d)
            np.multiply(d, d, out=d)
            np.multiply(d, present[: n - k], out=d)  # a missing hour adds exactly 0
            squares[k:] += d
        std = np.where(count >= 2, np.sqrt(squares / (count - 1)), np.nan)
    return mean, std


def _load_features(grid: Grid, wanted: set[str]) -> dict[str, np.ndarray]:
    """Lags, windows and the judged-hour features at the target rows (NaN = null)."""
    at = grid.targets
    level = grid.level
    cols: dict[str, np.ndarray] = {
        "value": level[at],
        "hourly_min": grid.low[at],
        "hourly_max": grid.high[at],
        **{f"lag_{k}h": level[at - k] for k in (1, 24, 48, 168)},
    }
    if wanted & {"hourly_avg", "hourly_std"}:
        mean, std = _window_stats(level, [24 * k for k in SAME_HOUR_DAYS])
        cols["hourly_avg"], cols["hourly_std"] = mean[at], std[at]
    for hours in (24, 168):
        needs = {f"rolling_{hours}h_avg", f"rolling_{hours}h_std"}
        if hours == 24:
            needs.add("z_score_24h")
        if wanted & needs:
            mean, std = _window_stats(level, range(1, hours + 1))
            cols[f"rolling_{hours}h_avg"], cols[f"rolling_{hours}h_std"] = mean[at], std[at]
    with np.errstate(invalid="ignore", divide="ignore"):
        if "z_score_24h" in wanted:
            std = cols["rolling_24h_std"]
            z = (cols["value"] - cols["rolling_24h_avg"]) / std
            cols["z_score_24h"] = np.where(std != 0, z, np.nan)  # NaN std stays NaN
        cols["deviation_from_lag_168h"] = cols["value"] - cols["lag_168h"]
    return cols


class _HourIndex:
    """Target rows located on the hourly range they span: per-hour lookups (local
    calendar, holidays, weather) are computed once per distinct hour, then gathered."""

    def __init__(self, keys: np.ndarray, hours: np.ndarray) -> None:
        self.keys = keys
        self.first = int(hours.min()) if len(hours) else 0
        self.pos = (hours - self.first) // HOUR_US
        self.size = int(self.pos.max()) + 1 if len(hours) else 0
        self.hours = self.first + np.arange(self.size, dtype=np.int64) * HOUR_US

    def rows_of(self, asset_keys: Sequence[int]) -> np.ndarray:
        return np.isin(self.keys, np.asarray(asset_keys, dtype=np.int64))


def _group_keys(assets: pl.DataFrame, *columns: str) -> dict[tuple[object, ...], list[int]]:
    groups: dict[tuple[object, ...], list[int]] = {}
    for key, *values in assets.select("asset_key", *columns).iter_rows():
        groups.setdefault(tuple(values), []).append(key)
    return groups


def _calendar(index: _HourIndex, assets: pl.DataFrame, wanted: set[str]) -> dict[str, np.ndarray]:
    """Local-time calendar columns (-1 = null); ``is_holiday`` from the asset's country."""
    n = len(index.keys)
    fields = {name: np.full(n, -1, dtype=np.int32) for name in CALENDAR}
    for (tz, country), keys in _group_keys(assets, "timezone", "country").items():
        rows = index.rows_of(keys)
        if not rows.any():
            continue
        local = pl.Series(index.hours).cast(UTC_HOUR).dt.convert_time_zone(str(tz or "UTC"))
        per_hour = {
            "hour_of_day": local.dt.hour().to_numpy(),
            "day_of_week": local.dt.weekday().to_numpy() - 1,
            "month": local.dt.month().to_numpy(),
        }
        per_hour["is_weekend"] = (per_hour["day_of_week"] >= 5).astype(np.int32)
        if "is_holiday" in wanted and country:
            flags = _holiday_flags(local.dt.date(), str(country))
            if flags is not None:
                per_hour["is_holiday"] = flags
        at = index.pos[rows]
        for name, values in per_hour.items():
            fields[name][rows] = values[at]
    return fields


def _holiday_flags(dates: pl.Series, country: str) -> np.ndarray | None:
    first = int(dates.dt.year().min())  # type: ignore[arg-type]
    last = int(dates.dt.year().max())  # type: ignore[arg-type]
    holiday_dates = _holiday_dates(country, first, last)
    if holiday_dates is None:
        return None
    return np.isin(dates.to_numpy(), holiday_dates).astype(np.int32)


@lru_cache(maxsize=512)
def _holiday_dates(country: str, first_year: int, last_year: int) -> np.ndarray | None:
    """The sorted holidays of ``country`` in those years (None: a country the ``holidays``
    package does not know). Cached: building a country's calendar costs milliseconds, as
    much as the rest of an online request."""
    try:
        days: set[date] = set(
            holidays.country_holidays(country, years=range(first_year, last_year + 1))
        )
    except NotImplementedError:
        return None
    out = np.array(sorted(days), dtype="datetime64[D]")
    out.setflags(write=False)
    return out


def _weather(
    index: _HourIndex, assets: pl.DataFrame, weather: pl.DataFrame, wanted: list[str]
) -> dict[str, np.ndarray]:
    """The latest observation at or before H, at most ``WEATHER_MAX_AGE_HOURS`` old, from
    the asset's location; NaN without a location or a recent observation."""
    values = {f: np.full(len(index.keys), np.nan) for f in wanted}
    max_age = WEATHER_MAX_AGE_HOURS * HOUR_US
    for (location,), keys in _group_keys(assets, "location_id").items():
        if location is None:
            continue
        rows = index.rows_of(keys)
        obs = weather.filter(pl.col("location_id") == location).sort("ts")
        if not rows.any() or obs.is_empty():
            continue
        ts = obs.get_column("ts").to_numpy()
        latest = np.searchsorted(ts, index.hours, side="right") - 1
        fresh = latest >= 0
        fresh[fresh] &= index.hours[fresh] - ts[latest[fresh]] <= max_age
        at = index.pos[rows]
        for f in wanted:
            column = obs.get_column(f).fill_null(np.nan).to_numpy()
            per_hour = np.where(fresh, column[np.clip(latest, 0, None)], np.nan)
            values[f][rows] = per_hour[at]
    return values


def compute_features(
    *,
    rollups: pl.DataFrame,
    targets: pl.DataFrame,
    assets: pl.DataFrame,
    weather: pl.DataFrame,
    features: Sequence[str],
    lookback_hours: int,
    include_target: bool,
) -> pl.DataFrame:
    """Feature rows for ``targets`` (``asset_key``, ``hour`` in epoch us, on hour bounds).

    ``rollups`` (``asset_key, hour, mean`` and, for hourly_min/max, ``min, max``) must
    cover ``[H - min(lookback, 168h), H]`` of every target; ``assets`` follows
    ``ASSETS_SCHEMA`` and ``weather`` ``WEATHER_SCHEMA``.
    Returns ``asset_key, hour``, the features in the order asked, and ``target`` (L(H)) if
    asked, sorted by asset and hour, one row per distinct target. A feature whose inputs
    reach further back than ``lookback_hours``, or are missing, is null.
    """
    wanted = list(features)
    wanted_set = set(wanted)
    grid = dense_grid(rollups, targets, MAX_SHIFT_HOURS)
    keys, hours = grid.asset_key[grid.targets], grid.hour[grid.targets]
    values = _load_features(grid, wanted_set)
    index = _HourIndex(keys, hours)
    if wanted_set & set(CALENDAR):
        values.update(_calendar(index, assets, wanted_set))
    weather_cols = [f for f in WEATHER_FIELDS if f in wanted_set]
    if weather_cols:
        values.update(_weather(index, assets, weather, weather_cols))

    columns = [pl.Series("asset_key", keys), pl.Series("hour", hours)]
    for name in wanted:
        feature = CATALOG[name]
        if feature.horizon_hours > lookback_hours:
            dtype = pl.Int32 if feature.dtype == "int" else pl.Float64
            columns.append(pl.Series(name, [None] * len(keys), dtype=dtype))
        elif feature.dtype == "int":
            columns.append(pl.Series(name, values[name]).replace(-1, None))
        else:
            columns.append(pl.Series(name, values[name], nan_to_null=True))
    if include_target:
        columns.append(pl.Series("target", values["value"], nan_to_null=True))
    return pl.DataFrame(columns)
