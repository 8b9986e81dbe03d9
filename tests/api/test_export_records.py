"""Export records: the file names the full export id, the record and its owner are written
together, and a failed export records what kind of failure it was and a reference to the
server log, never the exception's own text."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config
from fastapi.testclient import TestClient

from aihub.errors import BackendUnavailable
from aihub.services.container import Services
from aihub.services.export_reaper import owner_token
from aihub.services.exports import ExportRequest
from aihub.stores.export_targets import S3ExportTarget
from tests.conftest import free_port
from tests.factories import at, ingest, iso, readings

T = "t-records"


def request() -> dict[str, object]:
    return {"tenant_id": T, "feature_set": "forecast_basic",
            "start_time": iso(at(0)), "end_time": iso(at(48))}


def test_the_file_carries_the_full_export_id_and_the_record_its_owner(
    client: TestClient, services: Services,
) -> None:
    ingest(client, T, readings("m1", range(48)))
    body = client.post("/ai/features/export", json=request()).json()
    assert body["status"] == "completed"
    name = Path(body["storage_path"]).name
    assert body["export_id"] in name and len(body["export_id"]) == 36
    assert name == f"{T}_forecast_basic_{body['export_id']}.parquet"
    with services.engine.connect() as conn:
        owner = conn.execute(sa.text("SELECT owner FROM feature_exports WHERE export_id = :i"),
                             {"i": body["export_id"]}).scalar_one()
    assert owner == owner_token()


def test_a_failed_export_records_a_log_reference_not_the_exception_text(
    client: TestClient, services: Services, caplog: pytest.LogCaptureFixture,
) -> None:
    """A real fault: the export's S3 destination does not answer."""
    ingest(client, T, readings("m1", range(48)))
    nobody = f"http://127.0.0.1:{free_port()}"
    s3 = boto3.client("s3", endpoint_url=nobody, aws_access_key_id="x",
                      aws_secret_access_key="x", region_name="us-east-1",
                      config=Config(connect_timeout=1, retries={"max_attempts": 1}))
    services.exports.publish = S3ExportTarget(s3, "s3://exports/p")
    req = ExportRequest(tenant_id=T, feature_set="forecast_basic",
                        start_time=datetime(2024, 1, 1, tzinfo=UTC),
                        end_time=datetime(2024, 1, 3, tzinfo=UTC))
    with caplog.at_level(logging.WARNING, logger="aihub.exports"), \
            pytest.raises(BackendUnavailable):
        services.exports.export(req)
    records, _ = services.exports.list(T, limit=10, offset=0)
    (record,) = records
    assert record.status == "failed"
    message = record.message or ""
    found = re.fullmatch(r"export failed \(s3 unavailable\); see the server log, "
                         r"reference ([0-9a-f]{12})", message)
    assert found, message
    assert "127.0.0.1" not in message
    logged = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert logged and record.export_id in logged[0].getMessage()
    assert logged[0].exc_info is not None
    assert nobody in caplog.text  # the details, traceback and cause, are in the log
    assert not list(services.exports.export_dir.glob("*.parquet*"))  # nothing left behind
