"""One contract for every TimeSeriesStore backend (SQLite, PostgreSQL): upserts, rollups
with the exact semantics of ``compute_rollups``, weather, reads, the change feed, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from aihub.config import Settings
from aihub.db import create_db_engine, upgrade, write_transaction
from aihub.errors import BackendUnavailable
from aihub.features.frames import WEATHER_SCHEMA
from aihub.stores.timeseries.base import (
    Asset,
    AssetChanges,
    ChangeBatch,
    IngestResult,
    TimeSeriesStore,
)
from aihub.stores.timeseries.rollups import compute_rollups
from aihub.timeutil import HOUR_US
from tests.conftest import free_port

H0 = 1_704_067_200_000_000  # 2024-01-01T00:00Z
MIN = 60_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    if request.param == "sqlite":
        settings = Settings(AIHUB_DATA_DIR=tmp_path / "data")
    else:
        settings = Settings(AIHUB_DATA_DIR=tmp_path / "data",
                            DATABASE_URL=request.getfixturevalue("pg_url"))
    engine = create_db_engine(settings)
    upgrade(engine)
    from aihub.services.container import build_timeseries

    ts_store = build_timeseries(settings, engine)
    yield ts_store
    ts_store.close()


# Writes run in a transaction their caller opens (the services do; here the test).
def ingest(store: TimeSeriesStore, tenant: str, readings: pl.DataFrame) -> IngestResult:
    with write_transaction(store.engine) as conn:  # type: ignore[attr-defined]
        return store.ingest_readings(conn, tenant, readings)


def ingest_weather(store: TimeSeriesStore, tenant: str, obs: pl.DataFrame) -> IngestResult:
    with write_transaction(store.engine) as conn:  # type: ignore[attr-defined]
        return store.ingest_weather(conn, tenant, obs)


def upsert(store: TimeSeriesStore, tenant: str, asset: str, changes: AssetChanges) -> Asset:
    with write_transaction(store.engine) as conn:  # type: ignore[attr-defined]
        return store.upsert_asset(conn, tenant, asset, changes)


def frame(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"asset_id": pl.String, "ts": pl.Int64, "value": pl.Float64},
                        orient="row")


def key(store: TimeSeriesStore, asset: str, tenant: str = "t1") -> int:
    return store.get_assets(tenant, [asset])[0].key


def rollups(store: TimeSeriesStore, asset: str) -> pl.DataFrame:
    return store.load_rollups([key(store, asset)], 0, 2**62)


def expected(store: TimeSeriesStore, asset: str, rows: list[tuple[int, float]]) -> pl.DataFrame:
    k = key(store, asset)
    return compute_rollups(
        pl.DataFrame({"asset_key": [k] * len(rows), "ts": [t for t, _ in rows],
                      "value": [v for _, v in rows]},
                     schema={"asset_key": pl.Int64, "ts": pl.Int64, "value": pl.Float64})
    )


def assert_rollups_equal(got: pl.DataFrame, want: pl.DataFrame) -> None:
    cols = ("asset_key", "hour", "n")
    assert got.select(cols).rows() == want.select(cols).rows()
    for col in ("mean", "std", "min", "max"):
        g, w = got.get_column(col).to_list(), want.get_column(col).to_list()
        assert [x is None for x in g] == [x is None for x in w], col
        assert [x for x in g if x is not None] == pytest.approx(
            [x for x in w if x is not None], rel=1e-12, abs=1e-12), col


def test_ingest_creates_assets_and_exact_rollups(store: TimeSeriesStore) -> None:
    rows = [(H0, 1.0), (H0 + HOUR_US, 2.0), (H0 + HOUR_US + 15 * MIN, 4.0),
            (H0 + 2 * HOUR_US, 5.0), (H0 + 2 * HOUR_US + 30 * MIN, 5.0)]
    result = ingest(store, "t1", frame([("m1", t, v) for t, v in rows]))
    assert result.accepted == 5 and result.asset_ids == ["m1"]
    assert (result.first_ts, result.last_ts) == (H0, H0 + 2 * HOUR_US + 30 * MIN)
    got = rollups(store, "m1")
    assert got.get_column("std").to_list()[0] is None  # one reading: std null
    assert got.get_column("std").to_list()[2] == 0.0  # all equal: exactly 0
    assert_rollups_equal(got, expected(store, "m1", rows))


def test_corrections_replace_and_recompute_the_hour(store: TimeSeriesStore) -> None:
    ingest(store, "t1", frame([("m1", H0, 1.0), ("m1", H0 + 30 * MIN, 3.0)]))
    # One correction, one new reading in the same hour, one brand-new hour.
    ingest(store, "t1", frame([("m1", H0, 10.0), ("m1", H0 + 45 * MIN, 2.0),
                                       ("m1", H0 + HOUR_US, 7.0)]))
    stored = store.load_readings(key(store, "m1"), 0, 2**62)
    assert stored.rows() == [(H0, 10.0), (H0 + 30 * MIN, 3.0), (H0 + 45 * MIN, 2.0),
                             (H0 + HOUR_US, 7.0)]
    assert_rollups_equal(rollups(store, "m1"), expected(store, "m1", stored.rows()))


def test_later_batch_adds_to_an_hour_that_had_one_reading(store: TimeSeriesStore) -> None:
    ingest(store, "t1", frame([("m1", H0, 2.0)]))
    ingest(store, "t1", frame([("m1", H0 + 15 * MIN, 4.0)]))  # one reading per hour
    got = rollups(store, "m1")
    assert got.select("n", "mean", "min", "max").rows() == [(2, 3.0, 2.0, 4.0)]
    assert got.get_column("std")[0] == pytest.approx(np.std([2.0, 4.0], ddof=1))


def test_one_batch_mixing_new_hours_extended_hours_and_several_assets(
    store: TimeSeriesStore,
) -> None:
    """Hourly data in new hours (copied as rollups), an hour that already held a reading
    (recomputed), a correction and a multi-reading hour, all in one batch."""
    first = [("m1", H0 + h * HOUR_US, float(h)) for h in range(5)]
    ingest(store, "t1", frame(first))
    second = [
        ("m1", H0 + 2 * HOUR_US + 30 * MIN, 20.0),  # extends an hour with one reading
        ("m1", H0 + 4 * HOUR_US, 40.0),  # corrects a reading
        *[("m1", H0 + h * HOUR_US, 100.0 + h) for h in range(10, 13)],  # new hours
        *[("m2", H0 + h * HOUR_US, 7.0 * h) for h in range(4)],  # a new asset
        ("m3", H0, 1.0), ("m3", H0 + 20 * MIN, 5.0),  # several readings in one hour
    ]
    ingest(store, "t1", frame(second))
    for asset in ("m1", "m2", "m3"):
        stored = store.load_readings(key(store, asset), 0, 2**62)
        assert_rollups_equal(rollups(store, asset), expected(store, asset, stored.rows()))
    m1 = dict(store.load_readings(key(store, "m1"), 0, 2**62).rows())
    assert m1[H0 + 4 * HOUR_US] == 40.0 and len(m1) == 9


def test_a_fault_computing_rollups_fails_the_ingest_and_keeps_nothing(
    store: TimeSeriesStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault no test can cause for real (memory running out while rollups are computed,
    on PostgreSQL on a worker thread) is raised by the ingest, and the batch is rolled back."""
    from aihub.stores.timeseries import postgres, sqlite

    ingest(store, "t1", frame([("m1", H0, 1.0)]))
    before = rollups(store, "m1").rows()

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError("out of memory computing rollups")

    module = postgres if store.backend_name == "postgresql" else sqlite
    monkeypatch.setattr(module, "compute_rollups", out_of_memory)
    batch = [("m1", H0 + 10 * MIN, 5.0), ("m1", H0 + 20 * MIN, 6.0), ("m2", H0, 2.0)]
    with pytest.raises(MemoryError):
        ingest(store, "t1", frame(batch))
    assert store.load_readings(key(store, "m1"), 0, 2**62).rows() == [(H0, 1.0)]
    assert rollups(store, "m1").rows() == before
    assert store.get_assets("t1", ["m2"]) == []


