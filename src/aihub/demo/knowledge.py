"""What the demo's data looked like when it arrived: weather forecasts issued twice a day
whose error grows with lead time, then the observations; meter readings that arrive after
their hour, one meter a day late, and a few estimates replaced by actual reads days later.

Deterministic for a seed, vectorised; nothing is known after ``now``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from aihub.demo.generator import DemoSpec, weather_frame
from aihub.timeutil import HOUR_US

ISSUE_EVERY_HOURS = 12  # forecasts issued at 00:00 and 12:00 UTC
FORECAST_LEAD_HOURS = 48
OBSERVED_AFTER_US = 30 * 60_000_000  # an observation arrives half an hour after its hour
TEMP_STEP = 0.35  # deg C of forecast error added per hour of lead (a random walk)
HUMIDITY_STEP = 1.2
ESTIMATED_SHARE = 0.02  # hours first sent as an estimate, corrected days later


def weather_issues(spec: DemoSpec, start_us: int, hours: int, now_us: int) -> list[pl.DataFrame]:
    """Every forecast issued from two days before ``start_us`` up to ``now_us`` (one frame
    per issue, ``issued_at`` set) and then the observations up to ``now_us``: the batches
    to ingest, in the order they became known."""
    rng = np.random.default_rng(spec.seed + 2)
    lead_start = start_us - 2 * 24 * HOUR_US
    # The weather the meters felt from start_us on (the same draws as readings_frame's),
    # and two days before it for the first forecasts.
    truth = pl.concat([
        weather_frame(replace(spec, seed=spec.seed + 10), lead_start, 2 * 24),
        weather_frame(spec, start_us, hours + FORECAST_LEAD_HOURS + ISSUE_EVERY_HOURS),
    ])
    ts = truth.get_column("ts").to_numpy()
    batches: list[pl.DataFrame] = []
    first_issue = lead_start - lead_start % (ISSUE_EVERY_HOURS * HOUR_US)
    for issue in range(first_issue, now_us + 1, ISSUE_EVERY_HOURS * HOUR_US):
        at = np.flatnonzero((ts > issue) & (ts <= issue + FORECAST_LEAD_HOURS * HOUR_US))
        if len(at) == 0:
            continue
        drift_t = np.cumsum(rng.normal(0, TEMP_STEP, len(at)))
        drift_h = np.cumsum(rng.normal(0, HUMIDITY_STEP, len(at)))
        batches.append(
            truth[at].with_columns(
                (pl.col("temperature") + drift_t).alias("temperature"),
                (pl.col("humidity") + drift_h).clip(5, 100).alias("humidity"),
                pl.lit(issue, pl.Int64).alias("issued_at"),
            )
        )
    observed = truth.filter((pl.col("ts") >= start_us)
                            & (pl.col("ts") + OBSERVED_AFTER_US <= now_us))
    batches.append(observed.with_columns((pl.col("ts") + OBSERVED_AFTER_US).alias("issued_at")))
    return batches


def arrivals(spec: DemoSpec, readings: pl.DataFrame, now_us: int
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(first, corrections)``: the readings as first sent, with ``known_at`` (minutes after
    their hour ends; the second meter's a whole day at 06:00 UTC the next day) and
    ``quality`` (a few ``estimated``, off by up to 15 %), and the actual reads replacing
    those estimates 2 to 5 days later (those known by ``now_us``)."""
    rng = np.random.default_rng(spec.seed + 3)
    n = readings.height
    ts = readings.get_column("ts").to_numpy()
    hour_end = ts - ts % HOUR_US + HOUR_US
    known = hour_end + rng.integers(2, 25, n) * 60_000_000
    late_id = spec.asset_ids()[min(1, spec.assets - 1)]
    late_meter = readings.get_column("asset_id").to_numpy() == late_id
    day = 24 * HOUR_US
    next_morning = ts - ts % day + day + 6 * HOUR_US
    known = np.where(late_meter & (spec.assets > 1), np.maximum(known, next_morning), known)
    known = np.minimum(known, now_us)
    estimated = rng.random(n) < ESTIMATED_SHARE
    value = readings.get_column("value").to_numpy()
    first_value = np.where(estimated, value * (1 + rng.uniform(-0.15, 0.15, n)), value)
    first = readings.with_columns(
        pl.Series("value", first_value),
        pl.Series("known_at", known),
        pl.Series("quality", np.where(estimated, "estimated", "actual")),
    )
    fixed_at = known + rng.integers(2 * 24, 5 * 24, n) * HOUR_US
    keep = estimated & (fixed_at <= now_us)
    corrections = readings.filter(pl.Series(keep)).with_columns(
        pl.Series("known_at", fixed_at[keep]),
        pl.lit("actual").alias("quality"),
    )
    return first, corrections
