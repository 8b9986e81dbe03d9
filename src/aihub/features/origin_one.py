"""Feature rows of one asset at one origin ``O``, as known at ``O``: the online ``get``
with horizons, on NumPy arrays.

``origin_compute`` serves any number of assets and origins through frames; for one asset
and one origin its fixed cost per call (joins, group-bys, a frame per step) is most of an
online request. Here there is one view (the ``WINDOW`` hours before ``O``), the hours late
for ``O`` are a mask over the asset's marks, and each step works on a few hundred values.
The values are those of ``compute_origin_features(..., as_known="origin")`` bit for bit:
the window features, the weather rule and the output frame are the same functions; what
is written again here (the grid, the late hours, their as-known means) adds the same
IEEE operations in the same order, and an as-known mean over three readings or more,
whose sum depends on how it is accumulated, is taken from ``as_of_levels`` itself. A test
checks it against the general path cell for cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import polars as pl

from aihub.features.compute import ASSETS_SCHEMA, CALENDAR, _calendar, _HourIndex
from aihub.features.frames import EDITED, ESTIMATED, WEATHER_FIELDS
from aihub.features.origin_compute import (
    DIRTY_SCHEMA,
    WINDOW,
    as_of_levels,
    feature_frame,
    weather_version_at,
    window_features,
)
from aihub.timeutil import HOUR_US

_CALENDAR_BLOCK = 512  # hours of local calendar computed (and cached) at a time


def late_hours(marks: pl.DataFrame, origin: int) -> tuple[np.ndarray, np.ndarray]:
    """The hours ``t`` of the asset's ``marks`` (``hour, known_at, first_known``: the
    marks of some or all of its rollups) that origin ``O`` reads (``t + 1h <= O <= t +
    WINDOW``) but that were not fully known at ``O`` (``known_at > O``), and their
    ``first_known``: ``dirty_hours`` for one view."""
    if marks.is_empty():
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    hour = marks.get_column("hour").to_numpy()
    known = marks.get_column("known_at").to_numpy()
    late = (hour + HOUR_US <= origin) & (origin <= hour + WINDOW * HOUR_US) & (origin < known)
    return hour[late], marks.get_column("first_known").to_numpy()[late]


def as_known_means(
    versions: pl.DataFrame, hours: np.ndarray, first_known: np.ndarray, origin: int
) -> np.ndarray:
    """The mean of each late hour over its readings as known at ``O`` (each reading its
    latest version with ``known_at <= O``), NaN where none was known: ``as_of_levels``'s
    mean. ``versions`` (sorted by ts, known_at) hold the hours with
    ``first_known <= O``."""
    means = np.full(len(hours), np.nan)
    if versions.is_empty() or not len(hours):
        return means
    ts = versions.get_column("ts").to_numpy()
    known = versions.get_column("known_at").to_numpy()
    value = versions.get_column("value").to_numpy()
    keep = known <= origin
    ts, value = ts[keep], value[keep]
    last = np.r_[ts[1:] != ts[:-1], True] if len(ts) else np.zeros(0, bool)
    ts, value = ts[last], value[last]  # each reading's version as known at O
    of_hour = ts // HOUR_US * HOUR_US
    order = np.argsort(hours, kind="stable")
    at = np.searchsorted(hours, of_hour, sorter=order)
    at = order[np.clip(at, 0, len(hours) - 1)]
    mine = hours[at] == of_hour
    at, value = at[mine], value[mine]
    count = np.bincount(at, minlength=len(hours))
    # One or two readings: their mean is fl(a + b) / 2 (or a) however it is summed.
    total = np.bincount(at, weights=value, minlength=len(hours))
    few = (count >= 1) & (count <= 2)
    means[few] = total[few] / count[few]
    many = count >= 3
    if many.any():
        dirty = pl.DataFrame(
            {"asset_key": versions.get_column("asset_key")[0], "hour": hours[many],
             "known_by": origin, "first_known": first_known[many]},
            schema=DIRTY_SCHEMA,
        )
        levels = as_of_levels(versions, dirty)
        found = dict(zip(levels.get_column("hour").to_list(),
                         levels.get_column("mean").fill_null(np.nan).to_list(), strict=True))
        means[many] = [found[h] for h in hours[many].tolist()]
    return means


def one_origin_features(
    *,
    asset_key: int,
    timezone: str,
    country: str | None,
    location_id: str | None,
    origin: int,
    horizons: Sequence[int],
    rollups: pl.DataFrame,
    versions: pl.DataFrame,
    weather: pl.DataFrame,
    features: Sequence[str],
    lookback_hours: int,
    include_target: bool,
) -> pl.DataFrame:
    """``compute_origin_features`` for one asset, one origin ``O`` and ``as_known =
    "origin"``: ``rollups`` (current, ``[O - reach, O + max h + 1h)``, with their marks
    ``known_at``, ``first_known`` and ``quality``: the hours late for ``O`` and the target
    quality come from them, as ``load_hour_marks`` would give them), ``versions``
    (``load_hour_versions`` of the late hours first known by ``O``) and ``weather`` (every
    version at the asset's location, ``WEATHER_VERSIONS_SCHEMA``)."""
    wanted = list(features)
    wanted_set = set(wanted)
    horizon = np.unique(np.asarray(horizons, dtype=np.int64))
    n = len(horizon)
    rt = origin + horizon * HOUR_US
    # The grid: hour O - WINDOW h + i at i, up to the last target.
    first = origin - WINDOW * HOUR_US
    size = WINDOW + int(horizon[-1]) + 1 if n else WINDOW
    level, low, high = (np.full(size, np.nan) for _ in range(3))
    quality = np.zeros(size, dtype=np.int64)
    at = (rollups.get_column("hour").to_numpy() - first) // HOUR_US
    level[at] = rollups.get_column("mean").to_numpy()
    quality[at] = rollups.get_column("quality").to_numpy()
    if "min" in rollups.columns:
        low[at] = rollups.get_column("min").to_numpy()
        high[at] = rollups.get_column("max").to_numpy()
    # window[j, 0]: hour O - (j + 1)h, as known at O.
    window = level[WINDOW - 1 - np.arange(WINDOW)][:, None].copy()
    hours, first_known = late_hours(rollups, origin)
    if len(hours):
        window[(origin - hours) // HOUR_US - 1, 0] = as_known_means(
            versions, hours, first_known, origin
        )
    tpos = WINDOW + horizon
    level_t, low_t, high_t = level[tpos], low[tpos], high[tpos]
    keys = np.full(n, asset_key, dtype=np.int64)
    values = window_features(
        window, np.zeros(n, dtype=np.int64), horizon, (level_t, low_t, high_t), wanted_set
    )
    if wanted_set & set(CALENDAR):
        values.update(_local_calendar(timezone, country, rt))
    weather_cols = [f for f in WEATHER_FIELDS if f in wanted_set]
    if weather_cols:
        values.update(_weather_at(weather, location_id, rt, origin, weather_cols))
    target = None
    if include_target:
        target = (level_t, quality[tpos] & ESTIMATED, quality[tpos] & EDITED)
    return feature_frame(keys, np.full(n, origin, dtype=np.int64), rt, horizon, values, wanted,
                         lookback_hours, target)


def _weather_at(
    weather: pl.DataFrame, location_id: str | None, hours: np.ndarray, origin: int,
    wanted: list[str],
) -> dict[str, np.ndarray]:
    """``_weather_as_known`` for one location and every row known by ``O``."""
    values = {f: np.full(len(hours), np.nan) for f in wanted}
    if location_id is None or weather.is_empty():
        return values
    ts = weather.get_column("ts").to_numpy()
    known = weather.get_column("known_at").to_numpy()
    order = None
    if len(ts) > 1:
        dt, dk = np.diff(ts), np.diff(known)
        if not ((dt > 0) | ((dt == 0) & (dk >= 0))).all():
            order = np.lexsort((known, ts))
            ts, known = ts[order], known[order]
    best = weather_version_at(ts, known, hours, np.full(len(hours), origin, dtype=np.int64))
    found = best >= 0
    for f in wanted:
        column = weather.get_column(f).fill_null(np.nan).to_numpy()
        if order is not None:
            column = column[order]
        values[f][found] = column[best[found]]
    return values


def _local_calendar(timezone: str, country: str | None, hours: np.ndarray
                    ) -> dict[str, np.ndarray]:
    """``compute._calendar`` of ``hours`` for one asset, from cached blocks of hours (the
    same function over a block: each hour's values do not depend on the others)."""
    block = hours // HOUR_US // _CALENDAR_BLOCK
    fields = {name: np.empty(len(hours), dtype=np.int32) for name in CALENDAR}
    for b in np.unique(block).tolist():
        rows = block == b
        cached = _calendar_block(timezone, country, b)
        at = hours[rows] // HOUR_US - b * _CALENDAR_BLOCK
        for name in CALENDAR:
            fields[name][rows] = cached[name][at]
    return fields


@lru_cache(maxsize=256)
def _calendar_block(timezone: str, country: str | None, block: int) -> dict[str, np.ndarray]:
    hours = (block * _CALENDAR_BLOCK + np.arange(_CALENDAR_BLOCK, dtype=np.int64)) * HOUR_US
    assets = pl.DataFrame([(0, timezone, country, None)], schema=ASSETS_SCHEMA, orient="row")
    out = _calendar(_HourIndex(np.zeros(len(hours), dtype=np.int64), hours), assets,
                    set(CALENDAR))
    for values in out.values():
        values.setflags(write=False)
    return out
