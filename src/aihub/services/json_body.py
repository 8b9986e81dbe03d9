"""JSON ingest bodies straight into columns, in bounded memory.

``{"tenant_id": "t", "readings": [{...}, {...}, ...]}``: parsing the whole body into Python
objects costs ~550 bytes per reading. Instead the array's bytes are cut into pieces of
about ``PIECE_BYTES`` at element boundaries (``}`` ``,`` ``{``), each piece is read into
typed columns at once, and only the columns are kept: by Arrow's JSON reader (no Python
object per value) when the piece is clean, else by orjson and ``aihub.services.columns``,
which name each row's type problem. The rest of the body (the array replaced by a random
marker) is parsed on its own and must hold the marker exactly where the array was.

Every cut is checked rather than trusted: a piece that starts outside a string and is
valid JSON on its own ends outside a string, so a boundary found inside a string makes
its piece invalid. Any doubt (an invalid piece, a key spelled with escapes, an unusual
layout) falls back to parsing the whole body at once, which gives exactly the answer the
pieces would have. Non-finite literals (``NaN``, ``Infinity``), which orjson refuses, are
read by a tolerant parser so the rules can name their row.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.json as pa_json
import pydantic_core

from aihub.errors import InvalidInput, PayloadTooLarge
from aihub.services.arrow_body import columns_from_table
from aihub.services.columns import (
    READINGS_COLUMNS,
    WEATHER_COLUMNS,
    Column,
    drop_absent,
    dtypes,
    frame_from_items,
)
from aihub.services.validation import RowProblem, with_problems

__all__ = [
    "PIECE_BYTES",
    "JsonBatch",
    "parse_json_batch",
    "readings_frame_from_json",
    "weather_frame_from_json",
]

PIECE_BYTES = 1 << 20
_BOUNDARY = re.compile(rb"\}\s*,\s*\{")
_Body = bytes | bytearray


@dataclass(frozen=True, slots=True)
class JsonBatch:
    """A parsed body: its top-level fields but the rows, what ``check_head`` made of them
    (the tenant), and the rows as a frame (with the parser's problems attached, see
    ``with_problems``)."""

    head: dict[str, Any]
    tenant_id: str | None
    frame: pl.DataFrame


HeadCheck = Callable[[dict[str, Any]], str]


def _loads_tolerant(data: _Body) -> Any:
    """JSON that may hold NaN/Infinity (orjson refuses them); 422 if not JSON at all."""
    try:
        return pydantic_core.from_json(bytes(data), allow_inf_nan=True)
    except ValueError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from exc


def _loads(data: _Body) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _loads_tolerant(data)


def _rows_error(key: str, got: object) -> InvalidInput:
    if got is None:
        return InvalidInput(f"{key}: field required",
                            details=[{"field": key, "message": "field required"}])
    return InvalidInput(f"{key}: must be a JSON array of objects",
                        details=[{"field": key, "message": "must be a JSON array"}])


class _TooMany(Exception):
    pass


def _pieces(body: _Body, start: int, end: int) -> Iterator[bytes]:
    """The array content ``body[start:end]`` cut at element boundaries (``}`` ... ``{``)
    into pieces of about ``PIECE_BYTES``."""
    pos = start
    while True:
        cut, following = end, end
        if end - pos > PIECE_BYTES:
            m = _BOUNDARY.search(body, pos + PIECE_BYTES, end)
            if m is not None:
                cut, following = m.start() + 1, m.end() - 1  # after '}', at the next '{'
        yield bytes(body[pos:cut])
        if cut == end:
            return
        pos = following


_ARROW_TYPES = {"name": pa.string(), "time": pa.string(), "number": pa.float64()}


def _piece_by_arrow(
    piece: bytes, columns: Sequence[Column]
) -> tuple[pl.DataFrame, list[RowProblem]] | None:
    """A piece read by Arrow's JSON reader, straight into columns (no Python object per
    value), or None to leave it to orjson. Its compact separators become newlines (one
    object per line); one anywhere else than between two rows puts a raw newline into a
    string or drops a comma inside a row, and either makes the read fail. The reader is
    as strict as the rules want: a JSON type other than the column's (``true``, ``"1.5"``
    for a number, a number for a name), an unknown key or a repeated one is an error, and
    then orjson reads the piece and names the row. Arrow also reads objects with nothing
    between them (``}{``, invalid in an array): one row per separator replaced, or orjson
    decides."""
    lines = piece.replace(b"},{", b"}\n{")
    if b"}, {" in lines:
        lines = lines.replace(b"}, {", b"}\n{")
    separators = lines.count(b"\n") - piece.count(b"\n")
    schema = pa.schema([(c.name, _ARROW_TYPES[c.kind]) for c in columns])
    try:
        table = pa_json.read_json(
            pa.BufferReader(lines),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(lines) + 64),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="error"
            ),
        )
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows != separators + 1:
        return None
    return columns_from_table(table, columns)


def _piece_by_orjson(
    piece: bytes, columns: Sequence[Column], offset: int
) -> tuple[pl.DataFrame, list[RowProblem]] | None:
    """A piece parsed into Python objects (NaN and Infinity allowed), each row's type
    problems named; None if the piece is not JSON (then the whole body decides)."""
    wrapped = b"[" + piece + b"]"
    try:
        items = orjson.loads(wrapped)
    except orjson.JSONDecodeError:
        try:
            items = pydantic_core.from_json(wrapped, allow_inf_nan=True)
        except ValueError:
            return None  # broken JSON, or a cut inside a string
    return frame_from_items(items, columns, offset=offset)


def _by_pieces(
    body: _Body, key: str, columns: Sequence[Column], max_rows: int, check: HeadCheck | None
) -> JsonBatch | None:
    """The fast path; None when the body's layout leaves any doubt."""
    quoted = b'"' + key.encode() + b'"'
    m = re.search(quoted + rb"\s*:\s*\[", body)
    end = body.rfind(b"]") if m else -1
    if m is None or end < m.end():
        return None
    head, tail = bytes(body[: m.end() - 1]), bytes(body[end + 1 :])
    if head.count(quoted) != 1 or quoted in tail:
        return None
    marker = secrets.randbits(60)
    try:
        top = orjson.loads(head + b"[%d]" % marker + tail)
    except orjson.JSONDecodeError:
        return None
    if type(top) is not dict or top.get(key) != [marker]:
        return None
    del top[key]
    tenant = check(top) if check else None  # before any row is parsed
    frames: list[pl.DataFrame] = []
    problems: list[RowProblem] = []
    rows = 0
    for piece in _pieces(body, m.end(), end):
        read = _piece_by_arrow(piece, columns)
        if read is not None:
            frame, found = read
            found = [RowProblem(p.row + rows, p.field, p.reason) for p in found]
        else:
            read = _piece_by_orjson(piece, columns, rows)
            if read is None:
                return None  # the whole body decides
            frame, found = read
        if rows + frame.height > max_rows:
            raise _TooMany
        frames.append(frame)
        problems.extend(found)
        rows += frame.height
    frame = pl.concat(frames, how="vertical", rechunk=False) if len(frames) > 1 else frames[0]
    return JsonBatch(top, tenant, with_problems(drop_absent(frame, columns), problems))


