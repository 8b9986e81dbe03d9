"""The ``aihub`` command line. ``main`` turns service errors into a message and an exit
code (2 for bad input, 1 otherwise) instead of a stack trace."""

from __future__ import annotations

import sys

from aihub.cli import (  # noqa: F401  (register commands)
    demo,
    export,
    ingest,
    keys,
    models,
    serve,
    stream,
)
from aihub.cli.app import app, err_console
from aihub.errors import AihubError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()  # standalone: Typer handles usage errors, --help and exit codes itself
    except AihubError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        sys.exit(2 if 400 <= exc.status_code < 500 else 1)
