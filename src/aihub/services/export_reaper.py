"""Exports whose writer died: a ``running`` record nobody will finish is reported failed.

Each export records its owner ``host:pid:start`` (the process start time tells a reused pid
apart). On read, a ``running`` export whose owner on this host is gone, or which is older
than ``stale_after_s`` wherever it runs, becomes ``failed`` and its partial file is removed;
the final file only ever appears by an atomic rename after the last row, so no partial file
is ever presented as complete.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

from aihub.stores.metadata.features import FeatureMetadataStore
from aihub.timeutil import utcnow

_HOST = socket.gethostname()


def process_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot), or '' if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{_HOST}:{pid}:{process_start(pid)}"


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None when it can't be checked from here."""
    parts = owner.rsplit(":", 2)
    host, pid_text, start = parts if len(parts) == 3 else ("", "", "")
    if host != _HOST or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or process_start(pid) == start


def reap_stale_exports(meta: FeatureMetadataStore, *, stale_after_s: int) -> list[str]:
    """Mark orphaned ``running`` exports failed; returns their ids."""
    reaped = []
    now = utcnow()
    for record, owner in meta.running_exports():
        alive = owner_alive(owner) if owner else None
        too_old = now - record.created_at > timedelta(seconds=stale_after_s)
        if alive is True or (alive is None and not too_old):
            continue
        why = "its process is gone" if alive is False else f"no progress for {stale_after_s} s"
        if record.storage_path and alive is False:
            Path(record.storage_path + ".partial").unlink(missing_ok=True)
        meta.fail_running_export(record.export_id,
                                 f"export interrupted ({why}); no file was published", now)
        reaped.append(record.export_id)
    return reaped
