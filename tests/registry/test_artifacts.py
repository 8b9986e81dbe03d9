"""Artifact integrity: digests recorded and checked, atomic upload-then-row, removal."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from fastapi.testclient import TestClient

from aihub.config import Settings
from aihub.errors import BackendUnavailable
from aihub.services.container import Services
from aihub.stores.artifacts.base import ArtifactStore, ListedObject, StoredObject
from aihub.stores.metadata.models import ModelMetadataStore
from aihub.timeutil import utcnow
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


class FailingDeletes(ArtifactStore):
    """A test seam: the real store, except that removing an object fails."""

    def __init__(self, inner: ArtifactStore) -> None:
        self.inner = inner
        self.backend_name = inner.backend_name

    def put(self, key: str, data: BinaryIO | Iterable[bytes], *,
            max_bytes: int | None = None) -> StoredObject:
        return self.inner.put(key, data, max_bytes=max_bytes)

    def get(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        return self.inner.get(key, chunk_size=chunk_size)

    def delete(self, key: str) -> None:
        raise BackendUnavailable(self.backend_name, "injected: removal failed")

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list_objects(self) -> Iterator[ListedObject]:
        return self.inner.list_objects()

    def remove_partial_uploads(self, *, before: datetime) -> int:
        return self.inner.remove_partial_uploads(before=before)

    def ping(self) -> None:
        self.inner.ping()


def test_delete_removes_the_artifact_and_says_so(client: TestClient, register: Register,
                                                  services: Services) -> None:
    model_id = register("v1.0.0")
    [obj] = services.artifact_store.list_objects()
    r = client.delete(f"/ai/models/{model_id}")
    assert r.status_code == 200 and r.json()["artifact_removed"] is True, r.text
    assert list(services.artifact_store.list_objects()) == []
    bare = register("v2.0.0", artifact=False)
    r = client.delete(f"/ai/models/{bare}")
    assert r.status_code == 200 and r.json()["artifact_removed"] is False, r.text
    assert not services.artifact_store.exists(obj.key)


def test_a_delete_whose_artifact_removal_fails_stands_and_the_sweep_removes_it_later(
    client: TestClient, register: Register, services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_id = register("v1.0.0")
    kept_id = register("v2.0.0")
    [key] = [o.key for o in services.artifact_store.list_objects()
             if o.key == services.registry.get(model_id).artifact_key]
    monkeypatch.setattr(services.model_artifacts, "store",
                        FailingDeletes(services.artifact_store))
    r = client.delete(f"/ai/models/{model_id}")
    assert r.status_code == 200, r.text  # committed: the version is gone
    assert r.json()["artifact_removed"] is False and "swept" in r.json()["message"]
    assert client.get(f"/ai/models/{model_id}").status_code == 404
    assert services.artifact_store.exists(key)  # left behind, referenced by nothing
    monkeypatch.undo()

    sweep = services.model_artifacts.sweep
    report = sweep()  # younger than an hour: kept (it could be an upload about to attach)
    assert report.removed == [] and report.recent == 2
    assert services.artifact_store.exists(key)
    report = sweep(now=utcnow() + timedelta(hours=2))
    assert report.removed == [key] and report.referenced == 1
    assert not services.artifact_store.exists(key)
    # The version that still points at its object keeps it.
    assert client.get(f"/ai/models/{kept_id}/artifact").content == lightgbm_text()
    assert sweep(now=utcnow() + timedelta(hours=2)).removed == []


@pytest.mark.embedded_only  # ages objects by their file times
def test_the_server_sweeps_old_orphans_in_the_background(settings: Settings) -> None:
    import os
    import time
    import uuid

    from aihub.api.app import create_app
    from aihub.services.container import build_services

    svc = build_services(settings.model_copy(update={"artifact_sweep_interval": 0.1}))
    root = settings.artifacts_dir

    def orphan(version: str, age_s: float) -> Path:
        path = root / "tenant-123" / "forecast_lgb" / version / uuid.uuid4().hex
        path.parent.mkdir(parents=True)
        path.write_bytes(b"tree\nleft behind")
        then = time.time() - age_s
        os.utime(path, (then, then))
        return path

    old, recent = orphan("v0.1.0", 2 * 3600), orphan("v0.2.0", 0)
    try:
        with TestClient(create_app(services=svc)) as c:
            r = c.post("/ai/models/register", json=register_body("v1.0.0"))
            model_id = r.json()["model_id"]
            assert c.put(f"/ai/models/{model_id}/artifact",
                         content=lightgbm_text()).status_code == 200
            sweeper = c.app.state.background["aihub-artifact-sweeper"]  # type: ignore[attr-defined]
            assert sweeper.wait_for_rounds(sweeper.rounds + 2, timeout=30), "no sweep ran"
            assert not old.exists()
            assert recent.exists()
            assert c.get(f"/ai/models/{model_id}/artifact").content == lightgbm_text()
    finally:
        svc.close()


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
    http: object, live_server: object, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from tests.conftest import LiveServer

    assert isinstance(live_server, LiveServer)
    store = services.model_artifacts.store
    started, finished = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []
    put = store.put

    def watched_put(*args: Any, **kwargs: Any) -> Any:
        started.set()
        try:
            result = put(*args, **kwargs)
        except BaseException as exc:
            outcome.append(exc)
            raise
        else:
            outcome.append(None)
            return result
        finally:
            finished.set()

    monkeypatch.setattr(store, "put", watched_put)
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
        assert started.wait(30), "the upload never reached the store"
    # The connection is gone with 3 MB unsent: the store's put must fail and clean up.
    assert finished.wait(30), "the upload never ended after the client went away"
    assert outcome and outcome[0] is not None
    assert services.registry.get(model_id).artifact_sha256 is None
    assert list(store.list_objects()) == []
    assert store.remove_partial_uploads(before=utcnow() + timedelta(minutes=5)) == 0