def _whole(
    body: _Body, key: str, columns: Sequence[Column], max_rows: int, check: HeadCheck | None
) -> JsonBatch:
    top = _loads(body)
    if type(top) is not dict:
        raise InvalidInput("the body must be a JSON object")
    items = top.pop(key, None)
    tenant = check(top) if check else None
    if type(items) is not list:
        raise _rows_error(key, items)
    if len(items) > max_rows:
        raise _TooMany
    frame, problems = frame_from_items(items, columns)
    return JsonBatch(top, tenant, with_problems(drop_absent(frame, columns), problems))


def parse_json_batch(
    body: _Body,
    *,
    key: str,
    columns: Sequence[Column],
    max_rows: int,
    noun: str,
    check_head: HeadCheck | None = None,
) -> JsonBatch:
    """``body``, a JSON object whose ``key`` holds the rows, as a ``JsonBatch``.
    ``check_head`` sees the other top-level fields before any row is parsed (it raises for
    a bad or foreign tenant) and returns the tenant. An empty or missing array is a 422;
    more than ``max_rows`` rows a 413 (found while parsing)."""
    try:
        batch = _by_pieces(body, key, columns, max_rows, check_head) or _whole(
            body, key, columns, max_rows, check_head
        )
    except _TooMany:
        raise PayloadTooLarge(
            f"more than {max_rows} {noun} in one batch; the limit is {max_rows} "
            "(AIHUB_MAX_INGEST_ROWS)",
            details={"limit": max_rows},
        ) from None
    if batch.frame.height == 0:
        raise InvalidInput(f"{key}: at least one row is needed",
                           details=[{"field": key, "message": "empty"}])
    return batch


def _items_frame(
    items: _Body | Sequence[object], columns: Sequence[Column], constants: dict[str, str]
) -> pl.DataFrame:
    if isinstance(items, bytes | bytearray):
        parsed = _loads(items)
        items = [parsed] if type(parsed) is dict else parsed
        if type(items) is not list:
            raise InvalidInput("expected a JSON object or an array of objects")
    if not items:
        return pl.DataFrame(schema=dtypes(columns))
    frame, problems = frame_from_items(items, columns, constants=constants)
    return with_problems(drop_absent(frame, columns), problems)


def readings_frame_from_json(
    items: _Body | Sequence[object], *, asset_id: str | None = None
) -> pl.DataFrame:
    """Readings as typed columns (``asset_id``, ``ts`` in UTC epoch microseconds,
    ``value``) from parsed JSON objects or raw JSON bytes (one object or an array of
    them). A row that cannot be read keeps null cells and its problem rides along for
    ``validate_readings``/``split_readings`` to report. With ``asset_id``, every row is
    that asset's and the objects carry only ``ts`` and ``value`` (a stream topic names
    the asset)."""
    return _items_frame(items, READINGS_COLUMNS, {"asset_id": asset_id} if asset_id else {})


def weather_frame_from_json(
    items: _Body | Sequence[object], *, location_id: str | None = None
) -> pl.DataFrame:
    """Like ``readings_frame_from_json`` for weather observations."""
    constants = {"location_id": location_id} if location_id else {}
    return _items_frame(items, WEATHER_COLUMNS, constants)
