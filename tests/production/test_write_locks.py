"""Per-asset write locks on PostgreSQL: writes of different assets (or tenants) proceed
while another is in flight; writes of the same asset queue; two batches creating the same
new asset both succeed; a bulk batch locks its tenant only.

An in-flight write is a transaction the test holds open after the store wrote into it.
Waiting is observed in ``pg_stat_activity`` (a backend waiting on an advisory lock), and
completion through events with deadlines: no timing assumptions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from aihub.config import Settings
from aihub.db import write_transaction
from aihub.services.container import Services, build_services
from tests.factories import readings, readings_frame

T = "tenant-locks"


@pytest.fixture
def services(tmp_path: Path, pg_url: str) -> Iterator[Services]:
    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path / "d", DATABASE_URL=pg_url,
                                  EXPORT_STORAGE_PATH=str(tmp_path / "d" / "exports")))
    yield svc
    svc.close()


def batch(assets: list[str], value: float) -> pl.DataFrame:
    rows = [r for a in assets for r in readings(a, range(24), lambda h: value)]
    return readings_frame(rows)


class Background:
    """``fn`` on a thread; ``done`` is set when it returned (``error`` if it raised)."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None

        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # reported by finished()
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def finished(self, timeout: float = 60) -> bool:
        if not self.done.wait(timeout):
            return False
        if self.error is not None:
            raise self.error
        return True


def wait_for_advisory_waiter(engine: sa.Engine, timeout: float = 60) -> None:
    """Until some backend of this database waits on an advisory lock."""
    deadline = time.monotonic() + timeout
    q = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")
    while True:
        with engine.connect() as conn:
            if conn.execute(q).scalar_one() > 0:
                return
        assert time.monotonic() < deadline, "no write waited on an advisory lock"
        time.sleep(0.02)


def values(services: Services, tenant: str, asset: str) -> set[float]:
    key = services.timeseries.get_assets(tenant, [asset])[0].key
    return set(services.timeseries.load_readings(key, 0, 2**62).get_column("value").to_list())


def test_writes_of_other_assets_proceed_while_one_is_in_flight(services: Services) -> None:
    services.ingest.ingest_readings(T, batch(["m1", "m2"], 1.0))
    with write_transaction(services.engine) as conn:
        services.timeseries.ingest_readings(conn, T, batch(["m1"], 2.0))  # holds m1
        other_asset = Background(lambda: services.ingest.ingest_readings(
            T, batch(["m2", "m3"], 3.0)))
        other_tenant = Background(lambda: services.ingest.ingest_readings(
            "tenant-other", batch(["m1"], 4.0)))
        assert other_asset.finished() and other_tenant.finished()
    assert values(services, T, "m2") == values(services, T, "m3") == {3.0}
    assert values(services, T, "m1") == {2.0}


def test_writes_of_the_same_asset_queue_and_the_last_committed_wins(
    services: Services,
) -> None:
    services.ingest.ingest_readings(T, batch(["m1"], 1.0))
    with write_transaction(services.engine) as conn:
        services.timeseries.ingest_readings(conn, T, batch(["m1"], 2.0))
        same = Background(lambda: services.ingest.ingest_readings(T, batch(["m1", "m2"], 5.0)))
        wait_for_advisory_waiter(services.engine)
        assert not same.done.is_set()
    assert same.finished()
    assert values(services, T, "m1") == {5.0}


def test_two_batches_creating_the_same_new_assets_both_succeed(services: Services) -> None:
    new = [f"new-{i}" for i in range(5)]
    start = threading.Barrier(6)

    def create(k: int) -> None:
        start.wait()
        services.ingest.ingest_readings(T, batch(new, float(k)))

    writers = [Background(lambda k=k: create(k)) for k in range(6)]
    assert all(w.finished() for w in writers)  # none failed on the unique constraint
    with services.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT asset_id, count(*) FROM assets WHERE tenant_id = :t GROUP BY asset_id"),
            {"t": T}).all()
    assert sorted(rows) == [(a, 1) for a in new]
    for a in new:
        assert len(values(services, T, a)) == 1  # one batch's values, not a mix


def test_a_bulk_batch_locks_its_tenant_only(services: Services) -> None:
    """Past 64 assets a write takes one tenant-wide lock instead of one per asset."""
    many = [f"bulk-{i}" for i in range(70)]
    services.ingest.ingest_readings(T, batch(["m1"], 1.0))
    with write_transaction(services.engine) as conn:
        services.timeseries.ingest_readings(conn, T, batch(many, 2.0))
        other_tenant = Background(lambda: services.ingest.ingest_readings(
            "tenant-other", batch(["m1"], 3.0)))
        assert other_tenant.finished()
        same_tenant = Background(lambda: services.ingest.ingest_readings(T, batch(["m1"], 4.0)))
        wait_for_advisory_waiter(services.engine)
        assert not same_tenant.done.is_set()
    assert same_tenant.finished()
    assert values(services, T, "m1") == {4.0}
    assert values(services, T, "bulk-69") == {2.0}
