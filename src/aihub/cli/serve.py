"""``aihub serve`` and ``aihub db``."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

import typer

from aihub.cli.app import app, console, err_console, progress_bar, services
from aihub.config import Settings

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8003,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo tenant (tenant-123, meter-001..010) first")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    allow_open: Annotated[
        bool, typer.Option("--allow-open",
                           help="Serve without API keys on a non-loopback address (unsafe)")
    ] = False,
) -> None:
    """Run the HTTP API (default http://127.0.0.1:8003, docs at /docs).

    Without API keys ('aihub keys create') the API is open, so it binds a loopback
    address only, unless --allow-open says otherwise. With AIHUB_MQTT_URL set it also
    runs the MQTT stream (README "Streaming ingest (MQTT)")."""
    import uvicorn

    if workers > 1 and Settings().mqtt_url:
        err_console.print("[red]error:[/red] AIHUB_MQTT_URL is set: the stream runs in one "
                          "process (one MQTT session), so serve it with --workers 1 or run "
                          "'aihub stream mqtt' as a process of its own")
        raise typer.Exit(2)
    with services() as svc:  # applies migrations once, before any worker starts
        if not svc.api_keys.any():
            if not is_loopback(host) and not allow_open:
                err_console.print(
                    f"[red]error:[/red] no API keys configured: refusing to serve an open API "
                    f"on {host}. Create a key ('aihub keys create --tenant T --role write') "
                    "or pass --allow-open."
                )
                raise typer.Exit(2)
            err_console.print("[yellow]warning:[/yellow] no API keys configured: the API is "
                              f"open to anyone who can reach {host}")
        if svc.settings.mqtt_url:  # a bad broker URL, layout or key: an error before serving
            from aihub.streams.config import StreamConfig
            from aihub.streams.runner import stream_principal

            stream_principal(svc, StreamConfig.from_settings(svc.settings).api_key)
        if demo:
            from aihub.demo.loader import load_demo

            with progress_bar() as bar:
                task = bar.add_task("demo data", total=None)
                loaded = load_demo(svc, progress=lambda n: bar.advance(task, n))
            if loaded.skipped:
                console.print("demo tenant already loaded and current")
            else:
                console.print(
                    f"loaded demo tenant [bold]{loaded.tenant_id}[/bold]: "
                    f"{loaded.readings} readings, {len(loaded.assets)} meters"
                )
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker is its own process: let /metrics on any of them aggregate them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="aihub-metrics-")
    console.print(f"serving on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "aihub.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name) only listens on this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to DATABASE_URL (or the embedded SQLite file)."""
    from aihub.db import current_revision

    with services() as svc:  # building services migrates
        console.print(f"database at revision {current_revision(svc.engine)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database."""
    from aihub.db import create_db_engine, current_revision

    engine = create_db_engine(Settings())
    console.print(current_revision(engine) or "empty (run 'aihub db upgrade')")
    engine.dispose()
