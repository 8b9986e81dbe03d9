"""``aihub ingest readings|weather FILE``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer

from aihub.cli.app import app, console, progress_bar, services
from aihub.cli.file_chunks import DEFAULT_CHUNK_ROWS, count_rows
from aihub.cli.files import FileBatch, readings_chunks, weather_chunks
from aihub.services.ingest import Chunk, ChunkedResult
from aihub.timeutil import from_us, iso

ingest_app = typer.Typer(
    help="Import readings or weather from CSV or Parquet files.", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant the data belongs to")]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="csv or parquet (default: from the file extension)")
]
TzOpt = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        help="IANA zone of naive timestamps in the file (e.g. Europe/Berlin); "
        "without it a naive timestamp is an error",
    ),
]


ChunkOpt = Annotated[
    int,
    typer.Option(
        "--chunk-rows",
        min=1,
        help="Rows read, validated and committed at a time (bounds memory; each chunk is "
        "one transaction)",
    ),
]


def _run_chunks(
    kind: Literal["readings", "weather"],
    tenant: str,
    file: Path,
    fmt: str | None,
    batches: Iterator[FileBatch],
) -> ChunkedResult:
    total = count_rows(file, fmt)
    with services() as svc, progress_bar() as bar:
        task = bar.add_task(f"ingest {kind}", total=total)
        result = svc.ingest.ingest_chunks(
            kind,
            tenant,
            (Chunk(b.frame, b.labels) for b in batches),
            progress=lambda n: bar.advance(task, n),
        )
        bar.update(task, completed=result.rows, total=result.rows)
    return result


@ingest_app.command("readings")
def ingest_readings(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of readings")],
    tenant: TenantOpt,
    asset_col: Annotated[str, typer.Option(help="Column holding the asset id")] = "asset_id",
    ts_col: Annotated[str, typer.Option(help="Column holding the timestamp")] = "ts",
    value_col: Annotated[str, typer.Option(help="Column holding the value")] = "value",
    asset_id: Annotated[
        str | None,
        typer.Option(help="Asset id for every row (a one-meter file without an asset column)"),
    ] = None,
    timezone: TzOpt = None,
    fmt: FormatOpt = None,
    chunk_rows: ChunkOpt = DEFAULT_CHUNK_ROWS,
    known_at_col: Annotated[
        str | None,
        typer.Option(help="Column of knowledge times (when each value became known; "
                     "backfills of archives). Default: the import's commit time"),
    ] = None,
    quality_col: Annotated[
        str | None, typer.Option(help="Column of quality flags: actual, estimated, edited")
    ] = None,
) -> None:
    """Import meter readings of a file of any size, in chunks of --chunk-rows rows: each
    chunk is validated and stored in one transaction. A bad row is reported (row and
    column) with how far the file got; nothing of its chunk is stored, and running the
    same command again after fixing the file stores the same (re-sent readings add no
    version). A changed value of a stored reading keeps the earlier version (see "What
    was known when")."""
    started = time.perf_counter()
    batches = readings_chunks(
        file,
        fmt=fmt,
        chunk_rows=chunk_rows,
        asset_col=asset_col,
        ts_col=ts_col,
        value_col=value_col,
        asset_id=asset_id,
        timezone=timezone,
        known_at_col=known_at_col,
        quality_col=quality_col,
    )
    result = _run_chunks("readings", tenant, file, fmt, batches)
    first = iso(from_us(result.first_ts)) if result.first_ts is not None else "-"
    last = iso(from_us(result.last_ts)) if result.last_ts is not None else "-"
    elapsed = time.perf_counter() - started
    console.print(
        f"[green]accepted[/green] {result.accepted} readings for {len(result.asset_ids)} "
        f"asset(s) of tenant [bold]{tenant}[/bold], {first} .. {last} "
        f"in {elapsed:.2f} s ({result.accepted / max(elapsed, 1e-9):,.0f} readings/s, "
        f"{result.chunks} chunk(s))"
    )


@ingest_app.command("weather")
def ingest_weather(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of weather")],
    tenant: TenantOpt,
    location_col: Annotated[
        str, typer.Option(help="Column holding the location id")
    ] = "location_id",
    ts_col: Annotated[str, typer.Option(help="Column holding the timestamp")] = "ts",
    location_id: Annotated[
        str | None, typer.Option(help="Location id for every row (a one-location file)")
    ] = None,
    timezone: TzOpt = None,
    fmt: FormatOpt = None,
    chunk_rows: ChunkOpt = DEFAULT_CHUNK_ROWS,
    issued_at_col: Annotated[
        str | None,
        typer.Option(help="Column of issue times (a forecast's issue, an observation's "
                     "arrival); every issued version is kept. Default: commit time"),
    ] = None,
) -> None:
    """Import weather observations or forecasts (temperature, humidity, wind_speed,
    solar_irradiance, cloud_cover columns; any subset), in chunks like readings."""
    batches = weather_chunks(
        file,
        fmt=fmt,
        chunk_rows=chunk_rows,
        location_col=location_col,
        ts_col=ts_col,
        location_id=location_id,
        timezone=timezone,
        issued_at_col=issued_at_col,
    )
    result = _run_chunks("weather", tenant, file, fmt, batches)
    console.print(
        f"[green]accepted[/green] {result.accepted} weather rows for tenant [bold]{tenant}[/bold]"
    )
