"""Exports run on an executor (``aihub.services.executors``): in this process, on local
worker processes, or on a Dask cluster (a ``LocalCluster`` of two worker processes). Each
writes a dataset of Parquet parts that ``pyarrow.parquet.read_table`` reads back as one
table, equal row for row to the single-file export; the record lists the parts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from aihub.services.container import Services
from aihub.services.executors import (
    DaskExecutor,
    Executor,
    InlineExecutor,
    ProcessExecutor,
    make_executor,
)
from aihub.services.exports import ExportRequest
from tests.factories import at, ingest, ingest_weather, put_asset, readings, weather

T = "t-parts"
ASSETS = [f"p{i}" for i in range(5)]


@pytest.fixture(scope="module")
def dask_client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def load(client: TestClient) -> ExportRequest:
    """Five meters (two of them at a location with weather), 300 hours each."""
    for i, asset in enumerate(ASSETS):
        ingest(client, T, readings(asset, range(300), lambda h, i=i: 10.0 * i + h % 24))
        if i % 2:
            put_asset(client, T, asset, location_id="berlin", country="DE")
    ingest_weather(client, T, weather("berlin", range(-48, 300), temperature=lambda h: h / 10,
                                      humidity=lambda h: 50.0))
    return ExportRequest(tenant_id=T, feature_set="forecast_advanced", start_time=at(24),
                         end_time=at(300))


def executor_named(name: str, dask_client: object | None) -> Executor:
    if name == "dask":
        return DaskExecutor(client=dask_client)
    return ProcessExecutor(2) if name == "processes" else InlineExecutor()


@pytest.mark.parametrize("kind", ["inline", "processes", "dask"])
def test_dataset_equals_the_single_file_export_row_for_row(
    client: TestClient, services: Services, kind: str, request: pytest.FixtureRequest
) -> None:
    req = load(client)
    single = services.exports.export(req)
    dask_client = request.getfixturevalue("dask_client") if kind == "dask" else None
    seen: list[tuple[int, int]] = []
    with executor_named(kind, dask_client) as executor:
        record = services.exports.export(req, executor=executor, part_assets=2,
                                         progress=lambda d, t: seen.append((d, t)))
    assert record.status == "completed", record.message
    dataset = Path(record.storage_path or "")
    assert dataset.is_dir()
    assert sorted(p.name for p in dataset.iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    table = pq.read_table(dataset)
    reference = pq.read_table(single.storage_path)
    assert reference.num_rows == 5 * 276
    assert table.num_rows == record.row_count == single.row_count
    assert table.equals(reference), (table.schema, reference.schema)
    assert [p["path"] for p in record.parts or []] == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [p["rows"] for p in record.parts or []] == [552, 552, 276]
    assert [p["bytes"] for p in record.parts or []] == [
        (dataset / p["path"]).stat().st_size for p in record.parts or []]
    assert record.file_size_bytes == sum(p["bytes"] for p in record.parts or [])
    assert sorted(seen)[-1] == (5, 5) and len(seen) == 3  # one report per finished part


def test_the_record_lists_the_parts_over_http(client: TestClient, services: Services) -> None:
    req = load(client)
    record = services.exports.export(req, executor=InlineExecutor(), part_assets=4)
    body = client.get(f"/ai/features/exports/{record.export_id}").json()
    assert body["storage_path"] == record.storage_path
    assert body["parts"] == [
        {"path": "part-00000.parquet", "rows": 4 * 276, "bytes": record.parts[0]["bytes"]},  # type: ignore[index]
        {"path": "part-00001.parquet", "rows": 276, "bytes": record.parts[1]["bytes"]},  # type: ignore[index]
    ]
    single = client.post("/ai/features/export", json={
        "tenant_id": T, "feature_set": "forecast_basic", "start_time": "2024-01-02T00:00:00Z",
        "end_time": "2024-01-03T00:00:00Z"}).json()
    assert single["parts"] is None


def test_an_export_without_rows_is_one_empty_part_with_the_columns(
    client: TestClient, services: Services
) -> None:
    load(client)
    req = ExportRequest(tenant_id=T, feature_set="forecast_basic", start_time=at(1000),
                        end_time=at(1100))
    record = services.exports.export(req, executor=make_executor(workers=None))
    table = pq.read_table(record.storage_path)
    assert table.num_rows == 0 and record.row_count == 0
    assert table.column_names[:3] == ["tenant_id", "asset_id", "timestamp"]
    assert table.schema.equals(pq.read_table(services.exports.export(req).storage_path).schema)


@pytest.mark.parametrize("how", ["workers", "dask"])
def test_the_cli_exports_a_dataset_with_workers_or_on_dask(
    client: TestClient, services: Services, how: str, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import sys

    from aihub.cli import main
    from tests.security.faults import settings_env

    load(client)
    for k, v in settings_env(services.settings).items():
        if k.startswith(("AIHUB_", "DATABASE_", "REDIS_", "EXPORT_", "MINIO_", "MODEL_")):
            monkeypatch.setenv(k, v)
    option = (["--workers", "2"] if how == "workers"
              else ["--dask", request.getfixturevalue("dask_client").scheduler.address])  # type: ignore[attr-defined]
    monkeypatch.setattr(sys, "argv", ["aihub", "export", "--tenant", T, "--start",
                                      "2024-01-02T00:00:00Z", "--end", "2024-01-13T12:00:00Z",
                                      "-s", "forecast_advanced", *option])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    records, _ = services.exports.list(T, limit=1, offset=0)
    record = records[0]
    assert record.status == "completed" and record.row_count == 5 * 276
    assert f"completed {5 * 276} rows in {len(record.parts or [])} part(s)" in out, out
    assert pq.read_table(record.storage_path).equals(
        pq.read_table(services.exports.export(load_request()).storage_path))


def load_request() -> ExportRequest:
    return ExportRequest(tenant_id=T, feature_set="forecast_advanced", start_time=at(24),
                         end_time=at(300))


def test_with_a_dask_scheduler_configured_api_exports_are_datasets(
    client: TestClient, services: Services, dask_client: Any,
) -> None:
    from aihub.api.app import create_app
    from aihub.services.container import build_services

    req = load(client)
    reference = pq.read_table(services.exports.export(req).storage_path)
    on_dask = build_services(services.settings.model_copy(
        update={"dask_scheduler": dask_client.scheduler.address}))
    body = {"tenant_id": T, "feature_set": "forecast_advanced",
            "start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-13T12:00:00Z"}
    try:
        with TestClient(create_app(services=on_dask)) as api:
            waited = api.post("/ai/features/export", json=body).json()
            accepted = api.post("/ai/features/export", json={**body, "wait": False})
            assert accepted.status_code == 202, accepted.text
            deadline = time.monotonic() + 60
            record = accepted.json()
            while record["status"] == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
                record = api.get(f"/ai/features/exports/{record['export_id']}").json()
    finally:
        on_dask.close()
    for done in (waited, record):
        assert done["status"] == "completed", done
        assert [p["path"] for p in done["parts"]] == ["part-00000.parquet"]
        assert pq.read_table(done["storage_path"]).equals(reference)
