"""The one feature pipeline, shared by online serving and offline export.

``compute_features`` turns hourly rollups into feature rows for target hours ``H``.
Everything is by elapsed time on the UTC hourly grid (lags and windows are joins and
time-indexed windows, never row offsets), so gaps, duplicates and DST shift nothing.
Calendar features alone use the asset's local time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import holidays
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
_SAME_HOUR_DAYS = range(1, 8)  # hourly_avg / hourly_std: L(H - 24h*k), k = 1..7
_MAX_SHIFT = 168  # the furthest any catalog feature looks back, in hours


def _dense_grid(rollups: pl.DataFrame, targets: pl.DataFrame, pad: int) -> pl.DataFrame:
    """Every hour of every target asset from ``pad`` hours before its first target to its
    last target, with ``L`` (the hourly mean) where the hour has readings.

    On this grid row ``i - k`` of an asset is exactly hour ``H - k``, so a lag is a shift.
    Rows before an asset's first target are padding; a shift of at most ``pad`` from a
    target row never leaves the asset's block.
    """
    spans = targets.group_by("asset_key").agg(
        start=pl.col("hour").min() - pad * HOUR_US, end=pl.col("hour").max()
    )
    grid = (
        spans.select(
            "asset_key",
            hour=pl.int_ranges(pl.col("start"), pl.col("end") + 1, HOUR_US, dtype=pl.Int64),
        )
        .explode("hour")
        .sort("asset_key", "hour")
    )
    return grid.join(
        rollups.select("asset_key", "hour", pl.col("mean").alias("L"),
                       pl.col("min").alias("hourly_min"), pl.col("max").alias("hourly_max")),
        on=["asset_key", "hour"],
        how="left",
        maintain_order="left",
    )


def _lag(k: int) -> pl.Expr:
    return pl.col("L").shift(k)


def _mean_std(values: list[pl.Expr], name: str) -> list[pl.Expr]:
    """Mean (>= 1 value) and sample std (>= 2 values) of non-null ``values``, computed
    row-wise in a fixed order: the same inputs give bit-identical results in any frame."""
    count = pl.sum_horizontal([v.is_not_null().cast(pl.Int32) for v in values])
    mean = pl.sum_horizontal(values) / count
    squares = pl.sum_horizontal([(v - pl.col(f"{name}_avg")) ** 2 for v in values])
    return [
        pl.when(count >= 1).then(mean).alias(f"{name}_avg"),
        pl.when(count >= 2).then((squares / (count - 1)).sqrt()).alias(f"{name}_std"),
    ]


def _calendar(frame: pl.DataFrame, assets: pl.DataFrame, wanted: set[str]) -> pl.DataFrame:
    """Local-time calendar columns for ``frame``'s ``(asset_key, hour)`` rows."""
    with_tz = frame.select("asset_key", "hour").join(
        assets.select("asset_key", "timezone", "country"), on="asset_key", how="left"
    )
    parts = []
    for (tz,), part in with_tz.group_by(["timezone"]):
        local = pl.col("hour").cast(UTC_HOUR).dt.convert_time_zone(str(tz or "UTC"))
        parts.append(
            part.with_columns(
                hour_of_day=local.dt.hour().cast(pl.Int32),
                day_of_week=(local.dt.weekday() - 1).cast(pl.Int32),
                month=local.dt.month().cast(pl.Int32),
                local_date=local.dt.date(),
            )
        )
    cal = pl.concat(parts) if parts else with_tz.with_columns(
        hour_of_day=pl.lit(None, pl.Int32),
        day_of_week=pl.lit(None, pl.Int32),
        month=pl.lit(None, pl.Int32),
        local_date=pl.lit(None, pl.Date),
    )
    cal = cal.with_columns(is_weekend=(pl.col("day_of_week") >= 5).cast(pl.Int32))
    if "is_holiday" in wanted:
        cal = cal.with_columns(is_holiday=_holiday_flags(cal))
    return cal.drop("timezone", "country", "local_date")


def _holiday_flags(cal: pl.DataFrame) -> pl.Series:
    flags = pl.Series("is_holiday", [None] * cal.height, dtype=pl.Int32)
    for (country,), part in cal.with_row_index("_i").group_by(["country"]):
        if not country:
            continue
        dates = part.get_column("local_date")
        years = range(int(dates.dt.year().min()), int(dates.dt.year().max()) + 1)  # type: ignore[arg-type]
        try:
            days: set[date] = set(holidays.country_holidays(str(country), years=years))
        except NotImplementedError:
            continue
        hit = dates.is_in(pl.Series(sorted(days), dtype=pl.Date)).cast(pl.Int32)
        flags = flags.scatter(part.get_column("_i"), hit)
    return flags


