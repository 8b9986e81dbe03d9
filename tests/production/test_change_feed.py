"""The change feed on PostgreSQL never skips a write, whatever order concurrent writes
commit in; and it reports a write once, however long another transaction stays open.

The writer here is a process whose invalidations never reach the shared cache (a CLI
import without ``REDIS_URL``); the reader is a replica on Redis whose only way to learn
of those writes is the change feed (``FeatureService.follow_changes``, followed by hand).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.db import write_transaction
from aihub.services.container import Services, build_services
from tests.conftest import REDIS_TEST_URL
from tests.factories import at, get_features, readings, readings_frame

T = "tenant-feed"


@pytest.fixture
def writer(tmp_path: Path, pg_url: str) -> Iterator[Services]:
    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path / "w", DATABASE_URL=pg_url,
                                  EXPORT_STORAGE_PATH=str(tmp_path / "w" / "exports")))
    yield svc
    svc.close()


@pytest.fixture
def reader(tmp_path: Path, pg_url: str, redis_prefix: str) -> Iterator[TestClient]:
    svc = build_services(Settings(
        AIHUB_DATA_DIR=tmp_path / "r", DATABASE_URL=pg_url, REDIS_URL=REDIS_TEST_URL,
        AIHUB_REDIS_PREFIX=redis_prefix, EXPORT_STORAGE_PATH=str(tmp_path / "r" / "exports"),
        AIHUB_CHANGE_FOLLOW_INTERVAL=0,  # followed by hand below
    ))
    with TestClient(create_app(services=svc)) as client:
        yield client
    svc.close()


def lag_1h(client: TestClient, asset: str) -> float:
    return get_features(client, T, asset, at(30))["lag_1h"]  # type: ignore[no-any-return]


def batch(asset: str, value: float) -> pl.DataFrame:
    return readings_frame(readings(asset, [29], lambda h: value))


def test_a_write_committed_after_a_higher_numbered_one_is_not_skipped(
    writer: Services, reader: TestClient,
) -> None:
    features = reader.app.state.services.features  # type: ignore[attr-defined]
    for asset in ("m1", "m2"):
        writer.ingest.ingest_readings(T, readings_frame(readings(asset, range(30),
                                                                 lambda h: 1.0)))
    assert features.follow_changes() == 0  # sets where following starts
    assert lag_1h(reader, "m1") == lag_1h(reader, "m2") == 1.0  # now cached in Redis

    # Write 1 (m1) draws its number, then stays in flight; write 2 (m2) draws a higher
    # number and commits first.
    with write_transaction(writer.engine) as conn:
        first = writer.timeseries.ingest_readings(conn, T, batch("m1", 5.0))
        second = writer.ingest.ingest_readings(T, batch("m2", 7.0))
        assert second.seq > first.seq
        assert features.follow_changes() == 1  # m2's entry
        assert lag_1h(reader, "m2") == 7.0
        assert lag_1h(reader, "m1") == 1.0  # write 1 is not committed: cached again
        # While write 1 is open, m2's change is read again: reported once only.
        assert features.follow_changes() == 0
    # Write 1 commits, with the lower number: a follower that had moved to "the highest
    # number seen" would never look at it again.
    assert features.follow_changes() == 1
    assert lag_1h(reader, "m1") == 5.0
    assert features.follow_changes() == 0


def test_a_long_open_transaction_holds_the_cursor_back_without_repeating_drops(
    writer: Services, reader: TestClient, pg_url: str,
) -> None:
    """A transaction open elsewhere in the cluster (here: one that wrote to another table)
    keeps the feed's horizon below it: later writes are read again and again until it ends,
    yet each is handled once."""
    features = reader.app.state.services.features  # type: ignore[attr-defined]
    writer.ingest.ingest_readings(T, readings_frame(readings("m1", range(30), lambda h: 1.0)))
    assert features.follow_changes() == 0
    assert lag_1h(reader, "m1") == 1.0
    other = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with other.begin() as conn:
            conn.execute(sa.text("CREATE TEMP TABLE held (x int)"))
            conn.execute(sa.text("INSERT INTO held VALUES (1)"))  # holds a transaction id
            writer.ingest.ingest_readings(T, batch("m1", 3.0))
            assert features.follow_changes() == 1
            assert lag_1h(reader, "m1") == 3.0
            for _ in range(3):
                assert features.follow_changes() == 0
            writer.ingest.ingest_readings(T, batch("m1", 4.0))
            assert features.follow_changes() == 1
            assert lag_1h(reader, "m1") == 4.0
    finally:
        other.dispose()
    assert features.follow_changes() == 0
