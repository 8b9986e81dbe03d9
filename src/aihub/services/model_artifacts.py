"""Artifact upload, download and removal for registered versions.

Order of operations is the safety argument: bytes go to a fresh object key first; only
when the object is complete (and its digest matches what the client expected) does a
transaction point the row at it. If that transaction fails, the object is deleted again;
if the process dies in between, an unreferenced object remains, never a row pointing at
nothing. Deletion runs the other way: the row goes first, then the object; if removing the
object fails, the delete still stands (``artifact_removed`` false).

Objects no row points at (a killed upload, a failed removal) are removed by ``sweep`` once
they are older than an hour: ``aihub models sweep``, and ``aihub serve`` every
``AIHUB_ARTIFACT_SWEEP_INTERVAL`` seconds. An upload attaches its object within moments of
completing it, so an hour-old object no row names is an orphan.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

from aihub.errors import Conflict, InvalidInput, NotFound
from aihub.inference.formats import SNIFF_BYTES, sniff_format
from aihub.services.registry import ArtifactInfo, RegisterRequest, RegistryService
from aihub.stores.artifacts.base import (
    ArtifactStore,
    artifact_key,
    is_artifact_key,
    iter_chunks,
)
from aihub.stores.metadata.models import ModelVersion
from aihub.timeutil import utcnow

log = logging.getLogger("aihub.registry")

SWEEP_MIN_AGE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Deleted:
    version: ModelVersion
    # False when the version had no artifact, or its object could not be removed now
    # (the row is gone all the same; the object is swept later).
    artifact_removed: bool


@dataclass
class SweepReport:
    removed: list[str] = field(default_factory=list)  # orphaned objects removed
    failed: list[str] = field(default_factory=list)  # orphans whose removal failed
    referenced: int = 0  # old enough, but a version points at them: kept
    recent: int = 0  # younger than the minimum age: kept
    partial_uploads: int = 0  # uploads that never completed, removed


class _Sniffer:
    """Passes chunks through, keeping the first bytes to recognise the format."""

    def __init__(self, data: BinaryIO | Iterable[bytes]) -> None:
        self.data = data
        self.head = b""

    def __iter__(self) -> Iterator[bytes]:
        for chunk in iter_chunks(self.data):
            if len(self.head) < SNIFF_BYTES:
                self.head += chunk[: SNIFF_BYTES - len(self.head)]
            yield chunk


def check_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput("sha256: expected 64 hex digits")
    return text


class ArtifactService:
    def __init__(self, *, registry: RegistryService, store: ArtifactStore,
                 max_bytes: int | None = None) -> None:
        self.registry = registry
        self.store = store
        self.max_bytes = max_bytes

    def _put(self, tenant_id: str, model_name: str, version: str,
             data: BinaryIO | Iterable[bytes], expected_sha256: str | None) -> ArtifactInfo:
        expected = check_sha256(expected_sha256)
        key = artifact_key(tenant_id, model_name, version, uuid.uuid4().hex)
        sniffer = _Sniffer(data)
        stored = self.store.put(key, sniffer, max_bytes=self.max_bytes)
        if expected is not None and stored.sha256 != expected:
            self._discard(key)
            raise InvalidInput(
                f"sha256: the uploaded bytes hash to {stored.sha256}, not {expected}; "
                "the artifact was corrupted in transit and was not stored"
            )
        if stored.size == 0:
            self._discard(key)
            raise InvalidInput("artifact: the upload is empty")
        return ArtifactInfo(key, stored.size, stored.sha256, sniff_format(sniffer.head))

    def _discard(self, key: str) -> None:
        try:
            self.store.delete(key)
        except Exception:  # an orphan object is harmless; a lost error report is not
            log.warning("could not remove unreferenced artifact %s", key, exc_info=True)

    def upload(self, model_id: str, data: BinaryIO | Iterable[bytes], *,
               expected_sha256: str | None = None) -> ModelVersion:
        version = self.registry.get(model_id)
        if version.artifact_key is not None:
            raise Conflict(f"{version.model_id} already has an artifact; register a new "
                           "version instead")
        info = self._put(version.tenant_id, version.model_name, version.version, data,
                         expected_sha256)
        try:
            return self.registry.attach_artifact(version, info)
        except BaseException:
            self._discard(info.key)
            raise

    def register_with_artifact(self, req: RegisterRequest, data: BinaryIO | Iterable[bytes],
                               *, expected_sha256: str | None = None) -> ModelVersion:
        self.registry.validate(req)  # bad input is refused before any bytes are stored
        info = self._put(req.tenant_id, req.model_name, req.version, data, expected_sha256)
        try:
            return self.registry.register(req, info)
        except BaseException:
            self._discard(info.key)
            raise

    def open(self, model_id: str) -> tuple[ModelVersion, Iterator[bytes]]:
        version = self.registry.get(model_id)
        if version.artifact_key is None:
            raise NotFound(f"{version.model_id} has no artifact")
        return version, self.store.get(version.artifact_key)

    def read(self, version: ModelVersion) -> bytes:
        """The whole artifact, for loading; callers check the digest."""
        if version.artifact_key is None:
            raise NotFound(f"{version.model_id} has no artifact")
        return b"".join(self.store.get(version.artifact_key))

    def delete(self, model_id: str, *, force: bool) -> Deleted:
        version = self.registry.delete_row(model_id, force=force)
        if version.artifact_key is None:
            return Deleted(version, artifact_removed=False)
        try:
            self.store.delete(version.artifact_key)
        except Exception as exc:  # committed: the version is gone whatever happens here
            log.warning("artifact %s of deleted %s left for the sweep: %s",
                        version.artifact_key, version.model_id, exc)
            return Deleted(version, artifact_removed=False)
        return Deleted(version, artifact_removed=True)

    def sweep(self, *, min_age: timedelta = SWEEP_MIN_AGE, now: datetime | None = None,
              dry_run: bool = False) -> SweepReport:
        """Remove objects no version points at that are older than ``min_age``, and
        uploads that never completed and have been idle that long."""
        cutoff = (now or utcnow()) - min_age
        report = SweepReport()
        old: list[str] = []
        for obj in self.store.list_objects():
            if not is_artifact_key(obj.key):
                continue  # not an upload of ours (a shared bucket): never touched
            if obj.modified_at > cutoff:
                report.recent += 1
            else:
                old.append(obj.key)
        referenced = self.registry.referenced_artifacts(old) if old else set()
        report.referenced = len(referenced)
        for key in old:
            if key in referenced:
                continue
            try:
                if not dry_run:
                    self.store.delete(key)
                report.removed.append(key)
            except Exception as exc:
                log.warning("sweep: could not remove %s: %s", key, exc)
                report.failed.append(key)
        if not dry_run:
            report.partial_uploads = self.store.remove_partial_uploads(before=cutoff)
        return report
