"""A child process that starts an artifact upload and hangs in the middle of it, for the
contract test to SIGKILL: what a process killed mid-upload leaves behind, for real.

    python -m tests.contract.killed_upload local ROOT KEY
    python -m tests.contract.killed_upload s3 ENDPOINT BUCKET KEY
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

from aihub.stores.artifacts.base import ArtifactStore
from aihub.stores.artifacts.s3 import PART_SIZE


def store_from(args: list[str]) -> ArtifactStore:
    if args[0] == "local":
        from aihub.stores.artifacts.local import LocalArtifactStore

        return LocalArtifactStore(Path(args[1]))
    from aihub.config import Settings
    from aihub.stores.artifacts.s3 import S3ArtifactStore

    return S3ArtifactStore.from_settings(Settings(
        MINIO_ENDPOINT_URL=args[1], MINIO_ACCESS_KEY="testing", MINIO_SECRET_KEY="testing",
        MODEL_STORAGE_BUCKET=args[2]))


def main() -> None:
    store, key = store_from(sys.argv[1:-1]), sys.argv[-1]

    def body() -> Iterator[bytes]:
        # More than one S3 part: by the time the next chunk is asked for, the first part
        # is uploaded (S3) or written to the temporary file (local).
        yield b"x" * (PART_SIZE + 1024)
        print("PARTIAL", flush=True)
        time.sleep(600)  # killed here
        yield b""

    store.put(key, body())


if __name__ == "__main__":
    main()
