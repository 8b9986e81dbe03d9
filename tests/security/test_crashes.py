"""A process SIGKILLed mid-ingest or mid-export loses nothing and leaves nothing half-done:
the batch is all there or not at all, rollups stay exact, the export is reported failed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from aihub.services.container import Services
from tests.security.crash_worker import batch
from tests.security.faults import rollup_mismatches, wait_for, worker

pytestmark = pytest.mark.backends

N = 120_000


def readings_of(services: Services, tenant: str) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM readings r JOIN assets a ON a.asset_key = r.asset_key "
            "WHERE a.tenant_id = :t"), {"t": tenant}).scalar_one())


@pytest.mark.parametrize("delay", [0.1, 0.7])
def test_kill_during_ingest_is_all_or_nothing(services: Services, delay: float) -> None:
    # An earlier, complete batch whose hours the killed one overlaps: its rollups must stay.
    services.ingest.ingest_readings("crash", batch(2_000), max_rows=10_000)
    proc = worker(services.settings, "ingest", "crash", str(N))
    wait_for(proc, "ready")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    count = readings_of(services, "crash")
    assert count in (2_000, N), f"partial batch visible: {count} readings"
    assert rollup_mismatches(services.engine) == 0
    # the store still takes writes (no lock or transaction left behind)
    services.ingest.ingest_readings("crash", batch(8), max_rows=10)


def test_kill_during_export_is_reported_failed_and_no_file_is_published(
        services: Services) -> None:
    services.ingest.ingest_readings("crash", batch(20_000, assets=6), max_rows=20_000)
    services.exports.export_dir.mkdir(parents=True, exist_ok=True)
    proc = worker(services.settings, "export", "crash")
    wait_for(proc, "progress")  # the first chunk is in the partial file
    partials = list(Path(services.exports.export_dir).glob("*.partial"))
    assert partials, "the export should be mid-file when killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    records, total = services.exports.list("crash", limit=10, offset=0)
    assert total == 1
    record = records[0]
    assert record.status == "failed", record
    assert "interrupted" in (record.message or "")
    assert services.exports.get(record.export_id).status == "failed"
    assert not list(Path(services.exports.export_dir).glob("*.parquet"))
    assert not list(Path(services.exports.export_dir).glob("*.partial"))


def test_a_live_export_is_not_reaped(services: Services) -> None:
    services.ingest.ingest_readings("crash", batch(20_000, assets=6), max_rows=20_000)
    proc = worker(services.settings, "export", "crash")
    try:
        wait_for(proc, "progress")
        records, _ = services.exports.list("crash", limit=10, offset=0)
        assert [r.status for r in records] == ["running"]
    finally:
        proc.kill()
        proc.wait(timeout=30)
