"""Reading a CSV or Parquet file as frames of at most ``chunk_rows`` rows, in memory bounded
by the chunk, whatever the size of the file.

Parquet is read record batch by record batch (``pyarrow.parquet.ParquetFile.iter_batches``).
CSV is read in blocks of bytes cut at a row boundary (a newline outside quotes) and parsed
by Polars with every column as text: a column's type is never guessed from the first rows,
so a word in row 9 million is a problem of that row (``aihub.cli.files`` turns the text into
values), not a parser error. Rows are numbered across the whole file, 0-based, header
excluded, as one read of the file would number them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from aihub.errors import InvalidInput

__all__ = ["DEFAULT_CHUNK_ROWS", "count_rows", "read_chunks"]

DEFAULT_CHUNK_ROWS = 500_000
_CSV_BLOCK_BYTES = 16 << 20


def file_kind(path: Path, fmt: str | None) -> str:
    if not path.exists():
        raise InvalidInput(f"file not found: {path}")
    kind = (fmt or path.suffix.lstrip(".")).lower()
    if kind in ("parquet", "pq"):
        return "parquet"
    if kind in ("csv", "txt"):
        return "csv"
    raise InvalidInput(f"{path}: unknown format '{kind}'; use --format csv or parquet")


def count_rows(path: Path, fmt: str | None) -> int:
    """The file's rows: exact for Parquet (its footer), the lines after the header for CSV
    (one quick pass; a quoted value spanning lines makes it an estimate for the progress)."""
    kind = file_kind(path, fmt)
    try:
        if kind == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        lines, last = 0, b"\n"
        with path.open("rb") as f:
            while block := f.read(_CSV_BLOCK_BYTES):
                lines += block.count(b"\n")
                last = block[-1:]
        lines += last != b"\n"
        return max(lines - 1, 0)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InvalidInput(f"{path}: cannot read as {kind}: {exc}") from exc


def read_chunks(path: Path, fmt: str | None, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """The file's rows in order, as frames of ``chunk_rows`` rows (the last one shorter)."""
    if chunk_rows < 1:
        raise InvalidInput("--chunk-rows: must be at least 1")
    kind = file_kind(path, fmt)
    parts = _parquet_parts(path, chunk_rows) if kind == "parquet" else _csv_parts(path)
    try:
        yield from _rechunk(parts, chunk_rows)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: cannot read as {kind}: {exc}".replace("\n", " ")) from exc


def _rechunk(parts: Iterator[pl.DataFrame], chunk_rows: int) -> Iterator[pl.DataFrame]:
    """``parts`` regrouped into frames of exactly ``chunk_rows`` rows (the last shorter); a
    file without rows still gives one empty frame with its columns."""
    pending: list[pl.DataFrame] = []
    held = 0
    empty: pl.DataFrame | None = None
    yielded = False
    for part in parts:
        if empty is None:
            empty = part.clear()
        while part.height:
            take = part.head(chunk_rows - held)
            part = part.slice(take.height)
            pending.append(take)
            held += take.height
            if held == chunk_rows:
                yield pl.concat(pending, rechunk=True) if len(pending) > 1 else pending[0]
                pending, held, yielded = [], 0, True
    if held:
        yield pl.concat(pending, rechunk=True)
    elif not yielded and empty is not None:
        yield empty


def _parquet_parts(path: Path, chunk_rows: int) -> Iterator[pl.DataFrame]:
    reader = pq.ParquetFile(path)
    yield pl.from_arrow(reader.schema_arrow.empty_table())  # type: ignore[misc]
    for batch in reader.iter_batches(batch_size=chunk_rows):
        yield pl.from_arrow(batch)  # type: ignore[misc]


def _csv_parts(path: Path) -> Iterator[pl.DataFrame]:
    """Blocks of whole rows, each parsed with the header's column names, every cell text
    (first an empty frame: the columns of a file that may have no rows)."""
    with path.open("rb") as f:
        header = f.readline()
        if not header.strip():
            raise InvalidInput(f"{path}: empty file (no header row)")
        columns = pl.read_csv(header, infer_schema=False).columns
        yield pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
        rest = b""
        while True:
            data = f.read(_CSV_BLOCK_BYTES)
            buf = rest + data
            cut = _row_boundary(buf) if data else len(buf)
            part, rest = buf[:cut], buf[cut:]
            if part.strip():
                yield pl.read_csv(
                    part, has_header=False, new_columns=columns, infer_schema=False
                )
            if not data:
                return


def _row_boundary(buf: bytes) -> int:
    """Where the last complete row of ``buf`` ends: after a newline with an even number of
    quotes before it (not inside a quoted value); 0 if there is none yet."""
    cut = buf.rfind(b"\n") + 1
    while cut and buf.count(b'"', 0, cut) % 2:
        cut = buf.rfind(b"\n", 0, cut - 1) + 1
    return cut