def test_random_batches_match_compute_rollups(store: TimeSeriesStore) -> None:
    rng = np.random.default_rng(5)
    all_rows: dict[int, float] = {}
    for _ in range(4):
        ts = H0 + rng.integers(0, 48 * 60, 300) * MIN
        vals = rng.normal(50, 10, 300).round(3)
        batch = dict(zip(ts.tolist(), vals.tolist(), strict=True))  # last one wins
        ingest(store, "t1", frame([("m1", t, v) for t, v in batch.items()]))
        all_rows.update(batch)
    want = expected(store, "m1", sorted(all_rows.items()))
    assert_rollups_equal(rollups(store, "m1"), want)


def test_weather_upsert_and_load(store: TimeSeriesStore) -> None:
    upsert(store, "t1", "m1", AssetChanges(location_id="berlin"))
    obs = pl.DataFrame(
        {"location_id": ["berlin", "berlin"], "ts": [H0, H0 + HOUR_US],
         "temperature": [4.5, None], "humidity": [80.0, 81.0], "wind_speed": [None, None],
         "solar_irradiance": [None, None], "cloud_cover": [None, 12.5]},
        schema=WEATHER_SCHEMA,
    )
    result = ingest_weather(store, "t1", obs)
    assert result.asset_ids == ["m1"]
    ingest_weather(store, "t1", obs.head(1).with_columns(temperature=pl.lit(5.5)))
    got = store.load_weather("t1", ["berlin"], H0, H0 + 2 * HOUR_US)
    assert got.get_column("temperature").to_list() == [5.5, None]
    assert got.get_column("cloud_cover").to_list() == [None, 12.5]
    assert store.load_weather("t2", ["berlin"], H0, H0 + 2 * HOUR_US).is_empty()


