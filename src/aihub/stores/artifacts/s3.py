"""Artifacts in an S3 bucket (MinIO, AWS S3) through boto3: the production backend.

Uploads are multipart, one part (``PART_SIZE``) in memory at a time whatever the artifact's
size, with each part's sha256 sent so the server verifies what it stored; the object appears
only when the upload completes, and any failure aborts it, so a failed ``put`` leaves nothing
at its key (a killed process leaves its multipart upload, which ``remove_partial_uploads``
aborts once idle). The bucket is created on first use when missing. boto's errors are translated
into the error tree: a missing object is ``NotFound``, an unreachable or failing endpoint
``BackendUnavailable("s3")`` (503).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aihub.errors import AihubError, BackendUnavailable, NotFound
from aihub.stores.artifacts.base import (
    CHUNK_SIZE,
    ArtifactStore,
    HashingCounter,
    ListedObject,
    StoredObject,
    check_key,
    iter_chunks,
)

if TYPE_CHECKING:
    from aihub.config import Settings

BACKEND = "s3"
PART_SIZE = 8 * 1024 * 1024  # S3's minimum part is 5 MiB (the last may be smaller)
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except AihubError:
        raise
    except ClientError as exc:
        if _code(exc) in _MISSING:
            raise NotFound(f"no artifact stored at '{what}'") from exc
        raise BackendUnavailable(BACKEND, f"{_code(exc) or 'error'} on '{what}'") from exc
    except BotoCoreError as exc:
        raise BackendUnavailable(BACKEND, f"{type(exc).__name__}: {exc}") from exc


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class S3ArtifactStore(ArtifactStore):
    backend_name = BACKEND

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self._bucket_ready = False

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ArtifactStore:
        client = boto3.client(
            "s3",
            endpoint_url=settings.minio_endpoint_url,
            aws_access_key_id=settings.minio_access_key,
            aws_secret_access_key=settings.minio_secret_key,
            region_name=settings.minio_region,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=3,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        return cls(client, settings.model_storage_bucket)

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with _translated(self.bucket):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) not in _MISSING:
                    raise
                try:
                    self.client.create_bucket(Bucket=self.bucket)
                except ClientError as err:  # another replica created it meanwhile
                    if _code(err) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
        self._bucket_ready = True

    # -- interface --------------------------------------------------------------------------
    def put(
        self, key: str, data: BinaryIO | Iterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        check_key(key)
        self._ensure_bucket()
        counter = HashingCounter(max_bytes)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in iter_chunks(data):
                counter.update(chunk)
                buffer += chunk
                while len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = self._start(key)
                    with memoryview(buffer) as view:
                        part = bytes(view[:PART_SIZE])
                    del buffer[:PART_SIZE]
                    parts.append(self._part(key, upload_id, len(parts) + 1, part))
                    del part
            with _translated(key):
                if upload_id is None:  # small object: one request
                    self.client.put_object(
                        Bucket=self.bucket, Key=key, Body=bytes(buffer),
                        ChecksumSHA256=_b64_sha256(bytes(buffer)),
                    )
                else:
                    if buffer:
                        parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    self.client.complete_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    )
        except BaseException:
            if upload_id is not None:
                self._abort(key, upload_id)
            raise
        return counter.result()

    def get(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        check_key(key)
        with _translated(key):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        return _stream(body, chunk_size, key)

    def delete(self, key: str) -> None:
        check_key(key)
        with _translated(key):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) not in _MISSING:
                    raise

    def exists(self, key: str) -> bool:
        check_key(key)
        with _translated(key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    return False
                raise
        return True

    def list_objects(self) -> Iterator[ListedObject]:
        self._ensure_bucket()
        with _translated(self.bucket):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket):
                for obj in page.get("Contents", []):
                    yield ListedObject(str(obj["Key"]), int(obj["Size"]), obj["LastModified"])

    def remove_partial_uploads(self, *, before: datetime) -> int:
        self._ensure_bucket()
        removed = 0
        with _translated(self.bucket):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    key, upload_id = str(upload["Key"]), str(upload["UploadId"])
                    if upload["Initiated"] >= before:
                        continue
                    # A long upload still under way keeps adding parts: judge by the last.
                    parts = self.client.list_parts(Bucket=self.bucket, Key=key,
                                                   UploadId=upload_id).get("Parts", [])
                    if any(p["LastModified"] >= before for p in parts):
                        continue
                    self._abort(key, upload_id)
                    removed += 1
        return removed

    def ping(self) -> None:
        self._bucket_ready = False
        self._ensure_bucket()

    def close(self) -> None:
        self.client.close()

    # -- multipart --------------------------------------------------------------------------
    def _start(self, key: str) -> str:
        with _translated(key):
            resp = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256"
            )
        return str(resp["UploadId"])

    def _part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        digest = _b64_sha256(data)
        with _translated(key):
            resp = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                ChecksumAlgorithm="SHA256", ChecksumSHA256=digest,
            )
        return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": digest}

    def _abort(self, key: str, upload_id: str) -> None:
        # Best effort: the error that made us abort matters more than this one.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)


def _stream(body: Any, chunk_size: int, key: str) -> Iterator[bytes]:
    try:
        with _translated(key):
            yield from body.iter_chunks(chunk_size)
    finally:
        body.close()
