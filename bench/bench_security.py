"""Cost of API-key auth on the hot online route: ``POST /ai/features/get`` (cache hit),
in-process, without keys (open) and with a key (verified from memory after the first hit).

    .venv/bin/python bench/bench_security.py [requests]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories import readings

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import build_services

BODY = {"tenant_id": "t", "asset_id": "m1", "feature_set": "forecast_basic",
        "as_of": "2024-01-08T00:00:00Z"}


def run(client: TestClient, headers: dict[str, str], n: int) -> list[float]:
    for _ in range(200):
        client.post("/ai/features/get", json=BODY, headers=headers)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.post("/ai/features/get", json=BODY, headers=headers)
        out.append((time.perf_counter() - t) * 1e6)
        assert r.status_code == 200
    return sorted(out)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as tmp:
        svc = build_services(Settings(AIHUB_DATA_DIR=Path(tmp)))
        with TestClient(create_app(services=svc)) as c:
            c.post("/ai/features/ingest", json={"tenant_id": "t",
                                                "readings": readings("m1", range(200))})
            open_ = run(c, {}, n)
            _, key = svc.api_keys.create(["t"], "read")
            svc.key_cache.clear()
            keyed = run(c, {"Authorization": f"Bearer {key}"}, n)
        svc.close()
    for name, xs in (("open", open_), ("with key", keyed)):
        print(f"{name:9s} median {statistics.median(xs):6.0f} us  "
              f"p99 {xs[int(len(xs) * 0.99)]:6.0f} us  (n={n}, in-process TestClient)")


if __name__ == "__main__":
    main()
