"""The Typer application object and shared CLI helpers; commands live beside it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aihub.config import Settings
from aihub.services.container import Services, build_services

app = typer.Typer(
    name="aihub",
    help=(
        "aihub: feature store for smart-meter time series and model registry.\n\n"
        "Runs on the embedded default (SQLite, in-process cache, local files) unless "
        "DATABASE_URL, REDIS_URL or MINIO_ENDPOINT_URL point at production backends."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(emoji=False)  # model ids like "t:m:v1" must not become emoji
err_console = Console(stderr=True, emoji=False)


@contextmanager
def services() -> Iterator[Services]:
    svc = build_services(Settings())
    try:
        yield svc
    finally:
        svc.close()


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
