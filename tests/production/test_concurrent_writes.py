"""Concurrent writes on PostgreSQL under per-asset locks, served by two replicas.

Two replicas (two ``Services`` on one PostgreSQL, each behind its own uvicorn server) take
concurrent ingests of overlapping and of disjoint assets, weather writes and asset edits
from several threads while readers keep filling their online caches. Afterwards: rollups
equal a recomputation from the readings, every reading holds the value of the last batch
that committed it (no duplicates, nothing lost), and neither replica serves a cached
entry older than the data. Run once with the shared Redis cache, and once with an
in-process cache per replica, where the other replica's writes reach a cache only through
the change feed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.features.frames import WEATHER_SCHEMA
from aihub.services.container import Services, build_services
from aihub.stores.timeseries.base import AssetChanges
from aihub.stores.timeseries.rollups import compute_rollups
from aihub.timeutil import to_us
from tests.conftest import REDIS_TEST_URL, LiveServer
from tests.factories import at, iso

T = "tenant-conc"
SHARED = [f"m{i}" for i in range(4)]  # written by every writer
WRITERS = 4
OWN = {w: [f"m{4 + 2 * w}", f"m{5 + 2 * w}"] for w in range(WRITERS)}  # one writer each
ASSETS = SHARED + [a for own in OWN.values() for a in own]
LOCATION = {a: ("l0" if i % 2 else "l1") for i, a in enumerate(ASSETS)}
BATCHES = 6
HOURS = 48
AS_OF = at(30)


def settings_for(tmp: Path, name: str, pg_url: str, redis_prefix: str, cache: str) -> Settings:
    return Settings(
        AIHUB_DATA_DIR=tmp / name, EXPORT_STORAGE_PATH=str(tmp / name / "exports"),
        DATABASE_URL=pg_url, REDIS_URL=REDIS_TEST_URL if cache == "redis" else None,
        AIHUB_REDIS_PREFIX=redis_prefix, FEATURE_CACHE_TTL=300,
        AIHUB_CHANGE_FOLLOW_INTERVAL=0.2,
    )


class Replica:
    def __init__(self, services: Services, server: LiveServer) -> None:
        self.services = services
        self.url = server.url


@pytest.fixture(params=["redis", "memory"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str,
             redis_prefix: str) -> Iterator[list[Replica]]:
    started: list[tuple[Services, LiveServer]] = []
    try:
        for name in ("a", "b"):
            svc = build_services(settings_for(tmp_path, name, pg_url, redis_prefix,
                                              request.param))
            server = LiveServer(create_app(services=svc)).__enter__()
            started.append((svc, server))
        yield [Replica(svc, server) for svc, server in started]
    finally:
        for svc, server in started:
            server.__exit__(None, None, None)
            svc.close()


def readings_batch(writer: int, batch: int, rng: np.random.Generator) -> pl.DataFrame:
    """15-minute readings of the shared assets and the writer's own over the same hours,
    plus a few off-grid points; every value is new, so each batch corrects the last."""
    rows: list[tuple[str, int, float]] = []
    for asset in SHARED + OWN[writer]:
        for q in range(HOURS * 4):
            rows.append((asset, to_us(at(q / 4)), float(rng.normal(50, 10))))
        for h in range(0, HOURS, 5):
            rows.append((asset, to_us(at(h + (writer + 1) / 60)), float(batch + writer)))
    return pl.DataFrame(rows, schema={"asset_id": pl.String, "ts": pl.Int64,
                                      "value": pl.Float64}, orient="row")


def weather_batch(k: int) -> pl.DataFrame:
    ts = [to_us(at(h)) for h in range(HOURS)]
    return pl.DataFrame({
        "location_id": [loc for loc in ("l0", "l1") for _ in ts], "ts": ts * 2,
        "temperature": [float(k * 10 + h % 7) for _ in (0, 1) for h in range(HOURS)],
        "humidity": [float(50 + k) for _ in (0, 1) for _ in ts],
    }).with_columns(
        *(pl.lit(None, pl.Float64).alias(c) for c in WEATHER_SCHEMA if c not in
          ("location_id", "ts", "temperature", "humidity"))
    ).select(list(WEATHER_SCHEMA))


def get(url: str, asset: str) -> dict[str, Any]:
    r = httpx.post(url + "/ai/features/get", timeout=60, json={
        "tenant_id": T, "asset_id": asset, "feature_set": "forecast_advanced",
        "lookback_hours": 168, "as_of": iso(AS_OF)})
    assert r.status_code == 200, r.text
    return r.json()["features"]  # type: ignore[no-any-return]


def run_all(targets: list[Any]) -> None:
    """Run every callable on a thread of its own, started together; re-raise failures."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def wrap(fn: Any) -> None:
        try:
            start.wait()
            fn()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    if errors:
        raise errors[0]


