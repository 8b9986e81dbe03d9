"""``aihub ingest readings|weather FILE``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from aihub.cli.app import app, console, progress_bar, services
from aihub.cli.files import readings_from_file, weather_from_file
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
    known_at_col: Annotated[
        str | None,
        typer.Option(help="Column of knowledge times (when each value became known; "
                     "backfills of archives). Default: the import's commit time"),
    ] = None,
    quality_col: Annotated[
        str | None, typer.Option(help="Column of quality flags: actual, estimated, edited")
    ] = None,
) -> None:
    """Import meter readings. The whole file is validated first and stored in one
    transaction: a bad row is reported (row and column) and nothing is stored. A changed
    value of a stored reading keeps the earlier version (see "What was known when")."""
    started = time.perf_counter()
    batch = readings_from_file(
        file,
        fmt=fmt,
        asset_col=asset_col,
        ts_col=ts_col,
        value_col=value_col,
        asset_id=asset_id,
        timezone=timezone,
        known_at_col=known_at_col,
        quality_col=quality_col,
    )
    with services() as svc, progress_bar() as bar:
        task = bar.add_task("ingest readings", total=batch.frame.height)
        result = svc.ingest.ingest_readings(
            tenant,
            batch.frame,
            progress=lambda n: bar.advance(task, n),
            max_rows=batch.frame.height + 1,
            labels=batch.labels,
        )
    first = iso(from_us(result.first_ts)) if result.first_ts is not None else "-"
    last = iso(from_us(result.last_ts)) if result.last_ts is not None else "-"
    elapsed = time.perf_counter() - started
    console.print(
        f"[green]accepted[/green] {result.accepted} readings for {len(result.asset_ids)} "
        f"asset(s) of tenant [bold]{tenant}[/bold], {first} .. {last} "
        f"in {elapsed:.2f} s ({result.accepted / max(elapsed, 1e-9):,.0f} readings/s)"
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
    issued_at_col: Annotated[
        str | None,
        typer.Option(help="Column of issue times (a forecast's issue, an observation's "
                     "arrival); every issued version is kept. Default: commit time"),
    ] = None,
) -> None:
    """Import weather observations or forecasts (temperature, humidity, wind_speed,
    solar_irradiance, cloud_cover columns; any subset)."""
    batch = weather_from_file(
        file,
        fmt=fmt,
        location_col=location_col,
        ts_col=ts_col,
        location_id=location_id,
        timezone=timezone,
        issued_at_col=issued_at_col,
    )
    with services() as svc:
        result = svc.ingest.ingest_weather(
            tenant, batch.frame, max_rows=batch.frame.height + 1, labels=batch.labels
        )
    console.print(
        f"[green]accepted[/green] {result.accepted} weather rows for tenant [bold]{tenant}[/bold]"
    )
