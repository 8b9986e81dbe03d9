"""Artifact integrity: digests recorded and checked, atomic upload-then-row, removal."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aihub.services.container import Services
from aihub.stores.metadata.models import ModelMetadataStore
from tests.registry.conftest import MODEL, Register
from tests.registry.models import lightgbm_text, register_body


def _objects(services: Services) -> list[Path]:
    root = services.settings.artifacts_dir
    return [p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts]


def test_upload_records_size_and_sha256_and_download_matches(
    client: TestClient, register: Register
) -> None:
    model_id = register("v1.0.0", artifact=False)
    data = lightgbm_text()
    r = client.put(f"/ai/models/{model_id}/artifact", content=data,
                   headers={"X-Content-SHA256": hashlib.sha256(data).hexdigest()})
    assert r.status_code == 200
    assert r.json() == {"model_id": model_id, "model_size_bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "format": "lightgbm"}
    down = client.get(f"/ai/models/{model_id}/artifact")
    assert down.content == data
    assert down.headers["x-content-sha256"] == hashlib.sha256(data).hexdigest()
    assert int(down.headers["content-length"]) == len(data)


def test_digest_mismatch_in_transit_is_refused_and_nothing_kept(
    client: TestClient, register: Register, services: Services
) -> None:
    model_id = register("v1.0.0", artifact=False)
    data = lightgbm_text()
    wrong = hashlib.sha256(data + b"x").hexdigest()
    r = client.put(f"/ai/models/{model_id}/artifact?sha256={wrong}", content=data)
    assert r.status_code == 422
    assert "corrupted in transit" in r.json()["detail"]
    assert client.get(f"/ai/models/{model_id}").json()["sha256"] is None
    assert _objects(services) == []


@pytest.mark.embedded_only  # inspects the local artifact directory
def test_second_upload_is_409(client: TestClient, register: Register, services: Services
                              ) -> None:
    model_id = register("v1.0.0")
    before = client.get(f"/ai/models/{model_id}").json()["sha256"]
    r = client.put(f"/ai/models/{model_id}/artifact", content=b"tree\nother")
    assert r.status_code == 409
    assert client.get(f"/ai/models/{model_id}").json()["sha256"] == before
    assert len(_objects(services)) == 1


def test_upload_to_unknown_model_is_404_and_stores_nothing(
    client: TestClient, services: Services
) -> None:
    r = client.put(f"/ai/models/{MODEL}:v1.0.0/artifact", content=lightgbm_text())
    assert r.status_code == 404
    assert _objects(services) == []


def test_multipart_register_with_artifact(client: TestClient) -> None:
    data = lightgbm_text()
    r = client.post("/ai/models/register",
                    data={"request": json.dumps(register_body()),
                          "sha256": hashlib.sha256(data).hexdigest()},
                    files={"artifact": ("model.txt", data)})
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert client.get(f"{'/ai/models/'}{r.json()['model_id']}/artifact").content == data


def test_multipart_register_bad_metadata_stores_nothing(
    client: TestClient, services: Services
) -> None:
    r = client.post("/ai/models/register",
                    data={"request": json.dumps(register_body("1.0"))},
                    files={"artifact": ("model.txt", lightgbm_text())})
    assert r.status_code == 422
    assert _objects(services) == []
    missing = client.post("/ai/models/register", data={"request": json.dumps(register_body())})
    assert missing.status_code == 422


@pytest.mark.embedded_only  # inspects the local artifact directory
def test_multipart_duplicate_version_removes_uploaded_object(
    client: TestClient, register: Register, services: Services
) -> None:
    register("v1.0.0")
    r = client.post("/ai/models/register", data={"request": json.dumps(register_body())},
                    files={"artifact": ("model.txt", b"tree\nanother model")})
    assert r.status_code == 409
    assert len(_objects(services)) == 1


@pytest.mark.embedded_only  # inspects the local artifact directory
def test_deleted_models_artifact_is_gone(client: TestClient, register: Register,
                                         services: Services) -> None:
    model_id = register("v1.0.0")
    [path] = _objects(services)
    assert client.delete(f"/ai/models/{model_id}").status_code == 200
    assert not path.exists()
    assert _objects(services) == []
    assert client.get(f"/ai/models/{model_id}/artifact").status_code == 404


def test_crash_between_upload_and_row_write_leaves_no_dangling_row(
    client: TestClient, register: Register, services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_id = register("v1.0.0", artifact=False)

    def crash(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("database went away mid-write")

    monkeypatch.setattr(ModelMetadataStore, "attach_artifact", crash)
    with TestClient(client.app, raise_server_exceptions=False) as c:
        r = c.put(f"/ai/models/{model_id}/artifact", content=lightgbm_text())
    assert r.status_code == 500
    assert "Traceback" not in r.text
    monkeypatch.undo()
    row = client.get(f"/ai/models/{model_id}").json()
    assert row["sha256"] is None  # the row never points at anything
    assert _objects(services) == []  # and the uploaded object was cleaned up
    assert client.put(f"/ai/models/{model_id}/artifact",
                      content=lightgbm_text()).status_code == 200


def test_every_row_with_an_artifact_has_its_object(
    client: TestClient, register: Register, services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Upload-before-row even when the registration insert itself fails hard."""

    def crash(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ModelMetadataStore, "insert", crash)
    with TestClient(client.app, raise_server_exceptions=False) as c:
        r = c.post("/ai/models/register", data={"request": json.dumps(register_body())},
                   files={"artifact": ("model.txt", lightgbm_text())})
    assert r.status_code == 500
    monkeypatch.undo()
    assert client.get("/ai/models/").json()["total"] == 0
    assert _objects(services) == []


@pytest.mark.embedded_only  # inspects the local artifact directory
def test_tampered_artifact_is_not_loaded(client: TestClient, register: Register,
                                         services: Services) -> None:
    model_id = register("v1.0.0")
    [path] = _objects(services)
    path.write_bytes(path.read_bytes().replace(b"tree", b"TREE", 1))
    r = client.post(f"/ai/models/{model_id}/predict",
                    json={"rows": [{"hour_of_day": 1, "lag_24h": 2, "rolling_24h_avg": 3}]})
    assert r.status_code == 409
    assert r.json()["error"] == "digest_mismatch"


def test_client_disconnect_mid_upload_stores_nothing(
    http: object, live_server: object, services: Services
) -> None:
    import socket
    import time

    from tests.conftest import LiveServer

    assert isinstance(live_server, LiveServer)
    model_id = f"{MODEL}:v1.0.0"
    r = __import__("httpx").post(f"{live_server.url}/ai/models/register",
                                 json=register_body("v1.0.0"))
    assert r.status_code == 201
    with socket.create_connection(("127.0.0.1", live_server.port)) as sock:
        sock.sendall(
            f"PUT /ai/models/{model_id}/artifact HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 4000000\r\n\r\n".encode()
            + b"tree\n" + b"x" * 1_000_000
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and list(services.settings.artifacts_dir.rglob("*.part")):
        time.sleep(0.1)
    time.sleep(0.3)
    assert services.registry.get(model_id).artifact_sha256 is None
    assert _objects(services) == []
    assert not list(services.settings.artifacts_dir.rglob("*.part"))
