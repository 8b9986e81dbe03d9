"""Where finished export files go: the local export directory (nothing to do), or S3 when
``EXPORT_STORAGE_PATH=s3://bucket/prefix``.

The export service always writes Parquet to a local ``.partial`` file and renames it when
complete; an ``S3ExportTarget`` then uploads that finished file (multipart, by boto3's
transfer manager, in bounded memory), removes the local copy, and returns the ``s3://``
path that the export record keeps. A failed upload fails the export (503 naming s3).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from aihub.errors import BackendUnavailable, InvalidInput

if TYPE_CHECKING:
    from aihub.config import Settings

log = logging.getLogger("aihub.exports")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")`` (prefix may be empty)."""
    rest = url[len("s3://"):] if url.startswith("s3://") else ""
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InvalidInput(f"EXPORT_STORAGE_PATH {url!r}: expected s3://bucket[/prefix]")
    return bucket, prefix.strip("/")


class S3ExportTarget:
    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.bucket, self.prefix = parse_s3_url(url)
        self._bucket_ready = False

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ExportTarget:
        from aihub.stores.artifacts.s3 import S3ArtifactStore

        store = S3ArtifactStore.from_settings(settings)
        return cls(store.client, settings.export_storage_path)

    def __call__(self, path: Path) -> str:
        key = f"{self.prefix}/{path.name}" if self.prefix else path.name
        try:
            self._ensure_bucket()
            self.client.upload_file(str(path), self.bucket, key)
        except (ClientError, BotoCoreError) as exc:
            # The driver's text (endpoint, bucket, request ids) goes to the log only.
            log.warning("export upload of %s to s3://%s/%s failed: %s", path.name, self.bucket,
                        key, exc)
            raise BackendUnavailable("s3", "export upload failed") from exc
        path.unlink(missing_ok=True)
        return f"s3://{self.bucket}/{key}"

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code", "")
                if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
        self._bucket_ready = True
