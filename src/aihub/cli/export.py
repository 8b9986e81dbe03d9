"""``aihub export``, ``aihub exports``, ``aihub status``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from aihub.cli.app import app, console, progress_bar, services
from aihub.errors import InvalidInput
from aihub.features.knowledge import describe, knowledge_options, parse_horizon_text
from aihub.services.executors import make_executor
from aihub.services.exports import ExportRequest
from aihub.timeutil import iso


def _when(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{option}: '{text}' is not an ISO 8601 timestamp") from exc
    if value.tzinfo is None:
        raise InvalidInput(f"{option}: '{text}' has no timezone; add 'Z' or an offset")
    return value


@app.command("export")
def export(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant to export")],
    start: Annotated[str, typer.Option(help="First hour, ISO 8601 with zone (inclusive)")],
    end: Annotated[str, typer.Option(help="End, ISO 8601 with zone (exclusive)")],
    feature_set: Annotated[str, typer.Option("--feature-set", "-s")] = "forecast_basic",
    asset: Annotated[
        list[str] | None, typer.Option("--asset", "-a", help="Limit to these assets (repeatable)")
    ] = None,
    lookback_hours: Annotated[int, typer.Option(help="History each row may read")] = 168,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Write the export as a dataset of parts with this many "
                     "local worker processes"),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(help="Write the export as a dataset of parts on the Dask cluster of "
                     "this scheduler (tcp://host:8786; default AIHUB_DASK_SCHEDULER)"),
    ] = None,
    origins_every: Annotated[
        int | None, typer.Option(help="Forecast origins every N hours (N divides 24)")
    ] = None,
    origins_at: Annotated[
        str | None, typer.Option(help="Local time HH:MM of the first origin of a day")
    ] = None,
    origins_timezone: Annotated[
        str | None, typer.Option(help="IANA zone of --origins-at (DST-aware; default UTC)")
    ] = None,
    horizons: Annotated[
        str | None, typer.Option(help="Hours ahead of each origin: 14..37 or 0,1,24")
    ] = None,
    as_known: Annotated[
        str | None,
        typer.Option(help="latest (default), origin, or an ISO time K: which versions "
                     "of the data each row sees"),
    ] = None,
) -> None:
    """Export point-in-time features to Parquet (zstd): one row per asset-hour with readings.
    With any of --origins-*, --horizons, --as-known: one row per origin, horizon and asset
    whose target hour has readings (see "What was known when" in the README).
    With --workers or --dask (or AIHUB_DASK_SCHEDULER set) the result is a directory of
    Parquet parts that pyarrow and Polars read as one table."""
    given = any(v is not None for v in (origins_every, origins_at, origins_timezone))
    req = ExportRequest(
        tenant_id=tenant,
        feature_set=feature_set,
        start_time=_when(start, "--start"),
        end_time=_when(end, "--end"),
        asset_ids=asset or None,
        lookback_hours=lookback_hours,
        knowledge=knowledge_options(
            every_hours=origins_every, at=origins_at, timezone=origins_timezone,
            horizons=parse_horizon_text(horizons) if horizons is not None else None,
            as_known=as_known, origins_given=given,
        ),
    )
    with services() as svc:
        svc.exports.validate(req)  # report bad input before any progress bar
    with services() as svc, progress_bar() as bar:
        address = dask or svc.settings.dask_scheduler
        executor = make_executor(workers=workers, dask=address) if workers or address else None
        task = bar.add_task(f"export ({executor.name if executor else 'inline'}, assets)",
                            total=None)
        try:
            record = svc.exports.export(
                req,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                executor=executor,
            )
        finally:
            if executor is not None:
                executor.close()
    parts = f" in {len(record.parts)} part(s)" if record.parts else ""
    console.print(
        f"[green]{record.status}[/green] {record.row_count} rows{parts}, "
        f"{(record.file_size_bytes or 0) / 1e6:.1f} MB -> {record.storage_path}"
    )
    console.print(f"export_id {record.export_id}")


@app.command("exports")
def exports(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """List recorded exports, newest first."""
    with services() as svc:
        records, total = svc.exports.list(tenant, limit=limit, offset=0)
    table = Table(title=f"exports ({total} in all)")
    # The id is what users copy into the next command: never shorten it to fit.
    table.add_column("export_id", no_wrap=True, min_width=36)
    for col in ("tenant", "feature set", "status", "rows", "MB", "created", "options"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.export_id,
            r.tenant_id,
            r.feature_set,
            r.status,
            str(r.row_count or 0),
            f"{(r.file_size_bytes or 0) / 1e6:.1f}",
            iso(r.created_at),
            describe(r.options),
        )
    console.print(table)


@app.command("status")
def status(tenant: Annotated[str, typer.Option("--tenant", "-t")]) -> None:
    """Assets, readings, first/last reading and last ingest of a tenant."""
    with services() as svc:
        st = svc.assets.status(tenant)
    last = st.last_export
    table = Table(title=f"tenant {tenant}", show_header=False)
    table.add_row("assets", str(st.assets))
    table.add_row("readings", str(st.readings))
    table.add_row("hours with readings", str(st.rollup_hours))
    table.add_row("first reading", iso(st.first_reading) if st.first_reading else "-")
    table.add_row("last reading", iso(st.last_reading) if st.last_reading else "-")
    table.add_row("last ingest", iso(st.last_ingest_at) if st.last_ingest_at else "-")
    table.add_row("last export", f"{last.export_id} ({last.status})" if last else "-")
    console.print(table)
