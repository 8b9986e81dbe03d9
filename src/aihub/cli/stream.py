"""``aihub stream mqtt``: streaming ingest as a process of its own."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from aihub.cli.app import app, console, err_console, services
from aihub.services.background import PeriodicTask
from aihub.services.container import Services

stream_app = typer.Typer(help="Streaming ingest (subscribe to a broker and store what "
                              "meters publish).", no_args_is_help=True)
app.add_typer(stream_app, name="stream")


@stream_app.command("mqtt")
def mqtt(
    broker: Annotated[str | None, typer.Option(
        "--broker", "-b", envvar="AIHUB_MQTT_URL",
        help="Broker URL: mqtt://host:1883, or mqtts://host:8883 for TLS "
             "(credentials may ride in it: mqtt://user:pass@host)")] = None,
    username: Annotated[str | None, typer.Option(
        envvar="AIHUB_MQTT_USERNAME", help="Broker user name")] = None,
    password: Annotated[str | None, typer.Option(
        envvar="AIHUB_MQTT_PASSWORD", help="Broker password (prefer the env variable)")] = None,
    client_id: Annotated[str | None, typer.Option(
        envvar="AIHUB_MQTT_CLIENT_ID",
        help="Stable client id: the broker keeps this session's messages while the "
             "stream is down (default aihub-stream)")] = None,
    ca_file: Annotated[str | None, typer.Option(
        envvar="AIHUB_MQTT_CA_FILE", help="CA certificate (PEM) to verify the broker; "
                                          "implies TLS")] = None,
    cert_file: Annotated[str | None, typer.Option(
        envvar="AIHUB_MQTT_CERT_FILE", help="Client certificate (PEM); implies TLS")] = None,
    key_file: Annotated[str | None, typer.Option(
        envvar="AIHUB_MQTT_KEY_FILE", help="Client certificate's private key (PEM)")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="TLS without verifying the broker's certificate (testing only)")
    ] = False,
    api_key: Annotated[str | None, typer.Option(
        envvar="AIHUB_MQTT_API_KEY",
        help="API key (role write) whose tenants the stream may write; required once "
             "keys exist. Messages for other tenants become dead letters.")] = None,
    mapping: Annotated[str | None, typer.Option(
        "--mapping", envvar="AIHUB_MQTT_MAPPINGS",
        help="JSON file of topic layouts (README: topic template with {tenant}/{asset}, "
             "time_field, value_field, time_format, scale, kind register)")] = None,
    topic_prefix: Annotated[str | None, typer.Option(
        envvar="AIHUB_MQTT_TOPIC_PREFIX",
        help="First level(s) of the default topics (default aihub)")] = None,
    batch_ms: Annotated[int | None, typer.Option(
        min=1, max=60_000, help="Commit a micro-batch at most this long after its first "
                                "message (default 200 ms)")] = None,
    linger_ms: Annotated[int | None, typer.Option(
        min=0, max=60_000, help="... or, once this old, as soon as nothing more is waiting "
                                "(default 20 ms)")] = None,
    batch_rows: Annotated[int | None, typer.Option(
        min=1, max=65_535, help="... or once it holds about this many readings "
                                "(default 5000; 50000 for high rates)")] = None,
    processes: Annotated[int | None, typer.Option(
        "--processes", "-p", min=1, max=64, envvar="AIHUB_MQTT_PROCESSES",
        help="Stream processes sharing the subscriptions (MQTT 5 shared subscriptions; "
             "registers stay with the first). Default 1")] = None,
) -> None:
    """Subscribe to aihub/{tenant}/readings/{asset}, aihub/{tenant}/weather/{location}
    and aihub/{tenant}/registers/{asset} (QoS 1, persistent session) and store what
    arrives in micro-batches; a message is acknowledged only once stored. Bad messages
    go to the dead letters (GET /ai/stream/dead-letters). Stops on Ctrl-C / SIGTERM after
    committing what it received. With --processes N, N worker processes (sessions
    <client id>, <client id>-1, ...) share the readings and weather topics; a worker that
    dies is restarted."""
    from aihub.config import Settings
    from aihub.streams.config import StreamConfig
    from aihub.streams.runner import build_stream

    overrides: dict[str, Any] = {
        "url": broker, "username": username, "password": password, "client_id": client_id,
        "ca_file": ca_file, "cert_file": cert_file, "key_file": key_file,
        "api_key": api_key, "mappings": mapping, "topic_prefix": topic_prefix,
        "batch_ms": batch_ms, "linger_ms": linger_ms, "batch_rows": batch_rows,
        "tls_insecure": insecure or None, "processes": processes,
    }
    config = StreamConfig.from_settings(Settings(), **overrides)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    if config.processes > 1:
        from aihub.streams.workers import run_workers

        # Migrations are applied once, before the workers start; this process applies the
        # dead letters' retention while they stream.
        with services() as svc:
            purger = _dead_letter_purger(svc)
            try:
                code = run_workers(config, done, console.print, err_console.print)
            finally:
                if purger is not None:
                    purger.stop()
        raise typer.Exit(code)
    with services() as svc:
        stream = build_stream(svc, config)
        purger = _dead_letter_purger(svc)
        stream.start()
        topics = ", ".join(m.subscription for m in config.mappings)
        console.print(f"streaming from {config.url} as '{config.client_id}': {topics}")
        if stream.wait_subscribed(10):
            console.print("subscribed")
        else:
            err_console.print(f"[yellow]warning:[/yellow] not subscribed at {config.url} "
                              "yet; retrying in the background")
        try:
            while not done.wait(1.0):
                pass
        finally:
            stream.stop()
            if purger is not None:
                purger.stop()
            status = stream.status.snapshot()
            console.print(f"stopped: {status['messages_committed']} messages stored, "
                          f"{status['dead_letters']} dead letters in total")


def _dead_letter_purger(svc: Services) -> PeriodicTask | None:
    """The stream process applies the dead letters' retention itself (it may run where
    no API does)."""
    from aihub.streams.dead_letters import DeadLetterPurger

    purger = DeadLetterPurger.configured(svc.engine, svc.settings)
    if purger is not None:
        purger.start()
    return purger


@stream_app.command("dead-letters")
def dead_letters(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Whose dead letters")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip the newest N")] = 0,
) -> None:
    """A tenant's dead letters, newest first: what the stream received and could not
    store (unparseable JSON, naive timestamps, NaN, unknown fields, a tenant the stream's
    key may not write) and flagged register drops."""
    from aihub.streams.dead_letters import DeadLetterService

    with services() as svc:
        page, total = DeadLetterService(svc.engine).page(tenant, limit=limit, offset=offset)
    table = Table(title=f"dead letters of {tenant} ({total} in all)")
    for col in ("received", "topic", "reason", "payload"):
        table.add_column(col, overflow="fold")
    for d in page:
        payload = d.payload if len(d.payload) <= 80 else d.payload[:77] + "..."
        table.add_row(d.received_at.isoformat(), d.topic, d.reason, payload)
    console.print(table)


@stream_app.command("purge-dead-letters")
def purge_dead_letters(
    days: Annotated[int | None, typer.Option(
        min=1, max=36_500, help="Keep this many days (default AIHUB_DEAD_LETTER_DAYS, 30)")
    ] = None,
) -> None:
    """Delete every tenant's dead letters older than AIHUB_DEAD_LETTER_DAYS (the API and
    stream processes also do it every AIHUB_DEAD_LETTER_PURGE_INTERVAL seconds)."""
    from aihub.streams.dead_letters import DeadLetterService

    with services() as svc:
        keep = days or svc.settings.dead_letter_days
        n = DeadLetterService(svc.engine).purge(keep)
    console.print(f"purged {n} dead letters older than {keep} days")
