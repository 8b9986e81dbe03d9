"""Arrow IPC stream and Parquet ingest bodies as typed columns.

Accepted columns (any others are a 422 naming them, as unknown JSON fields are):

- ``asset_id`` / ``location_id``: string, large_string, string_view or a dictionary of
  strings;
- ``ts``: a timestamp with a time zone (any unit; stored as UTC microseconds), or ISO 8601
  strings with a zone. A timestamp type without a zone is a 422;
- ``value`` and the weather fields: any integer, floating point or decimal type
  (booleans and strings are a 422).

Nulls are cells like JSON ``null``: the rules in ``aihub.services.validation`` name their
row. Bytes that are not a readable stream or file (truncated, corrupt, another format) are
a 422; more rows than the batch limit (Parquet: read from the footer before any data) a
413.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from aihub.errors import InvalidInput, PayloadTooLarge
from aihub.services.columns import Column, parse_iso_times
from aihub.services.validation import RowProblem, with_problems

__all__ = [
    "ARROW_STREAM",
    "PARQUET_TYPES",
    "columns_from_table",
    "frame_from_arrow_stream",
    "frame_from_parquet",
    "frame_from_table",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")

_Body = bytes | bytearray | memoryview
# Data a Parquet file may declare per byte of body (compression ratio): beyond it the file
# is refused before decompressing (a small file that inflates to gigabytes).
MAX_INFLATION = 64


def _too_many(n: int | None, max_rows: int, noun: str) -> PayloadTooLarge:
    shown = f"{n}" if n is not None else f"more than {max_rows}"
    return PayloadTooLarge(
        f"{shown} {noun} in one batch; the limit is {max_rows} (AIHUB_MAX_INGEST_ROWS)",
        details={"limit": max_rows},
    )


def _unreadable(what: str, exc: BaseException) -> InvalidInput:
    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return InvalidInput(f"the body is not a readable {what}: {text}")


def read_arrow_stream(body: _Body, *, max_rows: int, noun: str) -> pa.Table:
    """The table of an Arrow IPC stream (an IPC file is read too), batch by batch so that
    a stream over the row limit stops early."""
    try:
        buf = pa.py_buffer(body)
        if bytes(body[:6]) == b"ARROW1":
            file = pa.ipc.open_file(buf)
            if sum(file.get_batch(i).num_rows for i in range(file.num_record_batches)) > max_rows:
                raise _too_many(None, max_rows, noun)
            return file.read_all()
        reader = pa.ipc.open_stream(buf)
        batches: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            rows += batch.num_rows
            if rows > max_rows:
                raise _too_many(None, max_rows, noun)
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=reader.schema)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable("Arrow IPC stream", exc) from exc
    except MemoryError as exc:
        raise PayloadTooLarge("the Arrow stream declares more data than fits in memory") from exc


def read_parquet(body: _Body, *, max_rows: int, noun: str) -> pa.Table:
    """The table of a Parquet file; its footer is checked (rows, declared size) first."""
    try:
        file = pq.ParquetFile(pa.BufferReader(pa.py_buffer(body)))
        meta = file.metadata
        if meta.num_rows > max_rows:
            raise _too_many(meta.num_rows, max_rows, noun)
        declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if declared > MAX_INFLATION * max(len(body), 1 << 20):
            raise PayloadTooLarge(
                f"the Parquet file declares {declared} bytes of data for a {len(body)}-byte "
                f"body (at most {MAX_INFLATION}x); send it in smaller batches"
            )
        return file.read()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _unreadable("Parquet file", exc) from exc
    except MemoryError as exc:
        raise PayloadTooLarge("the Parquet file declares more data than fits in memory") from exc


def _column_error(name: str, typ: pa.DataType, expected: str) -> InvalidInput:
    return InvalidInput(
        f"column '{name}' has Arrow type {typ}; expected {expected}",
        details=[{"field": name, "message": f"Arrow type {typ}; expected {expected}"}],
    )


def _convert(
    name: str, kind: str, data: pa.ChunkedArray
) -> tuple[pl.Series, list[tuple[int, str]]]:
    typ = data.type
    if pa.types.is_dictionary(typ):
        data = data.cast(typ.value_type)
        typ = typ.value_type
    null = pa.types.is_null(typ)
    if kind == "name":
        if null or pa.types.is_string(typ) or pa.types.is_large_string(typ) or (
            pa.types.is_string_view(typ)
        ):
            return pl.Series(name, data).cast(pl.String), []
        raise _column_error(name, typ, "strings")
    if kind == "time":
        if null:
            return pl.Series(name, [None] * len(data), dtype=pl.Int64), []
        if pa.types.is_timestamp(typ):
            if typ.tz is None:
                raise InvalidInput(
                    f"column '{name}' holds timestamps without a time zone; use a zoned "
                    "type (e.g. timestamp[us, tz=UTC]) or ISO 8601 strings with an offset",
                    details=[{"field": name, "message": "naive timestamps"}],
                )
            return pl.Series(name, data).dt.epoch("us"), []
        if pa.types.is_string(typ) or pa.types.is_large_string(typ) or (
            pa.types.is_string_view(typ)
        ):
            return parse_iso_times(pl.Series(name, data).cast(pl.String))
        raise _column_error(name, typ, "timestamps with a time zone or ISO 8601 strings")
    if null or pa.types.is_integer(typ) or pa.types.is_floating(typ) or (
        pa.types.is_decimal(typ)
    ):
        if pa.types.is_decimal(typ):
            data = data.cast(pa.float64())
        return pl.Series(name, data).cast(pl.Float64), []
    raise _column_error(name, typ, "numbers")


def columns_from_table(
    table: pa.Table, columns: Sequence[Column]
) -> tuple[pl.DataFrame, list[RowProblem]]:
    """``table`` as the store's typed columns (see the module's table of types) and the
    rows whose ISO strings do not parse, in row order."""
    known = {c.name: c for c in columns}
    unknown = [n for n in table.column_names if n not in known]
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {unknown[:10]} (allowed: {', '.join(known)})",
            details=[{"field": n, "message": "unknown column"} for n in unknown[:10]],
        )
    if len(set(table.column_names)) != len(table.column_names):
        raise InvalidInput(f"duplicate column names in {table.column_names}")
    series: list[pl.Series] = []
    problems: list[RowProblem] = []
    for col in columns:
        if col.name in table.column_names:
            s, bad = _convert(col.name, col.kind, table.column(col.name))
            series.append(s)
            problems.extend(RowProblem(r, col.name, why) for r, why in bad)
    problems.sort(key=lambda p: p.row)  # stable: a row's first column first
    return pl.DataFrame(series), problems


def frame_from_table(table: pa.Table, columns: Sequence[Column]) -> pl.DataFrame:
    """``table`` as the store's typed columns, rows that could not be read carrying their
    problem for the rules to report."""
    return with_problems(*columns_from_table(table, columns))


def frame_from_arrow_stream(
    body: _Body, columns: Sequence[Column], *, max_rows: int, noun: str
) -> pl.DataFrame:
    return frame_from_table(read_arrow_stream(body, max_rows=max_rows, noun=noun), columns)


def frame_from_parquet(
    body: _Body, columns: Sequence[Column], *, max_rows: int, noun: str
) -> pl.DataFrame:
    return frame_from_table(read_parquet(body, max_rows=max_rows, noun=noun), columns)
