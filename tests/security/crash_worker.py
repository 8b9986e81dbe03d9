"""A separate process the fault tests SIGKILL mid-operation (settings from the environment).

    python -m tests.security.crash_worker ingest TENANT N_ROWS
    python -m tests.security.crash_worker export TENANT
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import polars as pl

from aihub.config import Settings
from aihub.features.frames import READINGS_SCHEMA
from aihub.services.container import build_services
from aihub.services.exports import ExportRequest

T0_US = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)


def batch(n: int, assets: int = 4) -> pl.DataFrame:
    i = pl.int_range(0, n, eager=True)
    return pl.DataFrame({
        "asset_id": (i % assets).map_elements(lambda k: f"m{k}", return_dtype=pl.String),
        "ts": T0_US + (i // assets) * 900_000_000,
        "value": (i % 97).cast(pl.Float64) * 0.5,
    }, schema=READINGS_SCHEMA)


def main() -> None:
    mode, tenant = sys.argv[1], sys.argv[2]
    svc = build_services(Settings(), migrate=False)
    if mode == "ingest":
        frame = batch(int(sys.argv[3]))
        print("ready", flush=True)
        svc.ingest.ingest_readings(tenant, frame, max_rows=len(frame))
        print("done", flush=True)
    else:
        def stall(done: int, total: int) -> None:
            print(f"progress {done}/{total}", flush=True)
            time.sleep(60)  # killed here, mid-file

        svc.exports.export(ExportRequest(
            tenant_id=tenant, feature_set="forecast_basic",
            start_time=datetime(2024, 1, 2, tzinfo=UTC),
            end_time=datetime(2024, 1, 20, tzinfo=UTC), asset_ids=None, lookback_hours=168,
        ), progress=stall)


if __name__ == "__main__":
    main()
