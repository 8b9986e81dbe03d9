"""Reading readings and weather from CSV or Parquet files with column mapping.

Timestamps must carry a zone; a file of naive local times needs ``--timezone``. This module
only reads (a whole file, or chunks of bounded size from ``aihub.cli.file_chunks``): cells
it cannot read (a word where a number belongs, a naive or non-existent local time) become
problems of their row, and every rule of a valid row is checked by
``aihub.services.validation``, as for HTTP and streams. Messages name the file row (0-based,
header excluded) and the file's column.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from aihub.cli.file_chunks import read_chunks
from aihub.errors import InvalidInput
from aihub.features.frames import WEATHER_FIELDS
from aihub.services.columns import NO_ZONE, parse_iso_times
from aihub.services.validation import RowProblem, with_problems
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


@dataclass(frozen=True, slots=True)
class FileBatch:
    """A file's rows as the store's columns (with the rows that could not be read carrying
    their problem), and how each field is named in messages (the file's column)."""

    frame: pl.DataFrame
    labels: dict[str, str]


Problems = list[tuple[int, str]]


def _require(frame: pl.DataFrame, column: str, option: str) -> None:
    if column not in frame.columns:
        raise InvalidInput(
            f"column '{column}' not found (columns: {frame.columns}); map it with {option}"
        )


def _localize(naive: pl.Series, timezone: str) -> tuple[pl.Series, Problems]:
    """Naive local times in ``timezone`` as UTC datetimes; a time the DST switch skips or
    repeats is a problem of its row, never a guess."""
    local = naive.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
    gone = (naive.is_not_null() & local.is_null()).arg_true().to_list()
    why = f"local time does not exist or is ambiguous in {timezone}"
    return local.dt.convert_time_zone("UTC"), [(i, why) for i in gone]


def parse_timestamps(
    frame: pl.DataFrame, column: str, timezone: str | None
) -> tuple[pl.Series, Problems]:
    """Epoch microseconds (UTC) of ``column`` and the rows that could not be read; naive
    values need ``timezone``."""
    if timezone is not None and not is_valid_timezone(timezone):
        raise InvalidInput(f"--timezone: '{timezone}' is not an IANA timezone name")
    col = frame.get_column(column)
    if isinstance(col.dtype, pl.Datetime):
        problems: Problems = []
        if col.dtype.time_zone is None:
            if timezone is None:
                raise InvalidInput(
                    f"column '{column}' holds naive timestamps; state their zone with --timezone"
                )
            col, problems = _localize(col, timezone)
        return col.dt.cast_time_unit("us").dt.epoch("us").alias("ts"), problems
    if col.dtype != pl.String:
        raise InvalidInput(f"column '{column}' has type {col.dtype}; expected timestamps")
    text = col.str.strip_chars()
    text = pl.select(pl.when(text != "").then(text)).to_series()
    # Zoned values as everywhere else (the HTTP parser's); naive ones with --timezone.
    out, problems = parse_iso_times(text)
    if timezone is None:
        return out.alias("ts"), [
            (i, f"{why}, or pass --timezone" if why == NO_ZONE else why) for i, why in problems
        ]
    # Naive: what ISO parsing found so, and anything else without a zone suffix (a naive
    # format of the file's own, e.g. "2024/01/31 06:00", with an inferred format).
    zoned = text.str.contains(_ZONE_SUFFIX).fill_null(False)
    naive_rows = [i for i, why in problems if why == NO_ZONE or not zoned[i]]
    problems = [(i, why) for i, why in problems if why != NO_ZONE and zoned[i]]
    if naive_rows:
        naive = _to_datetime(text.gather(naive_rows))
        local, bad = _localize(naive, timezone)
        problems += [(naive_rows[i], why) for i, why in bad]
        unparsed = (naive.is_null() & local.is_null()).arg_true().to_list()
        problems += [(naive_rows[i], "not a valid timestamp") for i in unparsed]
        out = out.scatter(naive_rows, local.dt.epoch("us"))
    return out.alias("ts"), sorted(problems)


def _to_datetime(text: pl.Series) -> pl.Series:
    """Naive ``text`` parsed with an inferred format (nulls where it does not parse)."""
    try:
        return text.str.to_datetime(strict=False, time_unit="us")
    except pl.exceptions.ComputeError:  # no format fits the first value
        return pl.Series(text.name, [None] * text.len(), dtype=pl.Datetime("us"))


def _values(frame: pl.DataFrame, column: str) -> tuple[pl.Series, Problems]:
    """``column`` as floats and the cells that are not numbers; missing and non-finite
    values are left to the rules (``aihub.services.validation``)."""
    col = frame.get_column(column)
    if col.dtype == pl.String:
        parsed = col.str.strip_chars().cast(pl.Float64, strict=False)
        bad = (parsed.is_null() & col.is_not_null() & (col.str.strip_chars() != "")).arg_true()
        return parsed, [(i, "not a number") for i in bad.to_list()]
    if col.dtype == pl.Boolean or not (col.dtype.is_numeric() or col.dtype == pl.Null):
        raise InvalidInput(f"column '{column}': not numeric ({col.dtype})")
    return col.cast(pl.Float64), []


def _ids(frame: pl.DataFrame, column: str, constant: str | None, what: str) -> pl.Series:
    """The id column, or ``constant`` for every row of a one-asset/one-location file."""
    if constant is not None:
        return pl.Series(f"{what}_id", [constant] * frame.height, dtype=pl.String)
    _require(frame, column, f"--{what}-col (or give --{what}-id for a one-{what} file)")
    return frame.get_column(column).cast(pl.String)


def _batch(
    series: dict[str, tuple[pl.Series, Problems]], labels: dict[str, str]
) -> FileBatch:
    frame = pl.DataFrame([s.alias(name) for name, (s, _) in series.items()])
    found = sorted(
        (row, order, name, why)
        for order, (name, (_, problems)) in enumerate(series.items())
        for row, why in problems
    )
    problems = [RowProblem(row, name, why) for row, _, name, why in found]
    return FileBatch(with_problems(frame, problems), labels)


def readings_from_file(path: Path, *, fmt: str | None, **columns: Any) -> FileBatch:
    """The whole file as one batch (small files; ``readings_chunks`` for any size);
    ``columns`` are ``readings_batch``'s options."""
    return readings_batch(read_table(path, fmt), **columns)


def readings_chunks(
    path: Path, *, fmt: str | None, chunk_rows: int, **columns: Any
) -> Iterator[FileBatch]:
    """The file as batches of ``chunk_rows`` rows, read one at a time (rows numbered
    within each batch; the caller knows where it starts)."""
    for frame in read_chunks(path, fmt, chunk_rows):
        yield readings_batch(frame, **columns)


def readings_batch(
    frame: pl.DataFrame,
    *,
    asset_col: str,
    ts_col: str,
    value_col: str,
    asset_id: str | None,
    timezone: str | None,
    known_at_col: str | None = None,
    quality_col: str | None = None,
) -> FileBatch:
    """Readings of ``frame`` in the store's columns: the file's columns named by the
    options (``known_at_col``: knowledge times, e.g. a reading's original arrival, for
    backfills; ``quality_col``: actual/estimated/edited flags)."""
    _require(frame, ts_col, "--ts-col")
    _require(frame, value_col, "--value-col")
    series = {
        "asset_id": (_ids(frame, asset_col, asset_id, "asset"), []),
        "ts": parse_timestamps(frame, ts_col, timezone),
        "value": _values(frame, value_col),
    }
    labels = {
        "asset_id": "--asset-id" if asset_id is not None else f"column '{asset_col}'",
        "ts": f"column '{ts_col}'",
        "value": f"column '{value_col}'",
    }
    if known_at_col is not None:
        _require(frame, known_at_col, "--known-at-col")
        series["known_at"] = parse_timestamps(frame, known_at_col, timezone)
        labels["known_at"] = f"column '{known_at_col}'"
    if quality_col is not None:
        _require(frame, quality_col, "--quality-col")
        quality = frame.get_column(quality_col).cast(pl.String).str.strip_chars().str.to_lowercase()
        series["quality"] = (quality, [])
        labels["quality"] = f"column '{quality_col}'"
    return _batch(series, labels)


def weather_from_file(path: Path, *, fmt: str | None, **columns: Any) -> FileBatch:
    """The whole file as one batch (small files; ``weather_chunks`` for any size);
    ``columns`` are ``weather_batch``'s options."""
    return weather_batch(read_table(path, fmt), **columns)


def weather_chunks(
    path: Path, *, fmt: str | None, chunk_rows: int, **columns: Any
) -> Iterator[FileBatch]:
    """Like ``readings_chunks`` for weather."""
    for frame in read_chunks(path, fmt, chunk_rows):
        yield weather_batch(frame, **columns)


def weather_batch(
    frame: pl.DataFrame,
    *,
    location_col: str,
    ts_col: str,
    location_id: str | None,
    timezone: str | None,
    issued_at_col: str | None = None,
) -> FileBatch:
    """Weather of ``frame`` in the store's columns (any of the weather fields present);
    ``issued_at_col`` names a column of issue times (knowledge times): a forecast archive
    keeps each forecast's issue, an observation its arrival."""
    _require(frame, ts_col, "--ts-col")
    present = [f for f in WEATHER_FIELDS if f in frame.columns]
    if not present:
        raise InvalidInput(f"no weather columns found; expected some of {list(WEATHER_FIELDS)}")
    series = {
        "location_id": (_ids(frame, location_col, location_id, "location"), []),
        "ts": parse_timestamps(frame, ts_col, timezone),
        **{f: _values(frame, f) for f in present},
    }
    labels = {
        "location_id": "--location-id" if location_id is not None else f"column '{location_col}'",
        "ts": f"column '{ts_col}'",
        **{f: f"column '{f}'" for f in present},
    }
    if issued_at_col is not None:
        _require(frame, issued_at_col, "--issued-at-col")
        series["issued_at"] = parse_timestamps(frame, issued_at_col, timezone)
        labels["issued_at"] = f"column '{issued_at_col}'"
    return _batch(series, labels)  # type: ignore[arg-type]
