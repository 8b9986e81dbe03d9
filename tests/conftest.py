"""Shared fixtures: settings on a temporary data dir, built services, an in-process
client, and a real uvicorn server on a loopback port for over-the-wire tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import Services, build_services

# The session's own Redis Cluster (``redis_cluster``, ``cluster_prefix``).
pytest_plugins = ["tests.redis_cluster"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    """Embedded settings on a temporary data dir; the production backends instead when a
    ``backends``-marked test runs with ``backend == "production"``."""
    if backend == "production":
        return request.getfixturevalue("prod_settings")  # type: ignore[no-any-return]
    return Settings(
        AIHUB_DATA_DIR=tmp_path / "data",
        EXPORT_STORAGE_PATH=str(tmp_path / "exports"),
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services)) as c:
        yield c


class LiveServer:
    """uvicorn serving ``app`` in a thread; ``url`` is its base address."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(services: Services) -> Iterator[LiveServer]:
    with LiveServer(create_app(services=services)) as server:
        yield server


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        yield c


# -- production backends: PostgreSQL, Redis, S3 (moto) ------------------------------------
# Real servers: PostgreSQL and Redis on this machine (CI starts them), S3 over HTTP from a
# moto server on a loopback port. ``AIHUB_TEST_BACKENDS`` (``embedded``, ``production`` or
# both, comma-separated) picks the configurations that tests/api, tests/e2e and
# ``backends``-marked tests run on; unset, it is both when PostgreSQL and Redis answer, else
# embedded alone. Naming ``production`` explicitly makes an unreachable server a failure.

import os  # noqa: E402
import uuid  # noqa: E402

PG_ADMIN_URL = os.environ.get("AIHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("AIHUB_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _pg_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


_REACHABLE: dict[str, bool] = {}


def production_reachable() -> bool:
    if "prod" not in _REACHABLE:
        _REACHABLE["prod"] = _pg_reachable() and _redis_reachable()
    return _REACHABLE["prod"]


def test_backends() -> list[str]:
    raw = os.environ.get("AIHUB_TEST_BACKENDS")
    if raw:
        return [b.strip() for b in raw.split(",") if b.strip()]
    return ["embedded", "production"] if production_reachable() else ["embedded"]


def require_production() -> None:
    if production_reachable():
        return
    if "production" in (os.environ.get("AIHUB_TEST_BACKENDS") or ""):
        pytest.fail("AIHUB_TEST_BACKENDS asks for production but PostgreSQL/Redis do not answer")
    pytest.skip("PostgreSQL or Redis not reachable (set AIHUB_TEST_BACKENDS to require them)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends: run the test once per configuration in AIHUB_TEST_BACKENDS "
        "(embedded, production) through the `settings`/`services` fixtures",
    )
    config.addinivalue_line(
        "markers", "embedded_only: tests of the embedded backends' own behaviour"
    )


_SUITES_ON_EVERY_BACKEND = ("tests/api/", "tests/e2e/", "tests/registry/")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The API and end-to-end suites, and ``backends``-marked tests anywhere, run once per
    configuration in ``test_backends()``; ``embedded_only`` tests stay on the embedded one."""
    if "backend" not in metafunc.fixturenames:
        return
    marked = metafunc.definition.get_closest_marker("backends") is not None
    path = metafunc.definition.path.as_posix()
    whole_suite = any(s in path for s in _SUITES_ON_EVERY_BACKEND)
    if marked or whole_suite:
        backends = test_backends()
        if metafunc.definition.get_closest_marker("embedded_only"):
            backends = [b for b in backends if b == "embedded"] or ["embedded"]
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``embedded`` unless a ``backends``-marked test is parametrized over configurations."""
    return getattr(request, "param", "embedded")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    require_production()
    import psycopg

    name = f"aihub_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset_pg(url: str) -> None:
    """Empty every table but Alembic's, so each test starts from a migrated, empty schema."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            conn.execute(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
            )
            if "ingest_seq" in tables:
                conn.execute("INSERT INTO ingest_seq (id, seq) VALUES (1, 0)")


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test (migrated on first use)."""
    import sqlalchemy as sa

    from aihub.db import upgrade

    sa_url = pg_database.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(sa_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    reset_pg(pg_database)
    return pg_database


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted after."""
    require_production()
    import redis

    prefix = f"aihub-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_TEST_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """An S3 endpoint (moto's server) on a loopback port for the session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket() -> str:
    return f"aihub-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def prod_settings(
    tmp_path: Path, pg_url: str, redis_prefix: str, moto_server: str, s3_bucket: str
) -> Settings:
    """Settings on the production backends: PostgreSQL, Redis and S3 (moto)."""
    return Settings(
        AIHUB_DATA_DIR=tmp_path / "data",
        EXPORT_STORAGE_PATH=str(tmp_path / "exports"),
        DATABASE_URL=pg_url,
        REDIS_URL=REDIS_TEST_URL,
        AIHUB_REDIS_PREFIX=redis_prefix,
        MINIO_ENDPOINT_URL=moto_server,
        MINIO_ACCESS_KEY="testing",
        MINIO_SECRET_KEY="testing",
        MODEL_STORAGE_BUCKET=s3_bucket,
    )
