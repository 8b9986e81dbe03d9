"""GET /ai/features/exports/{export_id}/file: an export's Parquet bytes, streamed from the
export directory or S3, read back with pyarrow equal to the export's rows; a dataset export
part by part; clear 404/409/422 for what cannot be downloaded."""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from aihub import Client
from aihub.api.app import create_app
from aihub.config import Settings
from aihub.errors import InvalidInput
from aihub.services.container import Services, build_services
from aihub.services.executors import InlineExecutor
from aihub.services.export_reaper import owner_token
from aihub.services.exports import ExportRequest
from aihub.stores.metadata.exports import ExportRecord
from tests.conftest import LiveServer
from tests.factories import at, ingest, iso, readings

T = "t-download"
ASSETS = ["d0", "d1", "d2"]
PARQUET = "application/vnd.apache.parquet"


def load(client: TestClient) -> ExportRequest:
    for i, asset in enumerate(ASSETS):
        ingest(client, T, readings(asset, range(72), lambda h, i=i: 5.0 * i + h % 24))
    return ExportRequest(tenant_id=T, feature_set="forecast_basic", start_time=at(24),
                         end_time=at(72))


def export_single(client: TestClient) -> dict[str, object]:
    load(client)
    r = client.post("/ai/features/export", json={
        "tenant_id": T, "feature_set": "forecast_basic",
        "start_time": iso(at(24)), "end_time": iso(at(72))})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def read(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def test_a_single_file_export_downloads_as_its_rows(client: TestClient) -> None:
    record = export_single(client)
    eid = record["export_id"]
    r = client.get(f"/ai/features/exports/{eid}/file")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == PARQUET
    assert r.headers["content-disposition"] == (
        f'attachment; filename="{T}_forecast_basic_{eid}.parquet"')
    assert int(r.headers["content-length"]) == len(r.content) == record["file_size_bytes"]
    table = read(r.content)
    assert table.num_rows == record["row_count"] == 3 * 48
    assert table.equals(pq.read_table(str(record["storage_path"])))
    # a single file has no parts
    r = client.get(f"/ai/features/exports/{eid}/file", params={"part": 0})
    assert r.status_code == 422
    assert "single file" in r.json()["detail"]


def test_a_dataset_downloads_part_by_part(client: TestClient, services: Services) -> None:
    req = load(client)
    single = services.exports.export(req)
    with InlineExecutor() as executor:
        record = services.exports.export(req, executor=executor, part_assets=2)
    assert record.status == "completed" and record.parts is not None
    assert len(record.parts) == 2
    eid = record.export_id
    tables = []
    for n, part in enumerate(record.parts):
        r = client.get(f"/ai/features/exports/{eid}/file", params={"part": n})
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"] == (
            f'attachment; filename="{T}_forecast_basic_{eid}_part-{n:05d}.parquet"')
        assert int(r.headers["content-length"]) == len(r.content) == part["bytes"]
        table = read(r.content)
        assert table.num_rows == part["rows"]
        tables.append(table)
    assert pa.concat_tables(tables).equals(pq.read_table(single.storage_path))

    r = client.get(f"/ai/features/exports/{eid}/file")
    assert r.status_code == 422
    assert "2 part(s)" in r.json()["detail"]
    for bad in ("2", "-1", "x"):
        r = client.get(f"/ai/features/exports/{eid}/file", params={"part": bad})
        assert r.status_code == 422, bad


def _insert(services: Services, record: ExportRecord) -> None:
    with services.engine.begin() as conn:
        services.exports.records.insert(conn, record, owner=owner_token())


def test_unfinished_gone_and_unknown_exports(client: TestClient, services: Services) -> None:
    done = services.exports.get(str(export_single(client)["export_id"]))
    for status in ("running", "failed"):
        other = dataclasses.replace(done, export_id=str(uuid.uuid4()), status=status,
                                    row_count=None, file_size_bytes=None, completed_at=None)
        _insert(services, other)
        r = client.get(f"/ai/features/exports/{other.export_id}/file")
        assert r.status_code == 409, r.text
        assert status in r.json()["detail"] and "not completed" in r.json()["detail"]

    # a record pointing outside the export directory is refused, never opened
    outside = dataclasses.replace(done, export_id=str(uuid.uuid4()),
                                  storage_path="/etc/passwd")
    _insert(services, outside)
    r = client.get(f"/ai/features/exports/{outside.export_id}/file")
    assert r.status_code == 404
    assert "root:" not in r.text

    Path(str(done.storage_path)).unlink()
    r = client.get(f"/ai/features/exports/{done.export_id}/file")
    assert r.status_code == 404
    assert done.export_id in r.json()["detail"] and "gone" in r.json()["detail"]

    r = client.get(f"/ai/features/exports/{uuid.uuid4()}/file")
    assert r.status_code == 404
    assert "unknown export" in r.json()["detail"]


