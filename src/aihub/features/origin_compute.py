"""Feature rows at ``(origin O, target T)`` with knowledge time: the pipeline of
``aihub.features.compute`` generalised to horizons and ``as_known``.

Each distinct ``(asset, O, known_by)`` is a *view*: the ``WINDOW`` hours before ``O``
(``L(t)`` with ``t + 1h <= O``) as known at ``known_by``, one row of a matrix ``W`` (row
``v``, column ``j`` = hour ``O - (j + 1)h``). It starts as the current hourly means and
takes, for the few hours whose value was not yet (or differently) known then, the value
"as known" (``as_of_levels``). Features then read ``W``: target-relative inputs
(``lag_k = L(T - k)``, the same hour on previous days) at column ``k - h - 1`` when that is
``>= 0``, origin-relative windows (``rolling_*``) over the first columns. Sums run in the
same order and with the same operations as ``compute._window_stats``, so ``h = 0`` with
``as_known = "latest"`` gives exactly the plain pipeline's values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from aihub.features.catalog import CATALOG, WEATHER_MAX_AGE_HOURS
from aihub.features.compute import (
    CALENDAR,
    MAX_SHIFT_HOURS,
    SAME_HOUR_DAYS,
    _calendar,
    _group_keys,
    _HourIndex,
    _weather,
    dense_grid,
)
from aihub.features.frames import QUALITIES, WEATHER_FIELDS
from aihub.features.knowledge import LATEST, AsKnown
from aihub.timeutil import HOUR_US

WINDOW = MAX_SHIFT_HOURS  # hours before O a view holds
_HB = 22  # bits of an hour number in a packed (asset, hour) code
ROWS_SCHEMA = {"asset_key": pl.Int64, "origin": pl.Int64, "hour": pl.Int64}
DIRTY_SCHEMA = {
    "asset_key": pl.Int64, "hour": pl.Int64, "known_by": pl.Int64, "first_known": pl.Int64
}
OVERRIDES_SCHEMA = {
    "asset_key": pl.Int64,
    "hour": pl.Int64,
    "known_by": pl.Int64,
    "mean": pl.Float64,
    "min": pl.Float64,
    "max": pl.Float64,
    "estimated": pl.Int64,
    "edited": pl.Int64,
}
_FEW_ROWS = 1000  # up to this many rows, per-row Python is cheaper than a Polars expression
# Features read relative to the target (their inputs move with T) or to the origin.
_TARGET_RELATIVE = ("lag_", "hourly_avg", "hourly_std")


def _code(keys: np.ndarray, hours: np.ndarray) -> np.ndarray:
    return (keys.astype(np.int64) << _HB) + hours // HOUR_US


def dirty_hours(marks: pl.DataFrame, rows: pl.DataFrame, as_known: AsKnown) -> pl.DataFrame:
    """The ``(asset, hour, known_by)`` whose value as known differs from the current one
    and that some row reads, with the hour's ``first_known``: hours of ``marks``
    (``asset_key, hour, known_at, first_known``: the hour's marks) known after
    ``known_by``."""
    if as_known == "latest" or marks.is_empty():
        return pl.DataFrame(schema=DIRTY_SCHEMA)
    if as_known != "origin":
        k = int(as_known)
        return marks.filter(pl.col("known_at") > k).select(
            "asset_key", "hour", pl.lit(k, pl.Int64).alias("known_by"), "first_known"
        )
    # As known at each row's origin O: hours t with t + 1h <= O <= t + WINDOW and O before
    # the hour was fully known.
    rk, ro = rows.get_column("asset_key").to_numpy(), rows.get_column("origin").to_numpy()
    ocode = np.unique(_code(rk, ro))  # each (asset, origin), sorted
    origin_of = (ocode & ((1 << _HB) - 1)) * HOUR_US
    mk = marks.get_column("asset_key").to_numpy()
    mt = marks.get_column("hour").to_numpy()
    mknown = marks.get_column("known_at").to_numpy()
    first = np.searchsorted(ocode, _code(mk, mt + HOUR_US), side="left")
    last_o = np.minimum(mt + WINDOW * HOUR_US, mknown - 1)
    stop = np.searchsorted(ocode, _code(mk, last_o), side="right")
    stop = np.maximum(stop, first)
    counts = stop - first
    if counts.sum() == 0:
        return pl.DataFrame(schema=DIRTY_SCHEMA)
    at = np.repeat(first - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(counts.sum())
    origin = origin_of[at]
    return pl.DataFrame(
        {"asset_key": np.repeat(mk, counts), "hour": np.repeat(mt, counts), "known_by": origin,
         "first_known": np.repeat(marks.get_column("first_known").to_numpy(), counts)},
        schema=DIRTY_SCHEMA,
    )


def as_of_levels(versions: pl.DataFrame, dirty: pl.DataFrame) -> pl.DataFrame:
    """Each dirty ``(asset, hour, known_by)``'s hourly mean, min, max and quality counts
    over the readings as known at ``known_by`` (each reading its latest version with
    ``known_at <= known_by``); null mean where nothing of the hour was known. ``versions``
    need only hold the hours some ``known_by`` sees part of (none: nothing known). Each
    mean sums the hour's readings in time order, so it does not depend on which other
    rows the call computes."""
    if dirty.is_empty():
        return pl.DataFrame(schema=OVERRIDES_SCHEMA)
    known = (
        dirty.join(
            versions.with_columns((pl.col("ts") // HOUR_US * HOUR_US).alias("hour")),
            on=["asset_key", "hour"],
        )
        .filter(pl.col("known_at") <= pl.col("known_by"))
        .sort("known_at")
        .group_by("asset_key", "hour", "known_by", "ts")
        .agg(pl.col("value").last(), pl.col("quality").last())
        # In time order, whatever order the group-by left: a mean over three readings or
        # more depends on the order of its sum, and online (one origin) must equal the
        # export (every origin) bit for bit.
        .sort("ts")
        .group_by("asset_key", "hour", "known_by")
        .agg(
            mean=pl.col("value").mean(),
            min=pl.col("value").min(),
            max=pl.col("value").max(),
            estimated=(pl.col("quality") == 1).sum().cast(pl.Int64),
            edited=(pl.col("quality") == 2).sum().cast(pl.Int64),
        )
    )
    return (
        dirty.join(known, on=["asset_key", "hour", "known_by"], how="left")
        .select(list(OVERRIDES_SCHEMA))
        .cast(OVERRIDES_SCHEMA)  # type: ignore[arg-type]
    )


def _stats(columns: np.ndarray, cols: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean (>= 1 value) and sample std (>= 2) over the rows ``cols`` of ``columns`` (one
    row per input, one column per output; rows contiguous), summed in the order of
    ``cols`` exactly as ``compute._window_stats`` does."""
    n = columns.shape[1]
    total, count, squares = np.zeros(n), np.zeros(n), np.zeros(n)
    present = {j: (~np.isnan(columns[j])).astype(np.float64) for j in cols}
    filled = {j: np.where(present[j] > 0, columns[j], 0.0) for j in cols}
    for j in cols:
        total += filled[j]
        count += present[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count >= 1, total / count, np.nan)
        d = np.empty(n)
        for j in cols:
            np.subtract(filled[j], mean, out=d)
            np.multiply(d, d, out=d)
            np.multiply(d, present[j], out=d)
            squares += d
        std = np.where(count >= 2, np.sqrt(squares / (count - 1)), np.nan)
    return mean, std


def _weather_as_known(
    keys: np.ndarray,
    hours: np.ndarray,
    known_by: np.ndarray,
    assets: pl.DataFrame,
    versions: pl.DataFrame,
    wanted: list[str],
) -> dict[str, np.ndarray]:
    """``compute._weather``'s rule (the latest weather at or before T, at most
    ``WEATHER_MAX_AGE_HOURS`` old) over the versions known by each row's ``known_by``:
    the latest ``ts`` with a version known by then, and its latest such version. The
    assets of a location share their ``(T, known_by)`` pairs: each is solved once."""
    values = {f: np.full(len(keys), np.nan) for f in wanted}
    for (location,), asset_keys in _group_keys(assets, "location_id").items():
        if location is None:
            continue
        rows = np.flatnonzero(np.isin(keys, np.asarray(asset_keys, dtype=np.int64)))
        obs = versions.filter(pl.col("location_id") == location).sort("ts", "known_at")
        if not len(rows) or obs.is_empty():
            continue
        if len(rows) <= len(asset_keys) * 64:  # few rows: as they are
            which = np.arange(len(rows))
            t, k = hours[rows], known_by[rows]
        else:
            pairs = pl.DataFrame({"t": hours[rows], "k": known_by[rows]})
            distinct = pairs.unique().with_row_index("u")
            which = np.empty(len(rows), dtype=np.int64)
            hit = pairs.with_row_index("i").join(distinct, on=["t", "k"])
            which[hit.get_column("i").to_numpy()] = hit.get_column("u").to_numpy()
            t, k = distinct.get_column("t").to_numpy(), distinct.get_column("k").to_numpy()
        best = weather_version_at(
            obs.get_column("ts").to_numpy(), obs.get_column("known_at").to_numpy(), t, k
        )
        found = best >= 0
        for f in wanted:
            column = obs.get_column(f).fill_null(np.nan).to_numpy()
            per_pair = np.full(len(t), np.nan)
            per_pair[found] = column[best[found]]
            values[f][rows] = per_pair[which]
    return values


def weather_version_at(
    ts: np.ndarray, known: np.ndarray, t: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """For each pair ``(t[i], k[i])``, the index into one location's versions (``ts``,
    ``known`` sorted by ts, known_at) of the weather the rule picks: among the versions
    with ts in ``[t - WEATHER_MAX_AGE_HOURS, t]`` known by ``k``, the last (latest ts,
    then latest version); -1 for none."""
    max_age = WEATHER_MAX_AGE_HOURS * HOUR_US
    lo = np.searchsorted(ts, t - max_age, side="left")
    hi = np.searchsorted(ts, t, side="right")
    counts = np.maximum(hi - lo, 0)
    owner = np.repeat(np.arange(len(t)), counts)
    offsets = np.cumsum(np.r_[0, counts[:-1]])
    cand = np.repeat(lo - offsets, counts) + np.arange(counts.sum())
    score = np.where(known[cand] <= k[owner], cand, -1)
    best = np.full(len(t), -1)
    some = counts > 0
    if some.any():
        best[some] = np.maximum.reduceat(score, offsets[some])
    return best


def window_features(
    window: np.ndarray,
    rv: np.ndarray,
    horizon: np.ndarray,
    target_hour: tuple[np.ndarray, np.ndarray, np.ndarray],
    wanted_set: set[str],
) -> dict[str, np.ndarray]:
    """The load features of each row from its view's window (``window[j, v]``: hour
    ``O - (j + 1)h`` of view ``v``; ``rv`` the view of each row) and its target hour's
    ``(level, min, max)``: lags, same hour on previous days, rolling windows, and the
    judged-hour features (NaN = null)."""
    level_t, low_t, high_t = target_hour
    n = len(rv)
    values: dict[str, np.ndarray] = {"value": level_t, "hourly_min": low_t, "hourly_max": high_t}
    for k in (1, 24, 48, 168):
        j = k - horizon - 1
        ok = j >= 0
        lag = np.full(n, np.nan)
        lag[ok] = window[j[ok], rv[ok]]  # the row's view, hour k - h - 1 back
        values[f"lag_{k}h"] = lag
    if wanted_set & {"hourly_avg", "hourly_std"}:
        # L(T - 24h*d), d = 1..7, in that order; an hour not complete before O is missing
        # (NaN adds exactly nothing, as a missing hour does in the plain pipeline).
        same = np.full((len(SAME_HOUR_DAYS), n), np.nan)
        for i, d in enumerate(SAME_HOUR_DAYS):
            j = 24 * d - horizon - 1
            ok = j >= 0
            same[i, ok] = window[j[ok], rv[ok]]
        values["hourly_avg"], values["hourly_std"] = _stats(same, range(len(SAME_HOUR_DAYS)))
    for hours in (24, 168):
        needs = {f"rolling_{hours}h_avg", f"rolling_{hours}h_std"}
        if hours == 24:
            needs.add("z_score_24h")
        if wanted_set & needs:
            mean, std = _stats(window, range(hours))
            values[f"rolling_{hours}h_avg"], values[f"rolling_{hours}h_std"] = mean[rv], std[rv]
    with np.errstate(invalid="ignore", divide="ignore"):
        if "z_score_24h" in wanted_set:
            std = values["rolling_24h_std"]
            z = (values["value"] - values["rolling_24h_avg"]) / std
            values["z_score_24h"] = np.where(std != 0, z, np.nan)
        values["deviation_from_lag_168h"] = values["value"] - values["lag_168h"]
    return values


def compute_origin_features(
    *,
    rollups: pl.DataFrame,
    rows: pl.DataFrame,
    assets: pl.DataFrame,
    weather: pl.DataFrame,
    features: Sequence[str],
    lookback_hours: int,
    include_target: bool,
    as_known: AsKnown,
    overrides: pl.DataFrame,
    marks: pl.DataFrame,
) -> pl.DataFrame:
    """Feature rows for ``rows`` (``asset_key, origin, hour``; ``hour`` = T, on hour
    bounds, ``0 <= T - O <= 168h``).

    ``rollups`` (current ``asset_key, hour, mean`` and, for judged sets, ``min, max``) cover
    ``[min O - 168h, max T]``; ``weather`` is ``WEATHER_SCHEMA`` (current) for ``"latest"``,
    else every version (``WEATHER_VERSIONS_SCHEMA``); ``overrides`` are ``as_of_levels``
    of ``dirty_hours`` (and, for a time K, of the target hours known after K); ``marks``
    the hours with late or non-actual readings (``HOUR_MARKS_SCHEMA``: ``estimated`` and
    ``edited`` above 0 when a current reading of the hour has that quality).

    Returns ``asset_key, origin, hour, horizon``, the features in order, and with
    ``include_target`` ``target`` (L(T) as known now, or at K) and ``target_quality``,
    sorted by asset, origin, hour.
    """
    wanted = list(features)
    wanted_set = set(wanted)
    rows = _sorted_distinct(rows)
    rk = rows.get_column("asset_key").to_numpy()
    ro = rows.get_column("origin").to_numpy()
    rt = rows.get_column("hour").to_numpy()
    n = len(rk)
    if as_known == "latest":
        rknow = np.full(n, LATEST, dtype=np.int64)
    elif as_known == "origin":
        rknow = ro
    else:
        rknow = np.full(n, int(as_known), dtype=np.int64)
    horizon = (rt - ro) // HOUR_US

    # The hourly grid over every asset's origins and targets, WINDOW hours of padding: its
    # first origin (rows are sorted by asset and origin) and last target set an asset's
    # extent.
    first = np.flatnonzero(np.r_[True, rk[1:] != rk[:-1]]) if n else np.zeros(0, np.int64)
    spots = pl.DataFrame(
        {"asset_key": np.r_[rk[first], rk[first]],
         "hour": np.r_[ro[first], np.maximum.reduceat(rt, first) if n else rt[:0]]},
        schema={"asset_key": pl.Int64, "hour": pl.Int64},
    )
    grid = dense_grid(rollups, spots, WINDOW)
    gcode = _code(grid.asset_key, grid.hour)

    def pos(keys: np.ndarray, hrs: np.ndarray) -> np.ndarray:
        return np.searchsorted(gcode, _code(keys, hrs))

    # Views: one per (asset, O, known_by), WINDOW hours before O.
    # Rows are sorted by asset and origin, and a row's known_by follows from its origin:
    # a view starts wherever (asset, origin) changes.
    starts = np.r_[True, (rk[1:] != rk[:-1]) | (ro[1:] != ro[:-1])] if n else np.zeros(0, bool)
    rv = np.cumsum(starts) - 1
    vk, vo, vknow = rk[starts], ro[starts], rknow[starts]
    views = pl.DataFrame({"asset_key": vk, "origin": vo, "known_by": vknow})
    ov = overrides.filter(pl.col("known_by") < LATEST)
    level = grid.level
    if as_known not in ("latest", "origin") and not ov.is_empty():
        # One knowledge time K for every view: the hours as known at K replace the
        # current ones on the grid itself, once.
        level = level.copy()
        level[pos(ov.get_column("asset_key").to_numpy(), ov.get_column("hour").to_numpy())] = (
            ov.get_column("mean").fill_null(np.nan).to_numpy()
        )
    # window[j, v]: hour O - (j + 1)h of view v (a row per hour back, contiguous).
    window = level[pos(vk, vo)[None, :] - 1 - np.arange(WINDOW)[:, None]]
    if as_known == "origin" and not ov.is_empty() and len(vk):
        _apply_overrides(window, views, ov)

    # The target hour itself: current, or as known at K (a target is known "latest"
    # unless as_known is a time K).
    tpos = pos(rk, rt)
    level_t, low_t, high_t = grid.level[tpos], grid.low[tpos], grid.high[tpos]
    est_t, edit_t = _current_quality(marks, rk, rt)
    tov = ov if isinstance(as_known, int) else ov.clear()
    if not tov.is_empty():
        hit = (
            pl.DataFrame({"asset_key": rk, "hour": rt, "known_by": rknow, "row": np.arange(n)})
            .join(tov, on=["asset_key", "hour", "known_by"], how="inner")
        )
        at = hit.get_column("row").to_numpy()
        level_t[at] = hit.get_column("mean").fill_null(np.nan).to_numpy()
        low_t[at] = hit.get_column("min").fill_null(np.nan).to_numpy()
        high_t[at] = hit.get_column("max").fill_null(np.nan).to_numpy()
        est_t[at] = hit.get_column("estimated").fill_null(0).to_numpy()
        edit_t[at] = hit.get_column("edited").fill_null(0).to_numpy()

    values = window_features(window, rv, horizon, (level_t, low_t, high_t), wanted_set)

    index = _HourIndex(rk, rt)
    if wanted_set & set(CALENDAR):
        values.update(_calendar(index, assets, wanted_set))
    weather_cols = [f for f in WEATHER_FIELDS if f in wanted_set]
    if weather_cols:
        if as_known == "latest":
            values.update(_weather(index, assets, weather, weather_cols))
        else:
            values.update(_weather_as_known(rk, rt, rknow, assets, weather, weather_cols))

    return feature_frame(rk, ro, rt, horizon, values, wanted, lookback_hours,
                         (level_t, est_t, edit_t) if include_target else None)


def feature_frame(
    rk: np.ndarray,
    ro: np.ndarray,
    rt: np.ndarray,
    horizon: np.ndarray,
    values: dict[str, np.ndarray],
    wanted: list[str],
    lookback_hours: int,
    target: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> pl.DataFrame:
    """The rows as ``compute_origin_features`` returns them: keys, horizon, the ``wanted``
    features of ``values`` (NaN / -1 = null; nulled out of the lookback) and, with
    ``target`` (``L(T)``, estimated and edited counts), ``target`` and
    ``target_quality``."""
    n = len(rk)
    columns = [
        pl.Series("asset_key", rk),
        pl.Series("origin", ro),
        pl.Series("hour", rt),
        pl.Series("horizon", horizon.astype(np.int32)),
    ]
    for name in wanted:
        feature = CATALOG[name]
        reach = np.full(n, feature.horizon_hours)
        if name.startswith(_TARGET_RELATIVE):
            reach = reach - horizon
        out_of_reach = reach > lookback_hours
        if feature.dtype == "int":
            # Small integers (-1 = null) through float64 and NaN: exact, and a cast instead
            # of a replace (an expression: most of the cost of a row of an online get).
            col = values[name].astype(np.float64)
            col[(col == -1) | out_of_reach] = np.nan
            columns.append(pl.Series(name, col, nan_to_null=True).cast(pl.Int32))
        else:
            col = np.where(out_of_reach, np.nan, values[name])
            columns.append(pl.Series(name, col, nan_to_null=True))
    if target is not None:
        level_t, est_t, edit_t = target
        columns.append(pl.Series("target", level_t, nan_to_null=True))
        code = np.where(est_t > 0, 1, np.where(edit_t > 0, 2, 0))
        missing = np.isnan(level_t)  # no target, no quality
        if n <= _FEW_ROWS:  # a few rows (online): names from a list, no expression
            names = [None if m else QUALITIES[c]
                     for c, m in zip(code.tolist(), missing.tolist(), strict=True)]
            columns.append(pl.Series("target_quality", names, dtype=pl.String))
        else:
            columns.append(
                pl.Series("target_quality", code, dtype=pl.Int64)
                .replace_strict(dict(enumerate(QUALITIES)), return_dtype=pl.String)
                .set(pl.Series(missing), None)
            )
    return pl.DataFrame(columns)


def _sorted_distinct(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (``asset_key, origin, hour``) distinct and sorted; as given when they
    already are (a check in one pass, no sort)."""
    k, o, t = (rows.get_column(c).to_numpy() for c in ("asset_key", "origin", "hour"))
    if len(k) > 1:
        dk, do, dt = np.diff(k), np.diff(o), np.diff(t)
        increasing = (dk > 0) | ((dk == 0) & ((do > 0) | ((do == 0) & (dt > 0))))
        if not increasing.all():
            return rows.unique().sort("asset_key", "origin", "hour")
    return rows


def _apply_overrides(window: np.ndarray, views: pl.DataFrame, ov: pl.DataFrame) -> None:
    """Set ``window[j, v]`` to the as-known value of hour ``O - (j + 1)h`` for the view
    ``v`` of origin ``O`` known at ``O`` (``as_known = "origin"``: an override's
    ``known_by`` is the origin of the one view it belongs to; views are sorted and
    distinct by asset and origin)."""
    vcode = _code(views.get_column("asset_key").to_numpy(), views.get_column("origin").to_numpy())
    known_by = ov.get_column("known_by").to_numpy()
    want = _code(ov.get_column("asset_key").to_numpy(), known_by)
    v = np.clip(np.searchsorted(vcode, want), 0, max(len(vcode) - 1, 0))
    j = (known_by - ov.get_column("hour").to_numpy()) // HOUR_US - 1
    hit = (vcode[v] == want) & (j >= 0) & (j < WINDOW) if len(vcode) else np.zeros(0, bool)
    if hit.any():
        window[j[hit], v[hit]] = ov.get_column("mean").fill_null(np.nan).to_numpy()[hit]


def _current_quality(
    marks: pl.DataFrame, keys: np.ndarray, hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Whether (above 0) each ``(key, hour)`` has estimated and edited current readings."""
    est, edit = np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=np.int64)
    if marks.is_empty() or not len(keys):
        return est, edit
    mcode = _code(marks.get_column("asset_key").to_numpy(), marks.get_column("hour").to_numpy())
    estimated = marks.get_column("estimated").to_numpy()
    edited = marks.get_column("edited").to_numpy()
    if len(mcode) > 1 and not (np.diff(mcode) > 0).all():  # marks come sorted from the store
        order = np.argsort(mcode, kind="stable")
        mcode, estimated, edited = mcode[order], estimated[order], edited[order]
    want = _code(keys, hours)
    at = np.clip(np.searchsorted(mcode, want), 0, len(mcode) - 1)
    hit = mcode[at] == want
    est[hit] = estimated[at[hit]]
    edit[hit] = edited[at[hit]]
    return est, edit
