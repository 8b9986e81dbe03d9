"""Exports whose writer died: a ``running`` record nobody will finish is reported failed.

Each export records its owner ``host:pid:start`` (the process start time, from psutil,
tells a reused pid apart). On read, a ``running`` export whose owner on this host is gone,
or which is older than ``stale_after_s`` wherever it runs, becomes ``failed`` and its
partial file is removed; the final file only ever appears by an atomic rename after the
last row, so no partial file is ever presented as complete.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa

from aihub.stores.metadata.exports import ExportStore
from aihub.timeutil import utcnow

_HOST = socket.gethostname()


def _start(proc: psutil.Process) -> str:
    return f"{proc.create_time():.2f}"


def owner_token(pid: int | None = None) -> str:
    """``host:pid:start`` of ``pid`` (default: this process)."""
    proc = psutil.Process(os.getpid() if pid is None else pid)
    return f"{_HOST}:{proc.pid}:{_start(proc)}"


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None when it can't be checked from here."""
    parts = owner.rsplit(":", 2)
    host, pid_text, start = parts if len(parts) == 3 else ("", "", "")
    if host != _HOST or not pid_text.isdigit():
        return None
    try:
        proc = psutil.Process(int(pid_text))
        if proc.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped by its parent
            return False
        return not start or _start(proc) == start
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return None


def reap_stale_exports(engine: sa.Engine, records: ExportStore, *,
                       stale_after_s: int) -> list[str]:
    """Mark orphaned ``running`` exports failed; returns their ids."""
    with engine.connect() as conn:
        running = records.running(conn)
    reaped = []
    now = utcnow()
    for item in running:
        record, owner = item.record, item.owner
        alive = owner_alive(owner) if owner else None
        too_old = now - record.created_at > timedelta(seconds=stale_after_s)
        if alive is True or (alive is None and not too_old):
            continue
        why = "its process is gone" if alive is False else f"no progress for {stale_after_s} s"
        message = f"export interrupted ({why}); no file was published"
        # One guarded UPDATE: an export that finished meanwhile stays finished.
        with engine.begin() as conn:
            failed = records.fail_running(conn, record.export_id, message, now)
        if failed:
            if record.storage_path and alive is False:
                Path(record.storage_path + ".partial").unlink(missing_ok=True)
            reaped.append(record.export_id)
    return reaped
