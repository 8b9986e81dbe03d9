"""A longer schemathesis run than the suite's (every operation, N examples each, embedded
backends): prints operations, cases and failures for bench/RESULTS.md.

    .venv/bin/python bench/fuzz.py [examples-per-operation]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.security.test_fuzz import fuzz

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import build_services


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        svc = build_services(Settings(AIHUB_DATA_DIR=Path(tmp) / "d",
                                      EXPORT_STORAGE_PATH=str(Path(tmp) / "e")))
        began = time.perf_counter()
        with TestClient(create_app(services=svc)) as client:
            counts = fuzz(client, examples=examples)
        svc.close()
    took = time.perf_counter() - began
    print(f"operations={len(counts)} cases={sum(counts.values())} failures=0 "
          f"seconds={took:.0f} (max {examples} examples/operation)")


if __name__ == "__main__":
    main()
