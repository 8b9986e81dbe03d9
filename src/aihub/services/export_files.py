"""An export's Parquet bytes, for download: the single file, or one part of a dataset.

The place is taken from the export record only and checked before anything is opened: a
local file must resolve inside the export directory, an S3 object must lie under the
configured ``EXPORT_STORAGE_PATH`` prefix, and a dataset part must be one of the record's
``part-NNNNN.parquet`` names. The bytes are streamed in chunks (a local file read piece by
piece, an S3 object by ``get_object`` in chunks), never read whole into memory."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from aihub.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from aihub.stores.export_targets import parse_s3_url
from aihub.stores.metadata.exports import ExportRecord

CHUNK_SIZE = 1024 * 1024
PART_NAME = re.compile(r"part-\d{5}\.parquet")
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
log = logging.getLogger("aihub.exports")


@dataclass(frozen=True, slots=True)
class ExportFile:
    filename: str  # for Content-Disposition
    size: int | None
    chunks: Iterator[bytes]


def download_name(record: ExportRecord, part: int | None) -> str:
    """``{tenant}_{set}_{export_id}.parquet``, and ``..._part-NNNNN.parquet`` for a part."""
    base = f"{record.tenant_id[:64]}_{record.feature_set[:64]}_{record.export_id}"
    return f"{base}.parquet" if part is None else f"{base}_part-{part:05d}.parquet"


def locate(record: ExportRecord, part: int | None) -> tuple[str, str]:
    """The record's storage path for ``part`` (and its name in messages), after the checks
    of status and ``part``: 409 unless completed; for a dataset ``part`` is required and in
    range; for a single file it must be absent."""
    eid = record.export_id
    if record.status != "completed":
        raise Conflict(f"export '{eid}' is {record.status}, not completed: there is no file "
                       "to download" + (" yet" if record.status == "running" else ""))
    if not record.storage_path:
        raise NotFound(f"export '{eid}' has no stored file")
    if record.parts is None:
        if part is not None:
            raise InvalidInput(f"part: export '{eid}' is a single file, not a dataset of parts")
        return record.storage_path, f"the file of export '{eid}'"
    count = len(record.parts)
    if part is None:
        raise InvalidInput(f"part: export '{eid}' is a dataset of {count} part(s); "
                           f"give part=0..{count - 1}")
    if not 0 <= part < count:
        raise InvalidInput(f"part: export '{eid}' has {count} part(s) (0..{count - 1}), "
                           f"not {part}")
    name = str(record.parts[part].get("path", ""))
    if not PART_NAME.fullmatch(name):
        raise NotFound(f"part {part} of export '{eid}' has no valid stored name")
    return f"{record.storage_path.rstrip('/')}/{name}", f"part {part} of export '{eid}'"


def open_local(path: str, export_dir: Path, what: str) -> tuple[int, Iterator[bytes]]:
    """A file that resolves inside ``export_dir``, opened now (a missing one is 404)."""
    root = export_dir.resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise NotFound(f"{what} is not in the export directory")
    try:
        handle = resolved.open("rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise NotFound(f"{what} is gone from the export directory") from exc
    return os.fstat(handle.fileno()).st_size, _read(handle)


def _read(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
    finally:
        handle.close()


def open_s3(path: str, root_url: str, client: Any, what: str) -> tuple[int | None, Iterator[bytes]]:
    """An object under ``root_url`` (``s3://bucket/prefix``), opened now (missing: 404)."""
    bucket, key = parse_s3_url(path)
    root_bucket, prefix = parse_s3_url(root_url)
    parts = key.split("/")
    if (bucket != root_bucket or (prefix and not key.startswith(prefix + "/"))
            or any(p in {"", ".", ".."} for p in parts)):
        raise NotFound(f"{what} is not under the export storage path")
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise NotFound(f"{what} is gone from the export storage") from exc
        log.warning("export download of s3://%s/%s failed: %s", bucket, key, exc)
        raise BackendUnavailable("s3", "export download failed") from exc
    except BotoCoreError as exc:
        log.warning("export download of s3://%s/%s failed: %s", bucket, key, exc)
        raise BackendUnavailable("s3", "export download failed") from exc
    body = response["Body"]
    size = response.get("ContentLength")
    return (int(size) if size is not None else None), _s3_chunks(body)


def _s3_chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()


def open_export_file(record: ExportRecord, part: int | None, *, export_dir: Path,
                     s3_root: str | None, s3_client: Callable[[], Any]) -> ExportFile:
    """The download of ``record`` (``part`` of a dataset); ``s3_root`` is the configured
    ``s3://`` export path (None when exports are local)."""
    path, what = locate(record, part)
    if path.startswith("s3://"):
        if s3_root is None:
            raise NotFound(f"{what} is on S3, which this server does not store exports on")
        size, chunks = open_s3(path, s3_root, s3_client(), what)
    else:
        size, chunks = open_local(path, export_dir, what)
    return ExportFile(download_name(record, part), size, chunks)
