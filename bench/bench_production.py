"""Benchmarks on the production backends: PostgreSQL, Redis (issue 4).

    .venv/bin/python bench/bench_production.py [--assets 100] [--hours 8760] [--requests 5000]

Uses a fresh PostgreSQL database (dropped afterwards) and a key prefix of its own on Redis.
Data: the demo generator, 100 assets x 1 year hourly = 876,000 readings. Measures:
- ingest into PostgreSQL through IngestService (validate, COPY, rollups, commit), hourly
  data (one rollup row per reading) in three rounds, against a bare COPY of the same rows
  into one table (the floor), and 15-minute data (one rollup row per four readings);
- export of forecast_basic over HTTP (seconds, server peak RSS);
- online get over HTTP, one keep-alive client, hot Redis cache, against a floor (a minimal
  FastAPI endpoint doing one HGET) measured in the same run; get-batch of 100 assets;
- 16 concurrent clients (16 processes, one keep-alive connection each), 1 and 2 workers.
Results replace the "Production backends" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
import psycopg
import redis
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

from aihub.config import Settings
from aihub.demo.generator import DemoSpec, readings_frame
from aihub.services.container import build_services
from aihub.stores.timeseries.postgres import (
    copy_tuples,
    reading_tuples,
    rollup_tuples,
)
from aihub.stores.timeseries.rollups import compute_rollups
from aihub.timeutil import to_us

START = datetime(2024, 1, 1, tzinfo=UTC)
PG_ADMIN = os.environ.get("AIHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AIHUB_BENCH_REDIS", "redis://127.0.0.1:6379/0")
INGEST_ROUNDS = 3


_FLOOR_TABLES = """
CREATE TABLE floor_readings (asset_key integer, ts bigint, value double precision NOT NULL,
                             PRIMARY KEY (asset_key, ts));
CREATE TABLE floor_rollups (asset_key integer, hour bigint, n integer NOT NULL,
                            mean double precision NOT NULL, std double precision,
                            min double precision NOT NULL, max double precision NOT NULL,
                            known_at bigint, first_known bigint,
                            quality smallint NOT NULL DEFAULT 0,
                            PRIMARY KEY (asset_key, hour))
"""


def bare_copy_seconds(database_url: str, frame: pl.DataFrame) -> tuple[float, float]:
    """Floors for ingest, each one binary COPY of prepared tuples into fresh tables shaped
    like aihub's, committed: (readings alone, readings + their single-reading rollups)."""
    keyed = frame.select(
        pl.col("asset_id").rank("dense").cast(pl.Int64).alias("asset_key"), "ts", "value",
        (pl.col("ts") + 3_600_000_000).alias("known_at"), pl.lit(0, pl.Int64).alias("quality"),
    )
    readings = reading_tuples(keyed)
    rollups = rollup_tuples(compute_rollups(keyed, with_marks=True))
    copy_in = "COPY floor_readings (asset_key, ts, value) FROM STDIN (FORMAT binary)"
    copy_rollups = (
        "COPY floor_rollups (asset_key, hour, n, mean, std, min, max, known_at, first_known, "
        "quality) FROM STDIN (FORMAT binary)"
    )
    seconds = []
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        for both in (False, True):
            cur.execute(_FLOOR_TABLES)
            conn.commit()
            t = time.perf_counter()
            copy_tuples(cur, copy_in, readings)
            if both:
                copy_tuples(cur, copy_rollups, *rollups)
            conn.commit()
            seconds.append(time.perf_counter() - t)
            cur.execute("DROP TABLE floor_readings, floor_rollups")
            conn.commit()
    return seconds[0], seconds[1]


def _client_worker(args: tuple[int, bytes, int]) -> list[float]:
    port, body, n = args
    return latencies(port, "/ai/features/get", body, n, warmup=50)


