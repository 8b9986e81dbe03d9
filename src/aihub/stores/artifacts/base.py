"""The artifact store interface: streamed blobs under keys built from validated names.

Every backend (local directory, S3/MinIO) implements the same operations and passes the
same contract suite (``tests/contract/test_artifact_store.py``). Objects are written whole
or not at all: a failed ``put`` leaves nothing behind under its key, so the registry can
upload first and point a metadata row at the object only once it exists. What a killed
process leaves (an object no row points at, an upload that never completed) is found by
``list_objects`` and ``remove_partial_uploads`` and swept (``ArtifactService.sweep``).

Keys are never taken from a request: ``artifact_key`` builds them from names that passed
``check_name`` and a version that passed ``parse_version``, and every backend re-checks
the key with ``check_key`` before touching storage.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from aihub.errors import InvalidInput, PayloadTooLarge
from aihub.names import check_name, is_valid_name
from aihub.versions import parse_version

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a completed ``put`` wrote: byte count and hex sha256 of the content."""

    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ListedObject:
    """A stored object as ``list_objects`` sees it; ``modified_at`` (UTC) is when it was
    completed."""

    key: str
    size: int
    modified_at: datetime

    def age(self, now: datetime) -> timedelta:
        return now - self.modified_at


_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def is_artifact_key(key: str) -> bool:
    """Whether ``key`` has the shape ``artifact_key`` gives every upload (four valid names,
    the last a uuid4 hex): the sweep touches nothing else that shares the bucket."""
    parts = key.split("/")
    return (len(parts) == 4 and all(is_valid_name(p) for p in parts)
            and _UPLOAD_ID.match(parts[3]) is not None)


def artifact_key(tenant_id: str, model_name: str, version: str, upload_id: str) -> str:
    """``{tenant}/{model}/{version}/{upload_id}``: each segment a validated name.

    The upload id makes every upload a fresh object, so a retried or racing upload never
    overwrites bytes a row already points at.
    """
    check_name(tenant_id, "tenant_id")
    check_name(model_name, "model_name")
    segment = parse_version(version).key_segment
    check_name(upload_id, "upload_id")
    return f"{tenant_id}/{model_name}/{segment}/{upload_id}"


def check_key(key: str) -> str:
    """Reject any key that is not ``/``-joined valid names (no traversal, no absolute)."""
    parts = key.split("/") if isinstance(key, str) else []
    if not parts or not all(is_valid_name(p) for p in parts):
        raise InvalidInput(f"artifact key {key!r:.120} is not made of valid names")
    return key


def iter_chunks(data: BinaryIO | Iterable[bytes], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Chunks of a file-like object (``read``) or an iterable of bytes, never all at once."""
    read = getattr(data, "read", None)
    if read is not None:
        while chunk := read(chunk_size):
            yield chunk
        return
    for chunk in data:  # type: ignore[union-attr]
        if chunk:
            yield bytes(chunk)


class HashingCounter:
    """Running sha256 and size of a stream, with an optional size cap."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self._hash = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise PayloadTooLarge(f"artifact larger than the limit of {self.max_bytes} bytes")
        self._hash.update(chunk)

    def result(self) -> StoredObject:
        return StoredObject(size=self.size, sha256=self._hash.hexdigest())


class ArtifactStore(ABC):
    backend_name: str = "artifacts"

    @abstractmethod
    def put(
        self, key: str, data: BinaryIO | Iterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        """Stream ``data`` into ``key`` and return its size and sha256. Atomic: on any
        error (including ``PayloadTooLarge`` past ``max_bytes``) nothing is left at
        ``key``. Replaces an existing object at ``key``."""

    @abstractmethod
    def get(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes in chunks. Raises ``NotFound`` (before the first chunk) when
        the key holds nothing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""

    @abstractmethod
    def list_objects(self) -> Iterator[ListedObject]:
        """Every complete object in the store with its size and completion time (streamed;
        in no particular order). Uploads that never completed are not objects."""

    @abstractmethod
    def remove_partial_uploads(self, *, before: datetime) -> int:
        """Remove uploads that never completed (a killed process's temporary file or
        multipart upload) and saw no byte since ``before``; returns how many."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``BackendUnavailable`` if the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