def test_a_dataset_part_whose_file_is_gone_is_404(client: TestClient,
                                                  services: Services) -> None:
    req = load(client)
    with InlineExecutor() as executor:
        record = services.exports.export(req, executor=executor, part_assets=2)
    (Path(str(record.storage_path)) / "part-00001.parquet").unlink()
    r = client.get(f"/ai/features/exports/{record.export_id}/file", params={"part": 1})
    assert r.status_code == 404
    assert "part 1" in r.json()["detail"]
    assert client.get(f"/ai/features/exports/{record.export_id}/file",
                      params={"part": 0}).status_code == 200


def test_the_client_downloads_to_a_file(services: Services, tmp_path: Path) -> None:
    with LiveServer(create_app(services=services)) as server, Client(server.url) as hub:
        for i, asset in enumerate(ASSETS):
            hub.ingest(T, readings(asset, range(72), lambda h, i=i: 2.0 * i + h))
        record = hub.export_features(T, start_time=at(24), end_time=at(72))
        dest = hub.download_export(record["export_id"], tmp_path / "out.parquet")
        assert dest == tmp_path / "out.parquet"
        assert pq.read_table(dest).equals(pq.read_table(record["storage_path"]))
        with pytest.raises(InvalidInput, match="single file"):
            hub.download_export(record["export_id"], tmp_path / "bad.parquet", part=0)
        assert not (tmp_path / "bad.parquet").exists()
        assert not list(tmp_path.glob(".*partial"))
        with InlineExecutor() as executor:
            ds = services.exports.export(load_request(), executor=executor, part_assets=2)
        part = hub.download_export(ds.export_id, tmp_path / "p1.parquet", part=1)
        assert pq.read_table(part).num_rows == (ds.parts or [])[1]["rows"]
        Path(record["storage_path"]).unlink()
        with pytest.raises(Exception, match="gone"):
            hub.download_export(record["export_id"], tmp_path / "gone.parquet")


def load_request() -> ExportRequest:
    return ExportRequest(tenant_id=T, feature_set="forecast_basic", start_time=at(24),
                         end_time=at(72))


# -- S3 -----------------------------------------------------------------------------------

@pytest.fixture
def s3_services(tmp_path: Path, moto_server: str, s3_bucket: str) -> Iterator[Services]:
    settings = Settings(AIHUB_DATA_DIR=tmp_path / "data", MINIO_ENDPOINT_URL=moto_server,
                        MINIO_ACCESS_KEY="testing", MINIO_SECRET_KEY="testing",
                        MODEL_STORAGE_BUCKET=s3_bucket + "-models",
                        EXPORT_STORAGE_PATH=f"s3://{s3_bucket}/feature-exports")
    svc = build_services(settings)
    yield svc
    svc.close()


def test_exports_on_s3_download_streamed(s3_services: Services, s3_bucket: str) -> None:
    with TestClient(create_app(services=s3_services)) as client:
        record = export_single(client)
        assert str(record["storage_path"]).startswith(f"s3://{s3_bucket}/feature-exports/")
        eid = record["export_id"]
        r = client.get(f"/ai/features/exports/{eid}/file")
        assert r.status_code == 200, r.text
        assert int(r.headers["content-length"]) == len(r.content) == record["file_size_bytes"]
        table = read(r.content)
        assert table.num_rows == record["row_count"] == 3 * 48

        with InlineExecutor() as executor:
            ds = s3_services.exports.export(load_request(), executor=executor, part_assets=2)
        assert str(ds.storage_path).startswith("s3://") and ds.parts is not None
        parts = [read(client.get(f"/ai/features/exports/{ds.export_id}/file",
                                 params={"part": n}).content) for n in range(len(ds.parts))]
        assert pa.concat_tables(parts).equals(table)

        # the object is gone: 404 naming the export
        s3 = s3_services.exports._s3_client()
        bucket, key = str(record["storage_path"])[5:].split("/", 1)
        s3.delete_object(Bucket=bucket, Key=key)
        r = client.get(f"/ai/features/exports/{eid}/file")
        assert r.status_code == 404
        assert eid in r.json()["detail"]


def test_a_record_outside_the_s3_prefix_is_refused(s3_services: Services,
                                                   s3_bucket: str) -> None:
    with TestClient(create_app(services=s3_services)) as client:
        done = s3_services.exports.get(str(export_single(client)["export_id"]))
        for path in ("s3://other-bucket/feature-exports/x.parquet",
                     f"s3://{s3_bucket}/elsewhere/x.parquet",
                     f"s3://{s3_bucket}/feature-exports/../x.parquet"):
            other = dataclasses.replace(done, export_id=str(uuid.uuid4()), storage_path=path)
            _insert(s3_services, other)
            r = client.get(f"/ai/features/exports/{other.export_id}/file")
            assert r.status_code == 404, path
            assert "not under the export storage path" in r.json()["detail"]
