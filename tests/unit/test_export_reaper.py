"""Export owners are checked with psutil: a live process is alive, a dead or reused pid is
not, another host's process can't be judged from here; the reaper fails only the exports
whose writer is gone (or that are older than the stale limit)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aihub.services.container import Services
from aihub.services.export_reaper import owner_alive, owner_token, reap_stale_exports
from aihub.stores.metadata.exports import ExportRecord


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_process_is_alive_and_a_reused_pid_is_not(
    child: subprocess.Popen[bytes],
) -> None:
    token = owner_token(child.pid)
    assert owner_alive(token) is True
    host, pid, _start = token.rsplit(":", 2)
    assert owner_alive(f"{host}:{pid}:12.34") is False  # same pid, another start: reused
    assert owner_alive(f"elsewhere:{pid}:{_start}") is None
    assert owner_alive("not an owner") is None


def test_an_exited_process_is_gone_even_before_it_is_reaped(
    child: subprocess.Popen[bytes],
) -> None:
    token = owner_token(child.pid)
    child.kill()
    # Not waited for yet: once the signal landed it is a zombie until its parent (this
    # test) reaps it, and already gone for the reaper.
    deadline = time.monotonic() + 30
    while owner_alive(token) is not False:
        assert time.monotonic() < deadline, "a killed process still counts as alive"
        time.sleep(0.01)
    child.wait()
    assert owner_alive(token) is False


def _record(path: Path, created: datetime) -> ExportRecord:
    return ExportRecord(
        export_id=str(uuid.uuid4()), tenant_id="t", feature_set="forecast_basic",
        status="running", start_time=created, end_time=created, asset_ids=None,
        lookback_hours=24, storage_path=str(path), row_count=None, file_size_bytes=None,
        message=None, created_at=created, completed_at=None,
    )


def test_the_reaper_fails_only_exports_whose_writer_is_gone(
    services: Services, tmp_path: Path, child: subprocess.Popen[bytes],
) -> None:
    now = datetime.now(UTC)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cases = {
        "live": (owner_token(child.pid), now),
        "dead": (owner_token(child.pid).replace(f":{child.pid}:", f":{dead.pid}:"), now),
        "remote-fresh": ("elsewhere:1:1.00", now),
        "remote-stale": ("elsewhere:1:1.00", now - timedelta(hours=7)),
    }
    ids = {}
    records = services.exports.records
    for name, (owner, created) in cases.items():
        partial = tmp_path / f"{name}.parquet.partial"
        partial.write_bytes(b"x")
        record = _record(tmp_path / f"{name}.parquet", created)
        with services.engine.begin() as conn:
            records.insert(conn, record, owner=owner)
        ids[name] = record.export_id
    reaped = reap_stale_exports(services.engine, records, stale_after_s=6 * 3600)
    assert sorted(reaped) == sorted([ids["dead"], ids["remote-stale"]])
    with services.engine.connect() as conn:
        status = {name: records.get(conn, i).status for name, i in ids.items()}  # type: ignore[union-attr]
    assert status == {"live": "running", "dead": "failed", "remote-fresh": "running",
                      "remote-stale": "failed"}
    assert not (tmp_path / "dead.parquet.partial").exists()  # its writer is gone
    assert (tmp_path / "live.parquet.partial").exists()
    assert reap_stale_exports(services.engine, records, stale_after_s=6 * 3600) == []
