"""Hourly rollups of readings, the one definition, and the runs of hours a batch touches.

Both backends keep rollups exact on every ingest: the hours a batch touches are grouped
into runs (``touched_hour_runs``) and recomputed from the readings in them.
"""

from __future__ import annotations

import polars as pl

from aihub.features.frames import EDITED, ESTIMATED, MARK_SCHEMA, ROLLUP_SCHEMA
from aihub.timeutil import HOUR_US

HOUR_BITS = 22  # hour numbers since 1970 below 2**22 (year 2448): (asset, hour) in one int


def compute_rollups(readings: pl.DataFrame, *, with_marks: bool = False) -> pl.DataFrame:
    """Hourly rollups (``ROLLUP_SCHEMA``) of ``asset_key, ts, value`` readings.

    The one definition of a rollup: count, mean, sample std (ddof 1; null below two
    readings, exactly 0 when all readings of the hour are equal), min, max of ``[h, h+1h)``.
    ``with_marks`` adds the hour's knowledge marks (``MARK_SCHEMA``) of readings that carry
    ``known_at`` and ``quality``: the latest and earliest knowledge time (``first_known``
    null where they are equal, as stored) and the quality bits.
    """
    marks = (
        {
            "known_at": pl.col("known_at").max(),
            "first_known": pl.col("known_at").min(),
            "quality": (pl.col("quality") == 1).any().cast(pl.Int64) * ESTIMATED
            + (pl.col("quality") == 2).any().cast(pl.Int64) * EDITED,
        }
        if with_marks
        else {}
    )
    schema = {**ROLLUP_SCHEMA, **(MARK_SCHEMA if with_marks else {})}
    return (
        readings.group_by("asset_key", (pl.col("ts") // HOUR_US * HOUR_US).alias("hour"))
        .agg(
            n=pl.len().cast(pl.Int64),
            mean=pl.col("value").mean(),
            std=pl.col("value").std(ddof=1),
            min=pl.col("value").min(),
            max=pl.col("value").max(),
            **marks,
        )
        .with_columns(
            std=pl.when(pl.col("n") < 2)
            .then(None)
            .when(pl.col("min") == pl.col("max"))
            .then(0.0)
            .otherwise(pl.col("std")),
            **(
                {"first_known": pl.when(pl.col("first_known") != pl.col("known_at"))
                 .then(pl.col("first_known"))}
                if with_marks
                else {}
            ),
        )
        .select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
        .sort("asset_key", "hour")
    )


def superseded_marks(superseded: pl.DataFrame) -> pl.DataFrame:
    """``asset_key, hour, first_known`` of versions a write moved to history: the earliest
    knowledge time of each hour's, which its ``first_known`` must not exceed."""
    return (
        superseded.group_by("asset_key", (pl.col("ts") // HOUR_US * HOUR_US).alias("hour"))
        .agg(first_known=pl.col("known_at").min())
        .sort("asset_key", "hour")
    )


def touched_hour_runs(readings: pl.DataFrame) -> pl.DataFrame:
    """Maximal runs of consecutive touched hours per asset, as ``asset_key, start, end``
    (``[start, end)`` in epoch us) with ``max_n``, the most readings any hour of it holds.

    Each reading's ``(asset, hour)`` is packed into one integer, so the touched hours are
    the run lengths of the sorted integers: ~25 bytes per reading, where grouping by the
    pair costs ~140 (hourly data has as many groups as readings)."""
    hb = pl.col("ts") // HOUR_US
    bounds = readings.select(hb.min().alias("lo"), hb.max().alias("hi"),
                             pl.col("asset_key").min().alias("k"))
    lo, hi, k = bounds.row(0) if readings.height else (0, 0, 0)
    if lo < 0 or hi >= 1 << HOUR_BITS or k < 0:
        return _touched_hour_runs_grouped(readings)
    codes = readings.select(pl.col("asset_key") * (1 << HOUR_BITS) + hb).to_series()
    if not codes.is_sorted():
        codes = codes.sort()
    hours = codes.rle().struct.unnest()  # one row per touched (asset, hour): len, value
    return (
        hours.select(
            asset_key=pl.col("value") // (1 << HOUR_BITS),
            hb=pl.col("value") % (1 << HOUR_BITS),
            n=pl.col("len"),
        )
        .with_columns(
            run=((pl.col("hb").diff() != 1) | (pl.col("asset_key").diff() != 0))
            .fill_null(True)
            .cum_sum()
        )
        .group_by("run", maintain_order=True)
        .agg(
            asset_key=pl.col("asset_key").first(),
            start=pl.col("hb").first() * HOUR_US,
            end=(pl.col("hb").last() + 1) * HOUR_US,
            max_n=pl.col("n").max(),
        )
        .drop("run")
    )


def _touched_hour_runs_grouped(readings: pl.DataFrame) -> pl.DataFrame:
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
