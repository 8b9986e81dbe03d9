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
from datetime import date

import holidays
import numpy as np
import polars as pl

from aihub.features.catalog import CATALOG, WEATHER_MAX_AGE_HOURS
from aihub.stores.timeseries.base import WEATHER_FIELDS
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


def dense_grid(rollups: pl.DataFrame, targets: pl.DataFrame, pad: int) -> pl.DataFrame:
    """Every hour of every target asset, from ``pad`` hours before its first target to its
    last, with ``L`` (hourly mean), ``hourly_min``/``hourly_max`` where the hour has
    readings, and ``is_target``. Rows before an asset's first target are padding, so a
    shift of at most ``pad`` from a target row never leaves the asset's block."""
    spans = (
        targets.group_by("asset_key")
        .agg(start=pl.col("hour").min() - pad * HOUR_US, end=pl.col("hour").max())
        .sort("asset_key")
    )
    keys = spans.get_column("asset_key").to_numpy()
    starts = spans.get_column("start").to_numpy()
    lengths = (spans.get_column("end").to_numpy() - starts) // HOUR_US + 1
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    total = int(lengths.sum())

    def positions(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Grid row of each ``frame`` row, and which rows fall on the grid at all."""
        k = frame.get_column("asset_key").to_numpy()
        h = frame.get_column("hour").to_numpy()
        idx = np.clip(np.searchsorted(keys, k), 0, max(len(keys) - 1, 0))
        if len(keys) == 0:
            return np.zeros(0, np.int64), np.zeros(len(k), bool)
        step = h - starts[idx]
        inside = (keys[idx] == k) & (step >= 0) & (step % HOUR_US == 0)
        inside &= step // HOUR_US < lengths[idx]
        return offsets[idx[inside]] + step[inside] // HOUR_US, inside

    level = np.full(total, np.nan)
    low = np.full(total, np.nan)
    high = np.full(total, np.nan)
    pos, inside = positions(rollups)
    level[pos] = rollups.get_column("mean").to_numpy()[inside]
    if "min" in rollups.columns:  # only the sets that judge an hour load min/max
        low[pos] = rollups.get_column("min").to_numpy()[inside]
        high[pos] = rollups.get_column("max").to_numpy()[inside]
    is_target = np.zeros(total, dtype=bool)
    tpos, _ = positions(targets)
    is_target[tpos] = True
    row = np.arange(total, dtype=np.int64) - np.repeat(offsets, lengths)
    # Readings are validated finite, so NaN only ever marks "no readings in this hour".
    return pl.DataFrame(
        {
            "asset_key": np.repeat(keys, lengths),
            "hour": np.repeat(starts, lengths) + row * HOUR_US,
            "L": pl.Series(level, nan_to_null=True),
            "hourly_min": pl.Series(low, nan_to_null=True),
            "hourly_max": pl.Series(high, nan_to_null=True),
            "is_target": is_target,
        }
    )


def _window_stats(level: np.ndarray, lags: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean (>= 1 value) and sample std (>= 2 values) of ``level[i - k]`` over ``lags``
    for every grid row ``i``, NaN where undefined.

    The sums run over ``lags`` in a fixed order with IEEE element-wise operations, so a
    row's result depends only on its own window: bit-identical online and in an export.
    """
    n = level.shape[0]
    total = np.zeros(n)
    count = np.zeros(n)
    for k in lags:
        x = level[: n - k]
        present = ~np.isnan(x)
        total[k:] += np.where(present, x, 0.0)
        count[k:] += present
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count >= 1, total / count, np.nan)
        squares = np.zeros(n)
        for k in lags:
            d = level[: n - k] - mean[k:]
            squares[k:] += np.where(np.isnan(d), 0.0, d * d)
        std = np.where(count >= 2, np.sqrt(squares / (count - 1)), np.nan)
    return mean, std


def _windows(grid: pl.DataFrame, wanted: set[str]) -> pl.DataFrame:
    level = grid.get_column("L").fill_null(np.nan).to_numpy()
    columns: dict[str, np.ndarray] = {}
    if wanted & {"hourly_avg", "hourly_std"}:
        columns["hourly_avg"], columns["hourly_std"] = _window_stats(
            level, [24 * k for k in SAME_HOUR_DAYS]
        )
    for hours in (24, 168):
        needs = {f"rolling_{hours}h_avg", f"rolling_{hours}h_std"}
        if hours == 24:
            needs.add("z_score_24h")
        if wanted & needs:
            columns[f"rolling_{hours}h_avg"], columns[f"rolling_{hours}h_std"] = _window_stats(
                level, range(1, hours + 1)
            )
    if not columns:
        return grid
    return grid.with_columns(
        [pl.Series(name, values, nan_to_null=True) for name, values in columns.items()]
    )