def test_reads_are_bounded_and_sorted(store: TimeSeriesStore) -> None:
    ingest(store, "t1", frame([("m1", H0 + h * HOUR_US, float(h)) for h in range(10)]
                                      + [("m2", H0, 1.0)]))
    k = key(store, "m1")
    got = store.load_rollups([k], H0 + 2 * HOUR_US, H0 + 5 * HOUR_US)
    assert got.get_column("hour").to_list() == [H0 + h * HOUR_US for h in (2, 3, 4)]
    assert got.schema["n"] == pl.Int64
    assert store.load_rollups([], 0, 2**62).is_empty()
    empty = store.load_rollups([k], 0, H0)  # a query that matches nothing
    assert empty.is_empty() and empty.schema == got.schema
    assert store.load_readings(k, 0, H0).is_empty()
    assert store.load_readings(k, H0 + 9 * HOUR_US, 2**62).rows() == [(H0 + 9 * HOUR_US, 9.0)]
    with_data = store.asset_keys_with_data("t1", None, H0 + 3 * HOUR_US, 2**62)
    assert [a.asset_id for a in with_data] == ["m1"]
    assert store.last_rollup_hour(k) == H0 + 9 * HOUR_US
    assert store.last_rollup_hour(key(store, "m2")) == H0
    assert store.last_rollup_hour(10**9) is None  # no such asset


def test_tenant_stats_and_isolation(store: TimeSeriesStore) -> None:
    ingest(store, "t1", frame([("m1", H0, 1.0), ("m1", H0 + 10 * MIN, 1.0)]))
    ingest(store, "t2", frame([("m1", H0, 9.0)]))
    stats = store.tenant_stats("t1")
    assert (stats.assets, stats.readings, stats.rollup_hours) == (1, 2, 1)
    assert (stats.first_ts, stats.last_ts) == (H0, H0 + 10 * MIN)
    assert key(store, "m1", "t1") != key(store, "m1", "t2")
    assert store.tenant_exists("t2") and not store.tenant_exists("t3")


def changed(batch: ChangeBatch) -> list[tuple[str, str, int]]:
    return sorted((c.tenant_id, c.asset_id, c.seq) for c in batch.changes)


def test_change_feed(store: TimeSeriesStore) -> None:
    start = store.changes_since(None)
    assert start.changes == []
    result = ingest(store, "t1", frame([("m1", H0, 1.0)]))
    assert result.seq > 0
    first = store.changes_since(start.cursor)
    assert changed(first) == [("t1", "m1", result.seq)]
    asset = upsert(store, "t1", "m1", AssetChanges(timezone="Europe/Berlin"))
    assert asset.data_seq > result.seq  # an asset's number only grows
    second = store.changes_since(first.cursor)
    assert ("t1", "m1", asset.data_seq) in changed(second)
    assert ("t1", "m1", result.seq) not in changed(second)  # the asset's latest write only
    obs = {c: [None] for c in WEATHER_SCHEMA} | {"location_id": ["nowhere"], "ts": [H0]}
    weather = ingest_weather(store, "t1", pl.DataFrame(obs, schema=WEATHER_SCHEMA))
    assert weather.asset_ids == [] and weather.seq == 0  # no asset at that location
    upsert(store, "t1", "m2", AssetChanges(location_id="here"))  # created: nothing to drop
    here = {c: [None] for c in WEATHER_SCHEMA} | {"location_id": ["here"], "ts": [H0]}
    weather = ingest_weather(store, "t1", pl.DataFrame(here, schema=WEATHER_SCHEMA))
    assert weather.asset_ids == ["m2"] and weather.seq > asset.data_seq
    third = store.changes_since(second.cursor)
    assert ("t1", "m2", weather.seq) in changed(third)
    assert {a for _, a, _ in changed(third)} <= {"m1", "m2"}  # m1 only as a repeat


def test_writes_need_the_callers_transaction(store: TimeSeriesStore) -> None:
    """A write runs inside the transaction its caller opened: rolled back with it."""
    with pytest.raises(RuntimeError, match="rolled back"), \
            write_transaction(store.engine) as conn:  # type: ignore[attr-defined]
        store.ingest_readings(conn, "t1", frame([("m1", H0, 1.0)]))
        store.upsert_asset(conn, "t1", "m1", AssetChanges(country="DE"))
        raise RuntimeError("rolled back")
    assert store.get_assets("t1", ["m1"]) == []
    assert not store.tenant_exists("t1")


def test_unreachable_database_is_backend_unavailable(
    store: TimeSeriesStore, tmp_path: Path
) -> None:
    if store.backend_name != "postgresql":
        pytest.skip("an embedded SQLite file cannot be unreachable")
    from aihub.services.container import build_timeseries

    settings = Settings(AIHUB_DATA_DIR=tmp_path,
                        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    dead = build_timeseries(settings, create_db_engine(settings))
    with pytest.raises(BackendUnavailable) as info:
        dead.ping()
    assert info.value.backend == "postgresql" and info.value.status_code == 503
    with pytest.raises(BackendUnavailable):
        dead.load_rollups([1], 0, 1)