def test_concurrent_writes_keep_rollups_exact_and_no_replica_serves_stale_features(
    replicas: list[Replica], tmp_path: Path, pg_url: str,
) -> None:
    a = replicas[0]
    for asset in ASSETS:
        a.services.assets.put(T, asset, AssetChanges(location_id=LOCATION[asset]))
    a.services.ingest.ingest_weather(T, weather_batch(0))
    written: dict[str, list[tuple[int, pl.DataFrame]]] = {x: [] for x in ASSETS}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        rng = np.random.default_rng(w)
        for batch in range(BATCHES):
            svc = replicas[(w + batch) % 2].services
            frame = readings_batch(w, batch, rng)
            result = svc.ingest.ingest_readings(T, frame)
            with lock:
                for asset in result.asset_ids:
                    written[asset].append((result.seq, frame.filter(pl.col("asset_id") == asset)))

    def weather() -> None:
        for k in range(1, BATCHES + 1):
            replicas[k % 2].services.ingest.ingest_weather(T, weather_batch(k))

    def edits() -> None:
        zones = ("Asia/Tokyo", "UTC", "America/New_York")
        for k in range(BATCHES):
            svc = replicas[k % 2].services
            svc.assets.put(T, "m0", AssetChanges(timezone=zones[k % 3]))
            svc.assets.put(T, "m5", AssetChanges(location_id=("l0", "l1")[k % 2]))

    read_errors: list[BaseException] = []

    def reader(replica: Replica) -> None:
        try:
            while not stop.is_set():
                for asset in ASSETS:
                    get(replica.url, asset)
        except BaseException as exc:  # checked below
            read_errors.append(exc)

    readers = [threading.Thread(target=reader, args=(r,), daemon=True) for r in replicas]
    for t in readers:
        t.start()
    try:
        run_all([*(lambda w=w: writer(w) for w in range(WRITERS)), weather, edits])
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=120)
    assert not read_errors, read_errors[0]

    engine = a.services.engine
    # Every reading is the last committed batch's value: per asset, writes commit in the
    # order of their numbers (they hold the asset's lock from first statement to commit).
    for asset, batches in written.items():
        want: dict[int, float] = {}
        for _, frame in sorted(batches, key=lambda x: x[0]):
            want.update(zip(frame.get_column("ts").to_list(),
                            frame.get_column("value").to_list(), strict=True))
        key = a.services.timeseries.get_assets(T, [asset])[0].key
        stored = a.services.timeseries.load_readings(key, 0, 2**62)
        assert dict(stored.rows()) == want, asset
        assert stored.height == len(want)  # no duplicates
    with engine.connect() as conn:
        n_assets = conn.execute(sa.text("SELECT count(*) FROM assets WHERE tenant_id = :t"),
                                {"t": T}).scalar_one()
    assert n_assets == len(ASSETS)
    assert_rollups_exact(a.services)

    # No replica serves an entry older than the data: compare each with a fresh compute.
    fresh = build_services(settings_for(tmp_path, "fresh", pg_url, "unused:", "memory"))
    try:
        with LiveServer(create_app(services=fresh)) as server:
            want_features = {x: get(server.url, x) for x in ASSETS}
    finally:
        fresh.close()
    for replica in replicas:
        replica.services.features.follow_changes()  # as its lookups or follower thread do
        for asset in ASSETS:
            assert get(replica.url, asset) == want_features[asset], (replica.url, asset)


def assert_rollups_exact(services: Services) -> None:
    """Stored rollups equal ``compute_rollups`` of the stored readings (std included)."""
    with services.engine.connect() as conn:
        raw = pl.DataFrame(conn.execute(sa.text(
            "SELECT r.asset_key, r.ts, r.value FROM readings r JOIN assets a "
            "ON a.asset_key = r.asset_key WHERE a.tenant_id = :t"), {"t": T}).all(),
            schema={"asset_key": pl.Int64, "ts": pl.Int64, "value": pl.Float64}, orient="row")
    keys = raw.get_column("asset_key").unique().to_list()
    stored = services.timeseries.load_rollups(keys, 0, 2**62)
    want = compute_rollups(raw)
    assert stored.select("asset_key", "hour", "n").rows() == \
        want.select("asset_key", "hour", "n").rows()
    for col in ("mean", "std", "min", "max"):
        got, exp = stored.get_column(col).to_list(), want.get_column(col).to_list()
        assert [x is None for x in got] == [x is None for x in exp], col
        assert [x for x in got if x is not None] == pytest.approx(
            [x for x in exp if x is not None], rel=1e-9, abs=1e-9), col
