"""Typed columns from parsed JSON items: the one place that turns ``{"asset_id", "ts",
"value"}`` objects (HTTP bodies, stream messages) into the store's columns.

Each column of a batch is described once (``Column``: its name and whether it holds a name,
an instant or a number); the parser reads every item's value for it, checks the JSON
types in one pass over the column (strict: ``true`` and ``"1.5"`` are not numbers, a
timestamp is an ISO 8601 string with a zone) and converts the column as a whole. An item
that cannot be read is not an error here: its cells become null and the problem is
returned, by row, for ``aihub.services.validation`` to report in row order with its own
rules. Missing keys and JSON ``null`` are nulls (the rules say "missing"). A new optional
per-row column is one more ``Column``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import polars as pl

from aihub.features.frames import WEATHER_FIELDS
from aihub.services.validation import RowProblem
from aihub.timeutil import to_us

__all__ = [
    "READINGS_COLUMNS",
    "WEATHER_COLUMNS",
    "Column",
    "drop_absent",
    "frame_from_items",
    "parse_iso_times",
]

Kind = Literal["name", "time", "number"]

NO_ZONE = "timestamp has no timezone; add 'Z' or an offset like +01:00"
NOT_ISO = "not an ISO 8601 timestamp"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    required: bool = True
    # Left out of a batch's frame when no row gives it (``drop_absent``).
    optional: bool = False


READINGS_COLUMNS = (
    Column("asset_id", "name"),
    Column("ts", "time"),
    Column("value", "number"),
    Column("known_at", "time", required=False, optional=True),  # default: commit time
    Column("quality", "name", required=False, optional=True),  # actual|estimated|edited
)
WEATHER_COLUMNS = (
    Column("location_id", "name"),
    Column("ts", "time"),
    *(Column(f, "number", required=False) for f in WEATHER_FIELDS),
    Column("issued_at", "time", required=False, optional=True),  # default: commit time
)

_DTYPES: dict[Kind, type[pl.DataType]] = {
    "name": pl.String,
    "time": pl.Int64,
    "number": pl.Float64,
}
_NONE = type(None)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


# -- one column -----------------------------------------------------------------------------


_ZULU = "%Y-%m-%dT%H:%M:%SZ"  # the usual shape, and Polars' fastest path


def parse_iso_times(text: pl.Series) -> tuple[pl.Series, list[tuple[int, str]]]:
    """ISO 8601 strings with a zone as UTC epoch microseconds (Int64), and ``(index,
    reason)`` for every non-null string that is not one (null in the result). Vectorised
    passes by Polars (``...Z`` first, then RFC 3339 with any offset or fraction) parse the
    common shapes; only strings both leave unparsed are looked at one by one (Python's
    ``datetime.fromisoformat``, an offset required)."""
    zulu = text.str.to_datetime(_ZULU, strict=False, time_unit="us", cache=False)
    out = zulu.dt.epoch("us").alias(text.name)  # naive values of a literal 'Z': UTC
    left = text.is_not_null() & zulu.is_null()
    if not left.any():
        return out, []
    index = left.arg_true()
    rfc = text.gather(index).str.to_datetime(
        "%+", strict=False, time_unit="us", time_zone="UTC", cache=False
    )
    out = out.scatter(index, rfc.dt.epoch("us"))
    rest = index.filter(rfc.is_null()).to_list()
    if not rest:
        return out, []
    problems: list[tuple[int, str]] = []
    fixes: dict[int, int] = {}
    for i, value in zip(rest, text.gather(rest).to_list(), strict=True):
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            problems.append((i, NOT_ISO))
            continue
        if ts.tzinfo is None or ts.utcoffset() is None:
            problems.append((i, NO_ZONE))
            continue
        try:
            fixes[i] = to_us(ts)
        except OverflowError:
            problems.append((i, NOT_ISO))
    if fixes:
        out = out.scatter(list(fixes), pl.Series(list(fixes.values()), dtype=pl.Int64))
    return out, problems


def _strings(name: str, values: list[object]) -> pl.Series | None:
    """``values`` as a String series if every one is a string or None (Polars checks the
    types as it builds the column), else None."""
    try:
        return pl.Series(name, values, dtype=pl.String, strict=True)
    except TypeError:
        return None


def _names(name: str, values: list[object]) -> tuple[pl.Series, list[tuple[int, str]]]:
    strings = _strings(name, values)
    if strings is not None:
        return strings, []
    problems = [
        (i, f"must be a string, not {_json_type(v)}")
        for i, v in enumerate(values)
        if v is not None and type(v) is not str
    ]
    clean = [v if type(v) is str else None for v in values]
    return pl.Series(name, clean, dtype=pl.String), problems


def _times(name: str, values: list[object]) -> tuple[pl.Series, list[tuple[int, str]]]:
    strings = _strings(name, values)
    if strings is not None:
        return parse_iso_times(strings)
    problems = [
        (i, f"must be an ISO 8601 string with a zone, not {_json_type(v)}")
        for i, v in enumerate(values)
        if v is not None and type(v) is not str
    ]
    clean = [v if type(v) is str else None for v in values]
    out, bad = parse_iso_times(pl.Series(name, clean, dtype=pl.String))
    return out, sorted(problems + bad)


def _numbers(name: str, values: list[object]) -> tuple[pl.Series, list[tuple[int, str]]]:
    if set(map(type, values)) <= {float, int, _NONE}:
        try:
            return pl.Series(name, values, dtype=pl.Float64, strict=True), []
        except (OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
            pass  # an integer beyond a float's range: found below
    problems: list[tuple[int, str]] = []
    clean: list[float | None] = []
    for i, v in enumerate(values):
        if v is None:
            clean.append(None)
        elif type(v) is float or type(v) is int:
            try:
                clean.append(float(v))
            except OverflowError:
                problems.append((i, "number out of range"))
                clean.append(None)
        else:
            problems.append((i, f"must be a number, not {_json_type(v)}"))
            clean.append(None)
    return pl.Series(name, clean, dtype=pl.Float64), problems


_CONVERT = {"name": _names, "time": _times, "number": _numbers}


# -- items ----------------------------------------------------------------------------------


def _shape(items: Sequence[object], columns: Sequence[Column]) -> list[tuple[int, str, str]]:
    """Problems with items as a whole: not an object, or a key no column reads."""
    allowed = {c.name for c in columns}
    names = ", ".join(c.name for c in columns)
    out: list[tuple[int, str, str]] = []
    for i, item in enumerate(items):
        if type(item) is not dict:
            out.append((i, "", f"must be a JSON object, not {_json_type(item)}"))
            continue
        unknown = item.keys() - allowed
        if unknown:
            key = str(min(unknown))
            out.append((i, key, f"unknown field '{key[:80]}' (allowed: {names})"))
    return out


def _read(
    items: Sequence[object], read: Sequence[Column]
) -> tuple[dict[str, list[object]], list[tuple[int, str, str]]]:
    """Every column's values, one list each (None where an item lacks the key), and the
    problems with items as a whole."""
    if set(map(type, items)) <= {dict}:
        base = [c for c in read if not c.optional]
        if len(base) < len(read) and set(map(len, items)) <= {len(base)}:  # type: ignore[arg-type]
            try:  # every item holds exactly the usual columns, none of the optional ones
                values = {c.name: [item[c.name] for item in items] for c in base}  # type: ignore[index]
                values.update({c.name: [None] * len(items) for c in read if c.optional})
                return values, []
            except KeyError:
                pass
        if set(map(len, items)) <= {len(read)}:  # type: ignore[arg-type]
            try:  # the common case, every item holds exactly the columns: plain lookups
                return {c.name: [item[c.name] for item in items] for c in read}, []  # type: ignore[index]
            except KeyError:
                pass
        if set().union(*items) <= {c.name for c in read}:  # type: ignore[arg-type]
            return {c.name: [item.get(c.name) for item in items] for c in read}, []  # type: ignore[attr-defined]
    values = {
        c.name: [item.get(c.name) if type(item) is dict else None for item in items]
        for c in read
    }
    return values, _shape(items, read)


def frame_from_items(
    items: Sequence[object],
    columns: Sequence[Column],
    *,
    constants: Mapping[str, str] | None = None,
    offset: int = 0,
) -> tuple[pl.DataFrame, list[RowProblem]]:
    """``items`` (parsed JSON) as a frame with one typed column per ``columns`` entry, and
    each unreadable item's first problem (rows numbered from ``offset``). ``constants``
    fill a column for every row instead of reading it from the items (e.g. the asset of a
    stream topic); an item naming such a key has an unknown field."""
    constants = constants or {}
    read = [c for c in columns if c.name not in constants]
    values, shape = _read(items, read)
    order = {c.name: i for i, c in enumerate(read)}
    found: list[tuple[int, int, str, str]] = [(r, -1, f, why) for r, f, why in shape]
    series: dict[str, pl.Series] = {}
    for col in read:
        s, bad = _CONVERT[col.kind](col.name, values.pop(col.name))
        series[col.name] = s
        found.extend((r, order[col.name], col.name, why) for r, why in bad)
    for name, value in constants.items():
        series[name] = pl.Series(name, [value] * len(items), dtype=pl.String)
    frame = pl.DataFrame([series[c.name] for c in columns])
    found.sort()  # by row, then the row's first field: what ``with_problems`` keeps
    return frame, [RowProblem(r + offset, f, why) for r, _, f, why in found]


def drop_absent(frame: pl.DataFrame, columns: Sequence[Column]) -> pl.DataFrame:
    """``frame`` without the ``optional`` columns no row gives a value (or a problem)."""
    gone = [
        c.name for c in columns
        if c.optional and c.name in frame.columns
        and frame.get_column(c.name).null_count() == frame.height
    ]
    return frame.drop(gone) if gone else frame


def dtypes(columns: Sequence[Column]) -> dict[str, type[pl.DataType]]:
    return {c.name: _DTYPES[c.kind] for c in columns}
