"""Dataset exports on the production backends: parts written to S3 by worker processes, and
a Dask worker killed in the middle of its task. The dataset still holds exactly the rows of
the single-file export: the dead worker's partition runs again elsewhere and its part (a
deterministic name) is written once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import psutil
import psycopg
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from aihub.config import Settings
from aihub.services.container import Services, build_services
from aihub.services.executors import DaskExecutor, ProcessExecutor
from aihub.services.exports import ExportRequest
from aihub.stores.timeseries.base import AssetChanges
from tests.factories import at, readings, readings_frame, weather

T = "t-dask"
ASSETS = [f"d{i}" for i in range(6)]


def build(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def local(prod_settings: Settings) -> Iterator[Services]:
    yield from build(prod_settings)


@pytest.fixture
def on_s3(prod_settings: Settings, s3_bucket: str) -> Iterator[Services]:
    yield from build(prod_settings.model_copy(
        update={"export_storage_path": f"s3://{s3_bucket}-exports/features/daily"}))


def load(svc: Services) -> ExportRequest:
    """Six meters at one location with weather, 300 hours each."""
    for i, asset in enumerate(ASSETS):
        svc.ingest.ingest_readings(T, readings_frame(
            readings(asset, range(300), lambda h, i=i: 5.0 * i + (h % 24) / 3)))
        svc.assets.put(T, asset, AssetChanges(location_id="berlin"))
    obs = weather("berlin", range(-48, 300), temperature=lambda h: h / 10,
                  humidity=lambda h: 40.0 + h % 7)
    svc.ingest.ingest_weather(T, pl.DataFrame({
        "location_id": [o["location_id"] for o in obs],
        "ts": readings_frame([{"asset_id": "x", "ts": o["ts"], "value": 0} for o in obs])
        .get_column("ts"),
        "temperature": [o["temperature"] for o in obs],
        "humidity": [o["humidity"] for o in obs],
    }))
    return ExportRequest(tenant_id=T, feature_set="forecast_advanced", start_time=at(24),
                         end_time=at(300))


def s3_fs(moto_server: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                             endpoint_override=moto_server.removeprefix("http://"),
                             scheme="http")


def test_parts_written_to_s3_by_worker_processes_read_as_the_single_file(
    on_s3: Services, moto_server: str, s3_bucket: str
) -> None:
    req = load(on_s3)
    single = on_s3.exports.export(req)
    with ProcessExecutor(2) as executor:
        record = on_s3.exports.export(req, executor=executor, part_assets=2)
    prefix = f"s3://{s3_bucket}-exports/features/daily/"
    assert record.status == "completed", record.message
    assert (record.storage_path or "").startswith(prefix)
    assert (single.storage_path or "").startswith(prefix)
    fs = s3_fs(moto_server)
    dataset = pq.read_table((record.storage_path or "").removeprefix("s3://"), filesystem=fs)
    reference = pq.read_table((single.storage_path or "").removeprefix("s3://"), filesystem=fs)
    assert reference.num_rows == 6 * 276 == record.row_count
    assert dataset.equals(reference)
    listed = fs.get_file_info(pafs.FileSelector(
        (record.storage_path or "").removeprefix("s3://")))
    assert sorted((Path(i.path).name, i.size) for i in listed) == [
        (p["path"], p["bytes"]) for p in record.parts or []]
    assert [p["path"] for p in record.parts or []] == [f"part-0000{i}.parquet" for i in range(3)]


def _executing(client: Any) -> dict[str, list[str]]:
    def keys(dask_worker: Any) -> list[str]:
        return [str(ts.key) for ts in dask_worker.state.executing]

    return client.run(keys)  # type: ignore[no-any-return]


def _blocked_on_weather(pg_url: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'weather' AND NOT l.granted").fetchone()
    return int(row[0]) if row else 0


def _wait(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_dask_worker_s_partition_is_retried_without_missing_or_duplicate_rows(
    local: Services, pg_url: str
) -> None:
    from distributed import Client, LocalCluster

    req = load(local)
    single = local.exports.export(req)
    reference = pq.read_table(single.storage_path)
    outcome: dict[str, Any] = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        # Every task reads the weather after the load rollups: holding the table makes
        # both workers stop in the middle of a task, where one of them is killed.
        lock = psycopg.connect(pg_url)
        lock.execute("LOCK TABLE weather IN ACCESS EXCLUSIVE MODE")

        def run() -> None:
            try:
                outcome["record"] = local.exports.export(
                    req, executor=DaskExecutor(client=client), part_assets=1)
            except BaseException as exc:  # reported by the assertions below
                outcome["error"] = exc

        exporter = threading.Thread(target=run)
        exporter.start()
        try:
            _wait("both workers inside a task, waiting on the weather",
                  lambda: _blocked_on_weather(pg_url) >= 2)
            busy = _wait("the tasks on the workers",
                         lambda: {a: k for a, k in _executing(client).items() if k})
            pids = client.run(os.getpid)
            victim = sorted(busy)[0]
            os.kill(pids[victim], signal.SIGKILL)
            _wait("the scheduler to drop the killed worker",
                  lambda: victim not in client.nthreads(), timeout=60)
        finally:
            lock.rollback()
            lock.close()
        exporter.join(timeout=180)
    assert not exporter.is_alive()
    assert "error" not in outcome, outcome.get("error")
    record = outcome["record"]
    assert record.status == "completed", record.message
    dataset = Path(record.storage_path)
    assert sorted(p.name for p in dataset.iterdir()) == [
        f"part-0000{i}.parquet" for i in range(6)]  # no temporary file of the dead task left
    table = pq.read_table(dataset)
    assert table.num_rows == reference.num_rows == record.row_count
    assert table.equals(reference)
    keys = table.select(["asset_id", "timestamp"]).to_pylist()
    assert len({(k["asset_id"], k["timestamp"]) for k in keys}) == len(keys)


def test_a_killed_local_pool_worker_fails_the_export_cleanly(local: Services,
                                                             pg_url: str) -> None:
    """A local pool cannot rerun a dead process's task: the export is recorded failed, with
    a reference to the log, and no part of it is left."""
    req = load(local)
    outcome: dict[str, Any] = {}
    lock = psycopg.connect(pg_url)
    lock.execute("LOCK TABLE weather IN ACCESS EXCLUSIVE MODE")
    executor = ProcessExecutor(2)

    def run() -> None:
        try:
            outcome["record"] = local.exports.export(req, executor=executor, part_assets=1)
        except BaseException as exc:  # expected: the pool broke
            outcome["error"] = exc

    exporter = threading.Thread(target=run)
    exporter.start()
    try:
        _wait("both pool workers inside a task", lambda: _blocked_on_weather(pg_url) >= 2)
        me = psutil.Process()
        workers = [c for c in me.children(recursive=True)
                   if "multiprocessing" in " ".join(c.cmdline())
                   and "resource_tracker" not in " ".join(c.cmdline())]
        assert workers, [c.cmdline() for c in me.children(recursive=True)]
        os.kill(workers[0].pid, signal.SIGKILL)
    finally:
        time.sleep(0.5)
        lock.rollback()
        lock.close()
    exporter.join(timeout=120)
    assert not exporter.is_alive()
    assert "error" in outcome, outcome
    records, _ = local.exports.list(T, limit=1, offset=0)
    failed = records[0]
    assert failed.status == "failed" and "see the server log, reference" in (failed.message or "")
    assert failed.parts is None
    assert not Path(failed.storage_path or "").exists()


def test_an_unreachable_dask_scheduler_fails_a_background_export(
    prod_settings: Settings,
) -> None:
    from fastapi.testclient import TestClient

    from aihub.api.app import create_app
    from tests.conftest import free_port

    gone = f"tcp://127.0.0.1:{free_port()}"
    svc = build_services(prod_settings.model_copy(update={"dask_scheduler": gone}))
    try:
        load(svc)
        with TestClient(create_app(services=svc)) as api:
            r = api.post("/ai/features/export", json={
                "tenant_id": T, "feature_set": "forecast_basic",
                "start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-03T00:00:00Z",
                "wait": False})
            assert r.status_code == 202, r.text
            record = r.json()
            deadline = time.monotonic() + 60
            while record["status"] == "running" and time.monotonic() < deadline:
                time.sleep(0.2)
                record = api.get(f"/ai/features/exports/{record['export_id']}").json()
        assert record["status"] == "failed", record
        assert record["message"].startswith("export failed (dask unavailable)"), record
    finally:
        svc.close()
