"""Hourly rollups of readings, the one definition, and the runs of hours a batch touches.

Both backends keep rollups exact on every ingest: the hours a batch touches are grouped
into runs (``touched_hour_runs``) and recomputed from the readings in them.
"""

from __future__ import annotations

import polars as pl

from aihub.features.frames import ROLLUP_SCHEMA
from aihub.timeutil import HOUR_US


def compute_rollups(readings: pl.DataFrame) -> pl.DataFrame:
    """Hourly rollups (``ROLLUP_SCHEMA``) of ``asset_key, ts, value`` readings.

    The one definition of a rollup: count, mean, sample std (ddof 1; null below two
    readings, exactly 0 when all readings of the hour are equal), min, max of ``[h, h+1h)``.
    """
    return (
        readings.group_by("asset_key", (pl.col("ts") // HOUR_US * HOUR_US).alias("hour"))
        .agg(
            n=pl.len().cast(pl.Int64),
            mean=pl.col("value").mean(),
            std=pl.col("value").std(ddof=1),
            min=pl.col("value").min(),
            max=pl.col("value").max(),
        )
        .with_columns(
            std=pl.when(pl.col("n") < 2)
            .then(None)
            .when(pl.col("min") == pl.col("max"))
            .then(0.0)
            .otherwise(pl.col("std"))
        )
        .select(list(ROLLUP_SCHEMA))
        .cast(ROLLUP_SCHEMA)  # type: ignore[arg-type]
        .sort("asset_key", "hour")
    )


def touched_hour_runs(readings: pl.DataFrame) -> pl.DataFrame:
    """Maximal runs of consecutive touched hours per asset, as ``asset_key, start, end``
    (``[start, end)`` in epoch us) with ``max_n``, the most readings any hour of it holds."""
    return (
        readings.group_by("asset_key", (pl.col("ts") // HOUR_US).alias("hb"))
        .agg(n=pl.len())
        .sort("asset_key", "hb")
        .with_columns(run=(pl.col("hb").diff().over("asset_key").fill_null(1) != 1).cum_sum())
        .group_by("asset_key", "run")
        .agg(
            start=pl.col("hb").min() * HOUR_US,
            end=(pl.col("hb").max() + 1) * HOUR_US,
            max_n=pl.col("n").max(),
        )
        .drop("run")
        .sort("asset_key", "start")
    )


def in_runs(readings: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """The readings that fall inside one of ``runs``."""
    if runs.is_empty():
        return readings.clear()
    return (
        readings.sort("ts")
        .join_asof(
            runs.select("asset_key", "start", "end").sort("start"),
            left_on="ts",
            right_on="start",
            by="asset_key",
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("ts") < pl.col("end"))
        .select(readings.columns)
    )
