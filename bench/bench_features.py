"""Feature-store benchmarks on the embedded default (issue: feature store).

    .venv/bin/python bench/bench_features.py [--assets 100] [--hours 8760] [--requests 5000]

Data: the demo generator (daily/weekly/seasonal shape, temperature dependence, noise),
100 assets x 1 year hourly = 876,000 readings. Measures, in one run:
- ingest through the CLI from Parquet (readings/s, in-command and whole-command);
- export of forecast_basic for every row over HTTP and through the CLI (seconds, peak RSS);
- online get over HTTP with one keep-alive client, hot cache, against a floor (a minimal
  FastAPI endpoint returning a stored JSON from the same cache class) served the same way;
- cache-miss get p99; get-batch of 100 assets.
Results replace the "Feature store" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from harness import (
    AIHUB,
    PeakRss,
    free_port,
    latencies,
    machine,
    post_json,
    process,
    summary,
    write_section,
)

from aihub.demo.generator import DemoSpec, readings_frame
from aihub.timeutil import to_us

START = datetime(2024, 1, 1, tzinfo=UTC)
ROUNDS = 3


def _span(rounds: list[dict[str, float]]) -> str:
    p50s = [r["p50_ms"] for r in rounds]
    return f"{min(p50s):.3f}-{max(p50s):.3f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--no-write", action="store_true", help="don't update RESULTS.md")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="aihub-bench-"))
    env = {
        "AIHUB_DATA_DIR": str(work / "data"),
        "EXPORT_STORAGE_PATH": str(work / "exports"),
        "FEATURE_CACHE_TTL": "3600",
    }
    lines: list[str] = [f"Machine: {machine()}. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.", ""]
    spec = DemoSpec(tenant_id="bench", assets=args.assets, hours=args.hours, start=START)
    frame = readings_frame(spec, to_us(START)).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC"))
    )
    parquet = work / "readings.parquet"
    frame.write_parquet(parquet)
    n = frame.height
    print(f"generated {n} readings -> {parquet}", flush=True)

    # -- ingest via the CLI, ROUNDS times into fresh data dirs (the last one is served) ---
    inner_s, wall_s = [], []
    for round_no in range(ROUNDS):
        data_dir = work / f"data{round_no}"
        env["AIHUB_DATA_DIR"] = str(data_dir)
        t = time.perf_counter()
        out = subprocess.run(
            [AIHUB, "ingest", "readings", str(parquet), "--tenant", "bench"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        wall_s.append(time.perf_counter() - t)
        found = re.search(r"in ([\d.]+) s", out.stdout.replace("\n", " "))
        assert found is not None, out.stdout
        inner_s.append(float(found.group(1)))
        print(out.stdout.strip(), flush=True)
    inner, wall = min(inner_s), min(wall_s)
    lines += [
        "| measurement | result | target |",
        "|---|---|---|",
        f"| ingest {n:,} readings via `aihub ingest readings` from Parquet, in-command "
        f"(read, validate, store, rollups, commit), best of {ROUNDS} | {n / inner:,.0f} "
        f"readings/s ({inner:.2f} s; rounds {min(inner_s):.2f}-{max(inner_s):.2f} s) "
        "| >= 200,000/s |",
        f"| same, whole command incl. interpreter start and imports | {n / wall:,.0f} "
        f"readings/s ({wall:.2f} s) | |",
    ]

    port, floor_port = free_port(), free_port()
    serve = [AIHUB, "serve", "--port", str(port), "--log-level", "warning"]
    floor = [
        sys.executable,
        "-m",
        "uvicorn",
        "floor_app:create_app",
        "--factory",
        "--port",
        str(floor_port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    bench_dir = str(Path(__file__).resolve().parent)
    with (
        process(serve, env, port) as server,
        process(floor, {"PYTHONPATH": bench_dir}, floor_port, ready_path="/docs"),
    ):
        # -- export over HTTP ----------------------------------------------------------------
        req = {
            "tenant_id": "bench",
            "feature_set": "forecast_basic",
            "start_time": START.isoformat(),
            "end_time": (START + timedelta(hours=args.hours)).isoformat(),
        }
        post_json(
            port,
            "/ai/features/export",
            {**req, "end_time": (START + timedelta(hours=48)).isoformat()},
        )  # warm imports
        with PeakRss(server.pid) as rss:
            t = time.perf_counter()
            rec = post_json(port, "/ai/features/export", req)
            export_s = time.perf_counter() - t
        print(
            f"export over HTTP {export_s:.2f}s rows={rec['row_count']} "
            f"peak={rss.peak / 2**20:.0f} MiB",
            flush=True,
        )
        lines.append(
            f"| export forecast_basic, {rec['row_count']:,} rows, POST /ai/features/export | "
            f"{export_s:.2f} s, server peak RSS {rss.peak / 2**20:,.0f} MiB (growth "
            f"{rss.growth / 2**20:,.0f} MiB), file {int(rec['file_size_bytes']) / 2**20:.1f} MiB"
            f" | <= 3 s, <= 1.5 GB |"
        )

        # -- online get, hot ----------------------------------------------------------------
        as_of = (START + timedelta(hours=args.hours - 5)).isoformat()
        body = json.dumps(
            {
                "tenant_id": "bench",
                "asset_id": "meter-001",
                "feature_set": "forecast_basic",
                "lookback_hours": 168,
                "as_of": as_of,
            }
        ).encode()
        # Alternate floor and aihub rounds so drift in machine load hits both alike; each
        # row reports its best round (by p50) and the p50 range over the rounds.
        floors, hots = [], []
        for _ in range(ROUNDS):
            floors.append(summary(latencies(floor_port, "/floor", body, args.requests)))
            hots.append(summary(latencies(port, "/ai/features/get", body, args.requests)))
        floor = min(floors, key=lambda r: r["p50_ms"])
        hot = min(hots, key=lambda r: r["p50_ms"])
        print(f"hot {hots} floor {floors}", flush=True)
        lines += [
            f"| online get, hot cache, 1 keep-alive client, {args.requests} requests x "
            f"{ROUNDS} rounds | p50 {hot['p50_ms']:.3f} ms, p99 {hot['p99_ms']:.3f} ms, "
            f"{hot['rps']:,.0f} req/s (p50 over rounds {_span(hots)}) | "
            "p50 <= 0.5 ms, p99 <= 1.0 ms, >= 2,000 req/s |",
            f"| floor: minimal FastAPI endpoint, stored JSON from the same cache | p50 "
            f"{floor['p50_ms']:.3f} ms, p99 {floor['p99_ms']:.3f} ms, {floor['rps']:,.0f} req/s"
            f" (p50 over rounds {_span(floors)}) | |",
            f"| hot p50 / floor p50 | {hot['p50_ms'] / floor['p50_ms']:.2f}x | <= 1.5x |",
        ]

        # -- online get, cache miss ---------------------------------------------------------
        hours = args.hours - 200

        def miss(i: int) -> bytes:
            h = START + timedelta(hours=200 + (i * 7919) % hours)
            asset = f"meter-{(i % args.assets) + 1:03d}"
            return json.dumps(
                {
                    "tenant_id": "bench",
                    "asset_id": asset,
                    "feature_set": "forecast_basic",
                    "as_of": h.isoformat(),
                    "lookback_hours": 167 + (i % 2),
                }
            ).encode()

        cold = summary(latencies(port, "/ai/features/get", miss, 1000, warmup=20))
        lines.append(
            f"| online get, cache miss (distinct asset/hour each) | p50 "
            f"{cold['p50_ms']:.2f} ms, p99 {cold['p99_ms']:.2f} ms | p99 <= 20 ms |"
        )

        # -- get-batch of 100 ---------------------------------------------------------------
        batch_assets = [f"meter-{i + 1:03d}" for i in range(min(100, args.assets))]
        batch = json.dumps(
            {
                "tenant_id": "bench",
                "asset_ids": batch_assets,
                "feature_set": "forecast_basic",
                "as_of": as_of,
            }
        ).encode()
        b = summary(latencies(port, "/ai/features/get-batch", batch, 2000, warmup=50))
        lines.append(
            f"| get-batch, {len(batch_assets)} assets, hot | p50 {b['p50_ms']:.2f} ms, "
            f"p99 {b['p99_ms']:.2f} ms | p50 <= 3 ms, p99 <= 5 ms |"
        )

    # -- export through the CLI (own process: peak RSS of the child) -------------------------
    t = time.perf_counter()
    subprocess.run(
        [
            AIHUB,
            "export",
            "--tenant",
            "bench",
            "--start",
            req["start_time"],
            "--end",
            req["end_time"],
        ],
        env={**os.environ, **env},
        capture_output=True,
        check=True,
    )
    cli_s = time.perf_counter() - t
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines.append(
        f"| export through `aihub export` (whole command) | {cli_s:.2f} s, peak RSS "
        f"of the largest child so far {peak_child:,.0f} MiB | |"
    )

    lines += [
        "",
        "Reading these numbers:",
        "- Latencies are timed by a raw keep-alive socket client in the same process as the",
        "  benchmark, on the same 2 cores as the server; floor and aihub rounds alternate and",
        "  each row shows its best round. On this machine the floor itself (FastAPI returning a",
        "  stored document, no middleware) sits near the absolute p50 target, so the ratio to the",
        "  floor is the fair measure of aihub's own cost (routing, auth/body-limit/metrics",
        "  middlewares, the route's role dependency, validation, the cache lookup; the change",
        "  feed is followed by a background thread, not per request). p99 is dominated by",
        "  scheduling jitter: the floor's p99 is in the same range. On a loaded machine the",
        "  ratio grows for any version of aihub (more Python per request than the floor).",
        "- Ingest: 'in-command' is the work of `aihub ingest readings` from reading the file to",
        "  the commit; the whole command adds ~1.2 s of interpreter start and imports (polars,",
        "  SQLAlchemy, Alembic, NumPy, pyarrow) and the migration check.",
        "- Export memory is bounded by assets per chunk (300,000 grid rows at a time), not by",
        "  the number of assets.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_features.py`.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Feature store (embedded default)", text)


if __name__ == "__main__":
    main()