class _HourIndex:
    """Rows of a frame located on the hourly range they span: per-hour lookups (local
    calendar, holidays, weather) are computed once per distinct hour, then gathered."""

    def __init__(self, out: pl.DataFrame) -> None:
        hours = out.get_column("hour").to_numpy()
        self.first = int(hours.min()) if len(hours) else 0
        self.pos = (hours - self.first) // HOUR_US
        self.size = int(self.pos.max()) + 1 if len(hours) else 0
        self.hours = self.first + np.arange(self.size, dtype=np.int64) * HOUR_US
        self.keys = out.get_column("asset_key").to_numpy()

    def rows_of(self, asset_keys: Sequence[int]) -> np.ndarray:
        return np.isin(self.keys, np.asarray(asset_keys, dtype=np.int64))


def _groups(assets: pl.DataFrame, column: str) -> dict[object, list[int]]:
    groups: dict[object, list[int]] = {}
    for key, value in zip(assets["asset_key"].to_list(), assets[column].to_list(), strict=True):
        groups.setdefault(value, []).append(key)
    return groups


def _calendar(out: pl.DataFrame, assets: pl.DataFrame, wanted: set[str]) -> pl.DataFrame:
    """Local-time calendar columns; ``is_holiday`` from the asset's country (null without)."""
    index = _HourIndex(out)
    n = out.height
    fields = {name: np.zeros(n, dtype=np.int32) for name in CALENDAR if name != "is_holiday"}
    holiday = np.full(n, -1, dtype=np.int32)
    by_zone = assets.with_columns(pl.col("timezone").fill_null("UTC"))
    for (tz, country), part in by_zone.group_by(["timezone", "country"]):
        rows = index.rows_of(part["asset_key"].to_list())
        if not rows.any():
            continue
        local = pl.Series(index.hours).cast(UTC_HOUR).dt.convert_time_zone(str(tz))
        per_hour = {
            "hour_of_day": local.dt.hour().to_numpy(),
            "day_of_week": local.dt.weekday().to_numpy() - 1,
            "month": local.dt.month().to_numpy(),
        }
        per_hour["is_weekend"] = (per_hour["day_of_week"] >= 5).astype(np.int32)
        at = index.pos[rows]
        for name, values in per_hour.items():
            fields[name][rows] = values[at]
        if "is_holiday" in wanted and country:
            flags = _holiday_flags(local.dt.date(), str(country))
            if flags is not None:
                holiday[rows] = flags[at]
    columns = [pl.Series(name, values) for name, values in fields.items()]
    if "is_holiday" in wanted:
        columns.append(pl.Series("is_holiday", holiday).replace(-1, None))
    return out.with_columns(columns)


def _holiday_flags(dates: pl.Series, country: str) -> np.ndarray | None:
    years = range(int(dates.dt.year().min()), int(dates.dt.year().max()) + 1)  # type: ignore[arg-type]
    try:
        days: set[date] = set(holidays.country_holidays(country, years=years))
    except NotImplementedError:
        return None
    holiday_dates = np.array(sorted(days), dtype="datetime64[D]")
    return np.isin(dates.to_numpy(), holiday_dates).astype(np.int32)


def _weather(
    out: pl.DataFrame, assets: pl.DataFrame, weather: pl.DataFrame, wanted: list[str]
) -> pl.DataFrame:
    """The latest observation at or before H, at most ``WEATHER_MAX_AGE_HOURS`` old, from
    the asset's location; null without a location or a recent observation."""
    index = _HourIndex(out)
    values = {f: np.full(out.height, np.nan) for f in wanted}
    max_age = WEATHER_MAX_AGE_HOURS * HOUR_US
    for location, keys in _groups(assets, "location_id").items():
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
    return out.with_columns([pl.Series(f, v, nan_to_null=True) for f, v in values.items()])


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
    grid = grid.with_columns(
        pl.col("L").alias("value"),
        *[pl.col("L").shift(k).alias(f"lag_{k}h") for k in (1, 24, 48, 168)],
    )
    out = _windows(grid, wanted_set).filter(pl.col("is_target"))

    if "z_score_24h" in wanted_set:
        std = pl.col("rolling_24h_std")
        out = out.with_columns(
            z_score_24h=pl.when(std.is_not_null() & (std != 0)).then(
                (pl.col("value") - pl.col("rolling_24h_avg")) / std
            )
        )
    if "deviation_from_lag_168h" in wanted_set:
        out = out.with_columns(deviation_from_lag_168h=pl.col("value") - pl.col("lag_168h"))
    if wanted_set & set(CALENDAR):
        out = _calendar(out, assets, wanted_set)
    weather_cols = [f for f in WEATHER_FIELDS if f in wanted_set]
    if weather_cols:
        out = _weather(out, assets, weather, weather_cols)

    def column(name: str) -> pl.Expr:
        feature = CATALOG[name]
        expr = pl.col(name)
        if feature.horizon_hours > lookback_hours:
            expr = pl.lit(None)
        return expr.cast(pl.Int32 if feature.dtype == "int" else pl.Float64).alias(name)

    cols = ["asset_key", "hour", *[column(f) for f in wanted]]
    if include_target:
        cols.append(pl.col("value").alias("target"))
    return out.select(cols)