def concurrent(port: int, body: bytes, clients: int, per_client: int) -> dict[str, float]:
    ctx = mp.get_context("fork")
    with ctx.Pool(clients) as pool:
        t = time.perf_counter()
        results = pool.map(_client_worker, [(port, body, per_client)] * clients)
        wall = time.perf_counter() - t
    flat = sorted(x for r in results for x in r)
    q = statistics.quantiles(flat, n=100, method="inclusive")
    return {"rps": len(flat) / wall, "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--no-write", action="store_true", help="don't update RESULTS.md")
    args = ap.parse_args()

    db = f"aihub_bench_{uuid.uuid4().hex[:10]}"
    prefix = f"aihub-bench-{uuid.uuid4().hex[:10]}:"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    work = Path(f"/tmp/{db}")
    env = {
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "AIHUB_REDIS_PREFIX": prefix,
        "AIHUB_DATA_DIR": str(work / "data"),
        "EXPORT_STORAGE_PATH": str(work / "exports"),
        "FEATURE_CACHE_TTL": "3600",
    }
    lines = [
        f"Machine: {machine()}. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. PostgreSQL "
        "15 (stock settings: shared_buffers 128 MB, fsync on), Redis 7, both on loopback, "
        "sharing the 2 cores with the server and the clients.",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
    ]
    try:
        run(args, env, lines)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i : i + 1000])
    lines += [
        "",
        "Reading these numbers:",
        "- Ingest: with hourly data every reading is also a new rollup row, so an ingest",
        "  fills two indexed tables (876,000 rows each) by binary COPY in one transaction.",
        "  The rollup tuples are prepared on a second thread while PostgreSQL takes the",
        "  readings, and payloads are sent without copying. Later rounds write into bigger",
        "  tables than PostgreSQL's stock 128 MB of shared buffers hold, so its backend",
        "  evicts dirty pages itself and runs slower. The floor is what any ingest of these",
        "  rows must do (COPY into both tables, data ready); the ratio to it is aihub's cost.",
        "- Latency rows are timed by a raw keep-alive socket client; the floor is a minimal",
        "  FastAPI endpoint doing one HGET on the same Redis, measured in the same run, and the",
        "  ratio to it is the fair measure of aihub's own cost. p99 is scheduling jitter on 2",
        "  cores shared by server, Redis, PostgreSQL and client (the floor's p99 is similar).",
        "- 16 concurrent clients run as 16 processes on the same 2 cores as the server(s), so a",
        "  second worker can only show a modest gain here.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_production.py` (needs PostgreSQL and "
        "Redis on loopback; creates and drops its own database).",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Production backends", text)


def run(args: argparse.Namespace, env: dict[str, str], lines: list[str]) -> None:
    settings = Settings(**{k: v for k, v in env.items()})  # type: ignore[arg-type]
    svc = build_services(settings)
    # -- ingest ---------------------------------------------------------------------------
    # Three rounds, each a tenant of its own: the first writes into empty tables, the later
    # ones into tables that already hold the earlier rounds (876,000 rows more each time).
    seconds = []
    first_frame = None
    for i in range(INGEST_ROUNDS):
        tenant = "bench" if i == 0 else f"bench-round{i + 1}"
        spec = DemoSpec(tenant_id=tenant, assets=args.assets, hours=args.hours, start=START)
        frame = readings_frame(spec, to_us(START))
        n = frame.height
        if i == 0:  # the floor first, into a database as empty as round 1's
            first_frame = frame
            one_table_s, two_tables_s = bare_copy_seconds(env["DATABASE_URL"], frame)
        t = time.perf_counter()
        svc.ingest.ingest_readings(tenant, frame, max_rows=n)
        seconds.append(time.perf_counter() - t)
        print(f"ingest hourly {n} in {seconds[-1]:.2f}s", flush=True)
    rounds = ", ".join(f"{n / s:,.0f}" for s in seconds)
    lines += [
        f"| ingest {n:,} hourly readings ({args.assets} assets x {args.hours} h) into "
        f"PostgreSQL via IngestService: validate, binary COPY, rollups ({n:,} rollup rows), "
        f"commit; best of {INGEST_ROUNDS} | {n / min(seconds):,.0f} readings/s "
        f"({min(seconds):.2f} s; rounds {rounds}/s) | >= 300,000/s |",
        f"| floor: bare binary COPY of the same readings and their rollups, prepared "
        f"beforehand, into two empty tables shaped like aihub's, one transaction, same run "
        f"| {n / two_tables_s:,.0f} readings/s ({two_tables_s:.2f} s) | |",
        f"| ingest (best round) / floor | {min(seconds) / two_tables_s:.2f}x the floor's time | |",
        f"| floor, readings alone: bare binary COPY into one empty table shaped like "
        f"`readings` | {n / one_table_s:,.0f} rows/s ({one_table_s:.2f} s) | |",
    ]
    q_spec = DemoSpec(
        tenant_id="bench15",
        assets=max(1, args.assets // 4),
        hours=args.hours,
        start=START,
        interval_minutes=15,
    )
    q_frame = readings_frame(q_spec, to_us(START))
    t = time.perf_counter()
    svc.ingest.ingest_readings("bench15", q_frame, max_rows=q_frame.height)
    dt = time.perf_counter() - t
    lines.append(
        f"| ingest {q_frame.height:,} 15-minute readings ({q_spec.assets} assets), "
        f"{q_frame.height // 4:,} rollup rows | {q_frame.height / dt:,.0f} readings/s "
        f"({dt:.2f} s) | |"
    )
    assert first_frame is not None
    frame = first_frame  # tenant "bench": its first 100,000 readings are corrected
    corr = frame.head(100_000).with_columns(value=frame.get_column("value").head(100_000) + 1)
    t = time.perf_counter()
    svc.ingest.ingest_readings("bench", corr, max_rows=frame.height)
    dt = time.perf_counter() - t
    lines.append(
        f"| re-ingest 100,000 existing readings (corrections: staged upsert and "
        f"aggregate) | {100_000 / dt:,.0f} readings/s ({dt:.2f} s) | |"
    )
    svc.close()

    port, floor_port = free_port(), free_port()
    floor_key = env["AIHUB_REDIS_PREFIX"] + "floor"
    floor = [
        sys.executable,
        "-m",
        "uvicorn",
        "floor_redis_app:create_app",
        "--factory",
        "--port",
        str(floor_port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    bench_dir = str(Path(__file__).resolve().parent)
    serve = [AIHUB, "serve", "--port", str(port), "--log-level", "warning"]
    with (
        process(serve, env, port, "/ready", timeout=300) as server,
        process(
            floor,
            {"PYTHONPATH": bench_dir, "FLOOR_REDIS_URL": REDIS_URL, "FLOOR_REDIS_KEY": floor_key},
            floor_port,
            ready_path="/docs",
        ),
    ):
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
        )
        with PeakRss(server.pid) as rss:
            t = time.perf_counter()
            rec = post_json(port, "/ai/features/export", req)
            export_s = time.perf_counter() - t
        print(f"export {export_s:.2f}s", flush=True)
        lines.append(
            f"| export forecast_basic from PostgreSQL, {rec['row_count']:,} rows, POST "
            f"/ai/features/export | {export_s:.2f} s, server peak RSS {rss.peak / 2**20:,.0f} MiB"
            f" | <= 3 s, <= 1.5 GB |"
        )

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
        f1 = summary(latencies(floor_port, "/floor", body, args.requests))
        hot = summary(latencies(port, "/ai/features/get", body, args.requests))
        f2 = summary(latencies(floor_port, "/floor", body, args.requests))
        floor_p50 = min(f1["p50_ms"], f2["p50_ms"])
        floor_p99 = min(f1["p99_ms"], f2["p99_ms"])
        print(f"hot {hot} floor {f1} {f2}", flush=True)
        lines += [
            f"| online get, hot Redis cache, 1 keep-alive client, {args.requests} requests | "
            f"p50 {hot['p50_ms']:.3f} ms, p99 {hot['p99_ms']:.3f} ms, {hot['rps']:,.0f} req/s "
            "| p50 <= 0.5 ms, p99 <= 1.0 ms |",
            f"| floor: minimal FastAPI endpoint, one HGET from the same Redis | p50 "
            f"{floor_p50:.3f} ms, p99 {floor_p99:.3f} ms | |",
            f"| hot p50 / floor p50 | {hot['p50_ms'] / floor_p50:.2f}x | <= 1.5x |",
        ]
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
            f"| get-batch, {len(batch_assets)} assets, hot Redis | p50 "
            f"{b['p50_ms']:.2f} ms, p99 {b['p99_ms']:.2f} ms | p99 <= 5 ms |"
        )
        c1 = concurrent(port, body, 16, 500)
        print(f"16 clients, 1 worker {c1}", flush=True)
        lines.append(
            f"| 16 concurrent clients, hot get, 1 worker | {c1['rps']:,.0f} req/s, "
            f"p50 {c1['p50_ms']:.2f} ms, p99 {c1['p99_ms']:.2f} ms | report "
            "(Feast: ~1,700 req/s) |"
        )

    port2 = free_port()
    serve2 = [AIHUB, "serve", "--port", str(port2), "--workers", "2", "--log-level", "warning"]
    with process(serve2, env, port2, "/ready", timeout=300):
        for _ in range(4):  # both workers' import paths warm
            latencies(port2, "/ai/features/get", body, 200, warmup=0)
        c2 = concurrent(port2, body, 16, 500)
        print(f"16 clients, 2 workers {c2}", flush=True)
        lines.append(
            f"| 16 concurrent clients, hot get, 2 workers | {c2['rps']:,.0f} req/s, "
            f"p50 {c2['p50_ms']:.2f} ms, p99 {c2['p99_ms']:.2f} ms | report |"
        )


if __name__ == "__main__":
    main()
