"""Nothing blocks the event loop: with every database connection taken by slow requests
(writers queued behind a lock the test holds), /health answers within 50 ms, a hot cached
online get keeps answering, and requests that need a connection fail after the pool
timeout with a 503 naming the database (never a 500, never a hang). The key check in the
auth middleware behaves the same: a database it can't reach is a 503, a key already
verified keeps working."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import Services, build_services
from tests.conftest import LiveServer
from tests.factories import at, iso, readings
from tests.registry.models import lightgbm_text, register_body
from tests.responsiveness import assert_responsive, probe

POOL_TIMEOUT = 3.0  # a loop blocked on the pool would stall for this long
HOT = {"tenant_id": "t", "asset_id": "m1", "feature_set": "forecast_basic", "as_of": iso(at(30))}


@pytest.fixture
def svc(settings: Settings) -> Iterator[Services]:
    built = build_services(settings.model_copy(update={"db_pool_timeout": POOL_TIMEOUT}))
    yield built
    built.close()


@contextmanager
def writers_blocked(svc: Services) -> Iterator[None]:
    """Hold the database's write lock from outside the app (SQLite: a reserved lock;
    PostgreSQL: the readings table), so every ingest waits, holding its connection."""
    if svc.engine.dialect.name == "sqlite":
        conn = sqlite3.connect(svc.engine.url.database or "", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        assert svc.settings.database_url is not None
        with psycopg.connect(svc.settings.database_url) as pg:
            pg.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                pg.rollback()


def pool_capacity(engine: sa.Engine) -> int:
    pool: Any = engine.pool
    return int(pool.size() + pool._max_overflow)


def _wait_for(predicate: Any, what: str, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _assert_503_naming_the_database(r: httpx.Response, svc: Services) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    body = r.json()
    assert body["error"] == "backend_unavailable"
    assert body["details"]["backend"] == svc.engine.dialect.name
    assert "Traceback" not in r.text and "QueuePool" not in r.text  # no driver text


def test_pool_exhausted_by_slow_requests_blocks_nothing_else(svc: Services) -> None:
    with LiveServer(create_app(services=svc)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post("/ai/features/ingest", json={"tenant_id": "t",
                                                   "readings": readings("m1", range(30))})
        assert r.status_code == 200, r.text
        assert http.post("/ai/features/get", json=HOT).status_code == 200  # now cached
        model_id = http.post("/ai/models/register", json=register_body()).json()["model_id"]
        assert http.put(f"/ai/models/{model_id}/artifact",
                        content=lightgbm_text()).status_code == 200

        capacity = pool_capacity(svc.engine)
        results: list[httpx.Response] = []

        def slow_ingest(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                results.append(c.post("/ai/features/ingest", json={
                    "tenant_id": "t", "readings": readings(f"w{n}", [1])}))

        lookups: list[httpx.Response] = []

        def model_lookups() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                for _ in range(3):
                    lookups.append(c.get(f"/ai/models/{model_id}"))

        with writers_blocked(svc):
            writers = [threading.Thread(target=slow_ingest, args=(n,))
                       for n in range(capacity + 4)]
            for t in writers:
                t.start()
            pool: Any = svc.engine.pool
            _wait_for(lambda: pool.checkedout() >= capacity, "the pool never filled up")
            # Registry reads need a connection too: they wait out the pool timeout (in a
            # worker thread) while the loop serves everything else.
            reader = threading.Thread(target=model_lookups)
            reader.start()
            assert_responsive(probe(server.url, HOT, samples=25))
            reader.join(timeout=60)
            assert len(lookups) == 3
            for r in lookups:
                _assert_503_naming_the_database(r, svc)
        for t in writers:
            t.join(timeout=120)
        assert len(results) == capacity + 4
        statuses = sorted(r.status_code for r in results)
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(200) >= 1  # the ones holding connections finish once free
        for r in results:
            if r.status_code == 503:  # waited for a connection past the pool timeout
                _assert_503_naming_the_database(r, svc)
        # Everything serves again.
        assert http.get(f"/ai/models/{model_id}").status_code == 200
        assert http.post("/ai/features/get", json=HOT).status_code == 200


def test_key_check_with_the_pool_exhausted_is_503_and_known_keys_keep_working(
        svc: Services) -> None:
    _, known = svc.api_keys.create(["t"], "write")
    _, unseen = svc.api_keys.create(["t"], "read")
    svc.key_cache.clear()
    auth = {"Authorization": f"Bearer {known}"}
    with LiveServer(create_app(services=svc)) as server, \
            httpx.Client(base_url=server.url, timeout=60, headers=auth) as http:
        r = http.post("/ai/features/ingest", json={"tenant_id": "t",
                                                   "readings": readings("m1", range(30))})
        assert r.status_code == 200, r.text
        assert http.post("/ai/features/get", json=HOT).status_code == 200
        held = []
        try:
            while True:  # take every connection the pool has
                held.append(svc.engine.connect())
        except sa.exc.TimeoutError:
            pass
        try:
            r = http.get("/ai/features/catalog", headers={"Authorization": f"Bearer {unseen}"})
            _assert_503_naming_the_database(r, svc)
            assert_responsive(probe(server.url, HOT, samples=10, headers=auth))
        finally:
            for conn in held:
                conn.close()
        r = http.get("/ai/features/catalog", headers={"Authorization": f"Bearer {unseen}"})
        assert r.status_code == 200, r.text