def _weather(frame: pl.DataFrame, assets: pl.DataFrame, weather: pl.DataFrame,
             wanted: list[str]) -> pl.DataFrame:
    """Latest observation at or before H (at most ``WEATHER_MAX_AGE_HOURS`` old)."""
    left = frame.select("asset_key", "hour").join(
        assets.select("asset_key", "location_id"), on="asset_key", how="left"
    )
    obs = weather.select("location_id", pl.col("ts").alias("obs_ts"), *wanted).sort("obs_ts")
    joined = left.sort("hour").join_asof(
        obs,
        left_on="hour",
        right_on="obs_ts",
        by="location_id",
        strategy="backward",
        tolerance=WEATHER_MAX_AGE_HOURS * HOUR_US,
        check_sortedness=False,
    )
    return joined.select("asset_key", "hour", *wanted)


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
    """Feature rows for ``targets`` (``asset_key``, ``hour`` in epoch us).

    ``rollups`` must cover ``[H - lookback, H]`` of every target (``ROLLUP_SCHEMA``);
    ``assets`` follows ``ASSETS_SCHEMA``; ``weather`` follows ``WEATHER_SCHEMA``. Returns
    ``asset_key, hour``, the features in the order asked, and ``target`` (L(H)) if asked,
    sorted by asset and hour. A feature whose inputs reach further back than
    ``lookback_hours``, or are missing, is null.
    """
    wanted = list(features)
    wanted_set = set(wanted)
    targets = targets.select(pl.col("asset_key").cast(pl.Int64), pl.col("hour").cast(pl.Int64))
    grid = _dense_grid(rollups, targets, _MAX_SHIFT)

    lag_cols = [pl.col("L").alias("value")]
    for k in (1, 24, 48, 168):
        lag_cols.append(_lag(k).alias(f"lag_{k}h"))
    grid = grid.with_columns(lag_cols)

    windowed: list[pl.Expr] = []
    if wanted_set & {"hourly_avg", "hourly_std"}:
        windowed += _mean_std([_lag(24 * k) for k in _SAME_HOUR_DAYS], "hourly")
    for hours in (24, 168):
        needs = {f"rolling_{hours}h_avg", f"rolling_{hours}h_std"}
        if hours == 24:
            needs.add("z_score_24h")
        if wanted_set & needs:
            windowed += _mean_std([_lag(k) for k in range(1, hours + 1)], f"rolling_{hours}h")
    # Std expressions read the mean column: add means first, then stds.
    means = [e for e in windowed if e.meta.output_name().endswith("_avg")]
    stds = [e for e in windowed if e.meta.output_name().endswith("_std")]
    if means:
        grid = grid.with_columns(means)
    if stds:
        grid = grid.with_columns(stds)

    out = targets.join(grid, on=["asset_key", "hour"], how="left")
    if "z_score_24h" in wanted_set:
        out = out.with_columns(
            z_score_24h=pl.when(pl.col("rolling_24h_std").is_not_null()
                                & (pl.col("rolling_24h_std") != 0))
            .then((pl.col("value") - pl.col("rolling_24h_avg")) / pl.col("rolling_24h_std"))
        )
    if "deviation_from_lag_168h" in wanted_set:
        out = out.with_columns(deviation_from_lag_168h=pl.col("value") - pl.col("lag_168h"))

    calendar = wanted_set & {"hour_of_day", "day_of_week", "is_weekend", "month", "is_holiday"}
    if calendar:
        out = out.join(_calendar(out, assets, calendar), on=["asset_key", "hour"], how="left")
    weather_cols = [f for f in WEATHER_FIELDS if f in wanted_set]
    if weather_cols:
        out = out.join(_weather(out, assets, weather, weather_cols), on=["asset_key", "hour"],
                       how="left")

    if include_target:
        out = out.with_columns(target=pl.col("value"))

    masked = [
        pl.when(pl.lit(CATALOG[f].horizon_hours <= lookback_hours)).then(pl.col(f)).alias(f)
        if CATALOG[f].horizon_hours > 0 else pl.col(f)
        for f in wanted
    ]
    casts = [
        m.cast(pl.Int32) if CATALOG[f].dtype == "int" else m.cast(pl.Float64)
        for f, m in zip(wanted, masked, strict=True)
    ]
    cols = ["asset_key", "hour", *casts] + (["target"] if include_target else [])
    return out.select(cols).sort("asset_key", "hour")
