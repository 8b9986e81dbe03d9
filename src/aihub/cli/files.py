"""Reading readings and weather from CSV or Parquet files with column mapping.

Timestamps must carry a zone; a file of naive local times needs ``--timezone``. Every
problem names the file row (0-based, header excluded) and the column.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from aihub.errors import InvalidInput
from aihub.features.frames import WEATHER_FIELDS
from aihub.timeutil import is_valid_timezone

_ZONE_SUFFIX = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"


def read_table(path: Path, fmt: str | None) -> pl.DataFrame:
    if not path.exists():
        raise InvalidInput(f"file not found: {path}")
    kind = (fmt or path.suffix.lstrip(".")).lower()
    try:
        if kind in ("parquet", "pq"):
            return pl.read_parquet(path)
        if kind in ("csv", "txt"):
            return pl.read_csv(path, infer_schema_length=10_000, try_parse_dates=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InvalidInput(f"{path}: cannot read as {kind}: {exc}") from exc
    raise InvalidInput(f"{path}: unknown format '{kind}'; use --format csv or parquet")


def _bad_row(frame: pl.DataFrame, mask: pl.Series, column: str, why: str) -> None:
    rows = frame.with_row_index("_row").filter(mask)
    if not rows.is_empty():
        row = int(rows["_row"][0])
        raise InvalidInput(
            f"row {row}, column '{column}': {why} ({rows.height} such row(s); nothing stored)",
            details={"row": row, "field": column},
        )


def _require(frame: pl.DataFrame, column: str, option: str) -> None:
    if column not in frame.columns:
        raise InvalidInput(
            f"column '{column}' not found (columns: {frame.columns}); map it with {option}"
        )


def _localize(frame: pl.DataFrame, naive: pl.Series, column: str, timezone: str) -> pl.Series:
    """Naive local times in ``timezone``; a time the DST switch skips or repeats is an error
    naming its row, never a guess."""
    local = naive.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
    _bad_row(
        frame,
        naive.is_not_null() & local.is_null(),
        column,
        f"local time does not exist or is ambiguous in {timezone}",
    )
    return local


def parse_timestamps(frame: pl.DataFrame, column: str, timezone: str | None) -> pl.Series:
    """Epoch microseconds (UTC) of ``column``; naive values need ``timezone``."""
    if timezone is not None and not is_valid_timezone(timezone):
        raise InvalidInput(f"--timezone: '{timezone}' is not an IANA timezone name")
    col = frame.get_column(column)
    if isinstance(col.dtype, pl.Datetime):
        if col.dtype.time_zone is None:
            if timezone is None:
                raise InvalidInput(
                    f"column '{column}' holds naive timestamps; state their zone with --timezone"
                )
            col = _localize(frame, col, column, timezone)
        out = col.dt.convert_time_zone("UTC").dt.cast_time_unit("us").dt.epoch("us")
    elif col.dtype == pl.String:
        text = col.str.strip_chars()
        _bad_row(frame, text.is_null() | (text == ""), column, "missing timestamp")
        has_zone = text.str.contains(_ZONE_SUFFIX)
        if timezone is None:
            _bad_row(
                frame, ~has_zone, column, "timestamp has no timezone; add one or pass --timezone"
            )
        # Parse zoned and naive values apart: the format is inferred per group, so a file
        # mixing both (allowed with --timezone) keeps each row's meaning.
        aware = _to_datetime(pl.select(pl.when(has_zone).then(text)).to_series(), "UTC")
        parsed = aware
        if timezone is not None:
            naive = _to_datetime(pl.select(pl.when(~has_zone).then(text)).to_series(), None)
            local = _localize(frame, naive, column, timezone)
            parsed = pl.select(
                pl.when(has_zone).then(aware).otherwise(local.dt.convert_time_zone("UTC"))
            ).to_series()
        _bad_row(frame, parsed.is_null(), column, "not a valid timestamp")
        out = parsed.dt.epoch("us")
    else:
        raise InvalidInput(f"column '{column}' has type {col.dtype}; expected timestamps")
    return out.alias("ts")


def _to_datetime(text: pl.Series, time_zone: str | None) -> pl.Series:
    """``text`` parsed with an inferred format (nulls where it does not parse)."""
    if text.null_count() == text.len():
        return pl.Series(text.name, [None] * text.len(), dtype=pl.Datetime("us", time_zone))
    try:
        return text.str.to_datetime(time_zone=time_zone, strict=False, time_unit="us")
    except pl.exceptions.ComputeError:  # no format fits the first value: it is the bad row
        return pl.Series(text.name, [None] * text.len(), dtype=pl.Datetime("us", time_zone))


def _values(frame: pl.DataFrame, column: str, *, required: bool) -> pl.Series:
    """``column`` as floats; NaN and infinities (and, if ``required``, empty cells) are
    reported here, by file row and file column, not later under the internal field name."""
    col = frame.get_column(column)
    if col.dtype == pl.String:
        parsed = col.str.strip_chars().cast(pl.Float64, strict=False)
        _bad_row(frame, parsed.is_null() & col.is_not_null(), column, "not a number")
    else:
        try:
            parsed = col.cast(pl.Float64)
        except pl.exceptions.PolarsError as exc:
            raise InvalidInput(f"column '{column}': not numeric ({col.dtype})") from exc
    if required:
        _bad_row(frame, parsed.is_null(), column, "missing value")
    _bad_row(
        frame,
        (parsed.is_nan() | parsed.is_infinite()).fill_null(False),
        column,
        "not a finite number",
    )
    return parsed


def _ids(frame: pl.DataFrame, column: str, constant: str | None, what: str) -> pl.Series:
    """The id column, or ``constant`` for every row of a one-asset/one-location file."""
    if constant is not None:
        return pl.Series(f"{what}_id", [constant] * frame.height, dtype=pl.String)
    _require(frame, column, f"--{what}-col (or give --{what}-id for a one-{what} file)")
    return frame.get_column(column).cast(pl.String)


def readings_from_file(
    path: Path,
    *,
    fmt: str | None,
    asset_col: str,
    ts_col: str,
    value_col: str,
    asset_id: str | None,
    timezone: str | None,
) -> pl.DataFrame:
    frame = read_table(path, fmt)
    _require(frame, ts_col, "--ts-col")
    _require(frame, value_col, "--value-col")
    return pl.DataFrame(
        {
            "asset_id": _ids(frame, asset_col, asset_id, "asset"),
            "ts": parse_timestamps(frame, ts_col, timezone),
            "value": _values(frame, value_col, required=True),
        }
    )


def weather_from_file(
    path: Path,
    *,
    fmt: str | None,
    location_col: str,
    ts_col: str,
    location_id: str | None,
    timezone: str | None,
) -> pl.DataFrame:
    frame = read_table(path, fmt)
    _require(frame, ts_col, "--ts-col")
    locations = _ids(frame, location_col, location_id, "location")
    present = [f for f in WEATHER_FIELDS if f in frame.columns]
    if not present:
        raise InvalidInput(f"no weather columns found; expected some of {list(WEATHER_FIELDS)}")
    data = {"location_id": locations, "ts": parse_timestamps(frame, ts_col, timezone)}
    for f in WEATHER_FIELDS:
        data[f] = (
            _values(frame, f, required=False)
            if f in present
            else pl.Series(f, [None] * frame.height, dtype=pl.Float64)
        )
    return pl.DataFrame(data)
