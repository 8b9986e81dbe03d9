"""The frames that cross between the stores and the feature pipeline.

Columns are Polars with integer epoch-microsecond instants (``ts``/``hour``, UTC). The
feature package owns these shapes: stores produce and take them, the pipeline
(``compute``) reads them, and nothing here imports a store.
"""

from __future__ import annotations

import polars as pl

# Raw meter readings of one tenant, as ingested.
READINGS_SCHEMA = {"asset_id": pl.String, "ts": pl.Int64, "value": pl.Float64}

# The weather fields of an observation, each optional.
WEATHER_FIELDS = ("temperature", "humidity", "wind_speed", "solar_irradiance", "cloud_cover")
WEATHER_SCHEMA = {
    "location_id": pl.String,
    "ts": pl.Int64,
    **{f: pl.Float64 for f in WEATHER_FIELDS},
}

# Every stored version of readings (current and superseded): knowledge time ``known_at``
# (epoch us) and ``quality`` (index into ``QUALITIES``: actual, estimated, edited).
READING_VERSIONS_SCHEMA = {
    "asset_key": pl.Int64,
    "ts": pl.Int64,
    "known_at": pl.Int64,
    "value": pl.Float64,
    "quality": pl.Int64,
}
QUALITIES = ("actual", "estimated", "edited")

# Every stored version of weather: one row per (location, ts, known_at).
WEATHER_VERSIONS_SCHEMA = {
    "location_id": pl.String,
    "ts": pl.Int64,
    "known_at": pl.Int64,
    **{f: pl.Float64 for f in WEATHER_FIELDS},
}

# Hourly rollups of an asset's readings: count, mean, sample std, min and max of the
# readings in ``[hour, hour + 1h)``; the pipeline's only view of the load.
ROLLUP_SCHEMA = {
    "asset_key": pl.Int64,
    "hour": pl.Int64,
    "n": pl.Int64,
    "mean": pl.Float64,
    "std": pl.Float64,
    "min": pl.Float64,
    "max": pl.Float64,
}
ROLLUP_VALUES = ("n", "mean", "std", "min", "max")

# Knowledge marks of an hour, stored with its rollup (``load_rollups`` reads them as more
# columns): ``known_at``, the latest knowledge time of the hour's current readings (as
# known at any K >= it, the hour is its current rollup); ``first_known``, the earliest
# knowledge time of any version of its readings, current or superseded (as known at any
# K < it, nothing of the hour was known); ``quality``, bits ``ESTIMATED`` and ``EDITED``
# set when a current reading of the hour has that quality.
MARK_SCHEMA = {"known_at": pl.Int64, "first_known": pl.Int64, "quality": pl.Int64}
MARK_COLUMNS = tuple(MARK_SCHEMA)
ESTIMATED, EDITED = 1, 2

__all__ = [
    "EDITED",
    "ESTIMATED",
    "MARK_COLUMNS",
    "MARK_SCHEMA",
    "QUALITIES",
    "READINGS_SCHEMA",
    "READING_VERSIONS_SCHEMA",
    "ROLLUP_SCHEMA",
    "ROLLUP_VALUES",
    "WEATHER_FIELDS",
    "WEATHER_SCHEMA",
    "WEATHER_VERSIONS_SCHEMA",
]
