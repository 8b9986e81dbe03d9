"""Artifacts as files under one directory (the embedded default).

A ``put`` streams into a temporary file in the same directory tree (``.tmp/*.part``),
fsyncs it and renames it into place, so readers see either the whole object or none. A
process killed mid-upload leaves its ``.part`` file; ``remove_partial_uploads`` removes
those no byte was written to since a cutoff.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from aihub.errors import BackendUnavailable, NotFound
from aihub.names import is_valid_name
from aihub.stores.artifacts.base import (
    CHUNK_SIZE,
    ArtifactStore,
    HashingCounter,
    ListedObject,
    StoredObject,
    check_key,
    iter_chunks,
)

BACKEND = "artifact store"


class LocalArtifactStore(ArtifactStore):
    backend_name = "local directory"
    _TMP = ".tmp"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / self._TMP
        self._tmp.mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # check_key already forbids traversal; this guards against symlinks in the tree.
        if self.root not in path.parents:
            raise NotFound(f"artifact key {key!r} lies outside the store")
        return path

    def put(
        self, key: str, data: BinaryIO | Iterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        path = self._path(key)
        counter = HashingCounter(max_bytes)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in iter_chunks(data):
                    counter.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return counter.result()

    def get(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"no artifact stored at '{key}'") from exc
        return _read(handle, chunk_size)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise BackendUnavailable(BACKEND, f"removing '{key}': {exc}") from exc
        # Drop now-empty version/model directories; stop at the first non-empty one.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_objects(self) -> Iterator[ListedObject]:
        for folder, dirs, files in os.walk(self.root):
            if Path(folder) == self.root:
                dirs[:] = [d for d in dirs if d != self._TMP]
            for name in files:
                path = Path(folder) / name
                key = path.relative_to(self.root).as_posix()
                if not all(is_valid_name(p) for p in key.split("/")):
                    continue  # not something this store wrote
                try:
                    st = path.stat()
                except FileNotFoundError:  # deleted while we looked
                    continue
                yield ListedObject(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def remove_partial_uploads(self, *, before: datetime) -> int:
        cutoff = before.timestamp()
        removed = 0
        for part in self._tmp.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:  # an upload still writing stays fresh
                    part.unlink()
                    removed += 1
            except FileNotFoundError:  # completed or removed meanwhile
                continue
        return removed

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise BackendUnavailable(BACKEND, f"{self.root} is not writable")


def _read(handle: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(chunk_size):
            yield chunk
