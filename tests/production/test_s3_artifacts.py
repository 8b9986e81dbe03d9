"""S3-specific behaviour beyond the shared artifact contract: multipart streaming in
bounded memory, aborted uploads, bucket creation, and errors mapped to a 503 naming s3."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from aihub.config import Settings
from aihub.errors import BackendUnavailable, NotFound
from aihub.stores.artifacts import s3 as s3mod
from aihub.stores.artifacts.base import artifact_key
from aihub.stores.artifacts.s3 import S3ArtifactStore
from tests.conftest import free_port

KEY = artifact_key("tenant-1", "big_model", "v2.0.0", "u1")


def _store(endpoint: str, bucket: str) -> S3ArtifactStore:
    return S3ArtifactStore.from_settings(
        Settings(MINIO_ENDPOINT_URL=endpoint, MINIO_ACCESS_KEY="testing",
                 MINIO_SECRET_KEY="testing", MODEL_STORAGE_BUCKET=bucket)
    )


def _blocks(n: int, size: int) -> Iterator[bytes]:
    for i in range(n):
        yield bytes([i % 251]) * size


def test_bucket_is_created_when_missing(moto_server: str, s3_bucket: str) -> None:
    raw = boto3.client("s3", endpoint_url=moto_server, aws_access_key_id="testing",
                       aws_secret_access_key="testing", region_name="us-east-1")
    names = {b["Name"] for b in raw.list_buckets()["Buckets"]}
    assert s3_bucket not in names
    _store(moto_server, s3_bucket).put(KEY, iter([b"model"]))
    assert s3_bucket in {b["Name"] for b in raw.list_buckets()["Buckets"]}


@pytest.fixture
def moto_process() -> Iterator[str]:
    """moto's server in its own process, so tracemalloc here sees only the client side."""
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_multipart_upload_streams_in_bounded_memory(
    moto_process: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3mod, "PART_SIZE", 5 * 1024 * 1024)
    store = _store(moto_process, s3_bucket)
    store.put(KEY, iter([b"warm"]))  # bucket and client set up outside the measurement
    block, count = 1024 * 1024, 48  # 48 MiB: ten parts
    expected = hashlib.sha256()
    for b in _blocks(count, block):
        expected.update(b)
    tracemalloc.start()
    stored = store.put(KEY, _blocks(count, block))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stored.size == count * block
    assert stored.sha256 == expected.hexdigest()
    # A part buffered plus the copies of it in flight: bounded by the part size (5 MiB),
    # not by the 48 MiB artifact.
    assert peak < 4 * 5 * 1024 * 1024, peak
    got = hashlib.sha256()
    for chunk in store.get(KEY):
        got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()


def test_failed_multipart_upload_is_aborted(
    moto_server: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3mod, "PART_SIZE", 5 * 1024 * 1024)
    store = _store(moto_server, s3_bucket)

    def broken() -> Iterator[bytes]:
        yield from _blocks(12, 1024 * 1024)
        raise OSError("client went away")

    with pytest.raises(OSError):
        store.put(KEY, broken())
    assert not store.exists(KEY)
    uploads = store.client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert uploads == []


def test_missing_object_is_not_found(moto_server: str, s3_bucket: str) -> None:
    store = _store(moto_server, s3_bucket)
    store.ping()
    with pytest.raises(NotFound):
        store.get(KEY)


def test_unreachable_endpoint_is_backend_unavailable_naming_s3() -> None:
    store = _store(f"http://127.0.0.1:{free_port()}", "nowhere")
    with pytest.raises(BackendUnavailable) as info:
        store.put(KEY, iter([b"x"]))
    assert info.value.status_code == 503
    assert info.value.backend == "s3"
    with pytest.raises(BackendUnavailable):
        store.ping()
