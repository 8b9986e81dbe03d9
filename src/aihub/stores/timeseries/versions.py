"""Knowledge time on the write path: the batch's defaults and which versions change.

The tables hold the current version of every reading and weather value (the latest
``known_at``); superseded versions go to ``reading_versions`` / ``weather_versions``, written
only when a value really changes. These helpers are the rules both backends share.
"""

from __future__ import annotations

import polars as pl

from aihub.features.frames import QUALITIES, WEATHER_FIELDS, WEATHER_VERSIONS_SCHEMA

_QUALITY_CODES = {q: i for i, q in enumerate(QUALITIES)}
KEYED_COLUMNS = ("asset_key", "ts", "value", "known_at", "quality")


def keyed_readings(readings: pl.DataFrame, keys: dict[str, int], now: int) -> pl.DataFrame:
    """``asset_key, ts, value, known_at, quality`` of a validated batch: ``known_at``
    defaults to ``now`` (the write's time), ``quality`` to actual (0)."""
    known = pl.col("known_at") if "known_at" in readings.columns else pl.lit(None, pl.Int64)
    quality = (
        pl.col("quality").replace_strict(_QUALITY_CODES, default=0, return_dtype=pl.Int64)
        if "quality" in readings.columns
        else pl.lit(0, pl.Int64)
    )
    return readings.select(
        pl.col("asset_id").replace_strict(keys, return_dtype=pl.Int64).alias("asset_key"),
        "ts",
        "value",
        known.fill_null(now).cast(pl.Int64).alias("known_at"),
        quality.fill_null(0).alias("quality"),
    )


def reading_changes(batch: pl.DataFrame, stored: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(winners, superseded)`` of a keyed batch against the stored current rows of the
    same ``(asset_key, ts)``: the batch rows that become current, and the versions that go
    to history (the older of two different versions; a tie in ``known_at`` replaces)."""
    cols = list(KEYED_COLUMNS)
    if stored.is_empty():
        return batch, batch.clear()
    both = batch.join(stored.select(cols), on=["asset_key", "ts"], how="inner", suffix="_old")
    changed = (pl.col("value") != pl.col("value_old")) | (
        pl.col("quality") != pl.col("quality_old")
    )
    newer = pl.col("known_at") >= pl.col("known_at_old")
    old_out = both.filter(changed & (pl.col("known_at") > pl.col("known_at_old"))).select(
        "asset_key", "ts", *(pl.col(f"{c}_old").alias(c) for c in ("value", "known_at", "quality"))
    )
    new_out = both.filter(changed & ~newer).select(cols)
    losers = both.filter(~(changed & newer)).select("asset_key", "ts")
    winners = batch.join(losers, on=["asset_key", "ts"], how="anti")
    return winners, pl.concat([old_out, new_out]).select(cols)


def known_weather(observations: pl.DataFrame, now: int) -> pl.DataFrame:
    """A validated weather batch with ``known_at`` (its ``issued_at``, default ``now``)."""
    known = (
        pl.col("issued_at") if "issued_at" in observations.columns else pl.lit(None, pl.Int64)
    )
    return observations.select(
        "location_id", "ts", *WEATHER_FIELDS, known.fill_null(now).cast(pl.Int64).alias("known_at")
    )


def weather_changes(
    batch: pl.DataFrame, stored: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(current, superseded)``: the batch rows that become current, and the versions
    (``WEATHER_VERSIONS_SCHEMA``) that go to history, by the rules of ``reading_changes``
    (a version is the whole row of fields; nulls compare equal)."""
    out_cols = list(WEATHER_VERSIONS_SCHEMA)
    if stored.is_empty():
        return batch, batch.select(out_cols).clear()
    both = batch.join(stored, on=["location_id", "ts"], how="inner", suffix="_old")
    same = pl.lit(True)
    for f in WEATHER_FIELDS:
        same = same & pl.col(f).eq_missing(pl.col(f"{f}_old"))
    changed = ~same
    newer = pl.col("known_at") >= pl.col("known_at_old")
    old_out = both.filter(changed & (pl.col("known_at") > pl.col("known_at_old"))).select(
        "location_id", "ts", pl.col("known_at_old").alias("known_at"),
        *(pl.col(f"{f}_old").alias(f) for f in WEATHER_FIELDS),
    )
    new_out = both.filter(changed & ~newer).select(out_cols)
    losers = both.filter(~(changed & newer)).select("location_id", "ts")
    current = batch.join(losers, on=["location_id", "ts"], how="anti")
    return current, pl.concat([old_out, new_out]).select(out_cols)
