"""Concurrent ingests of different tenants on PostgreSQL (issue 9, per-asset write locks).

    .venv/bin/python bench/bench_concurrent_ingest.py [--tenants 4] [--assets 25] [--hours 8760]

Each ingest is one process (its own engine, like a replica or a CLI import) that prepares
its tenant's batch (the demo generator: assets x hours hourly readings), waits at a
barrier, then runs validate + write transaction + commit exactly as ``IngestService`` does.
Measured in the same run, each in a fresh database of its own:
- one ingest alone (the floor),
- ``--tenants`` ingests at once (per-asset locks: they do not wait for each other),
- the same ingests at once, each transaction first taking one global lock, as every write
  did before per-asset locks (``UPDATE ingest_seq``): they queue;
- small ingests of another tenant while one big ingest runs, with either kind of lock.
Aggregate throughput = all readings / (last commit - first start). Results replace the
"Concurrent ingest" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
import sqlalchemy as sa
from harness import machine, write_section

from aihub.config import Settings
from aihub.db import upgrade, write_transaction
from aihub.demo.generator import DemoSpec, readings_frame
from aihub.services.container import build_services
from aihub.services.ingest import validate_readings
from aihub.timeutil import to_us

START = datetime(2024, 1, 1, tzinfo=UTC)
PG_ADMIN = os.environ.get("AIHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _worker(args: tuple[str, str, int, int, bool, Any, Any]) -> None:
    db_url, tenant, assets, hours, serialize, barrier, out = args
    work = Path(f"/tmp/aihub-bench-conc-{uuid.uuid4().hex[:8]}")
    svc = build_services(Settings(DATABASE_URL=db_url, AIHUB_DATA_DIR=work,
                                  EXPORT_STORAGE_PATH=str(work / "exports")), migrate=False)
    frame = readings_frame(DemoSpec(tenant_id=tenant, assets=assets, hours=hours, start=START),
                           to_us(START))
    with svc.engine.connect() as conn:  # a pooled connection, ready before the start
        conn.execute(sa.text("SELECT 1"))
    barrier.wait()
    t0 = time.perf_counter()
    batch = validate_readings(frame, max_rows=frame.height)
    with write_transaction(svc.engine) as conn:
        if serialize:  # the old behaviour: every write queued behind one lock
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(0)"))
        svc.timeseries.ingest_readings(conn, tenant, batch)
    t1 = time.perf_counter()
    out.put((tenant, frame.height, t0, t1))
    svc.close()


def _small_worker(args: tuple[str, bool, Any, Any, Any]) -> None:
    """Small ingests (one asset, a day of 15-minute readings) of a tenant of their own,
    one after another until ``done`` is set; puts their latencies."""
    db_url, serialize, barrier, done, out = args
    work = Path(f"/tmp/aihub-bench-conc-{uuid.uuid4().hex[:8]}")
    svc = build_services(Settings(DATABASE_URL=db_url, AIHUB_DATA_DIR=work,
                                  EXPORT_STORAGE_PATH=str(work / "exports")), migrate=False)
    spec = DemoSpec(tenant_id="small", assets=1, hours=24, start=START, interval_minutes=15)
    frame = readings_frame(spec, to_us(START))
    seconds: list[float] = []
    barrier.wait()
    while not done.is_set() or not seconds:
        t0 = time.perf_counter()
        batch = validate_readings(frame, max_rows=frame.height)
        with write_transaction(svc.engine) as conn:
            if serialize:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(0)"))
            svc.timeseries.ingest_readings(conn, "small", batch)
        seconds.append(time.perf_counter() - t0)
    out.put(seconds)
    svc.close()


def _big_then_done(args: tuple[str, str, int, int, bool, Any, Any, Any]) -> None:
    *rest, done = args
    try:
        _worker(tuple(rest))  # type: ignore[arg-type]
    finally:
        done.set()


def measure_small_writes(assets: int, hours: int, *, big: bool,
                         serialize: bool) -> dict[str, float]:
    """Latency of small ingests of one tenant while a big ingest of another runs (or, with
    ``big=False``, for about a second on their own)."""
    db = f"aihub_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    try:
        engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        upgrade(engine)
        engine.dispose()
        ctx = mp.get_context("fork")
        barrier, done, out, big_out = ctx.Barrier(2), ctx.Event(), ctx.Queue(), ctx.Queue()
        small = ctx.Process(target=_small_worker, args=((db_url, serialize, barrier, done, out),))
        if big:
            other = ctx.Process(target=_big_then_done, args=((
                db_url, "big", assets, hours, serialize, barrier, big_out, done),))
        else:
            def timer() -> None:
                barrier.wait()
                time.sleep(1.0)
                done.set()
            other = ctx.Process(target=timer)
        small.start()
        other.start()
        seconds = sorted(out.get(timeout=1800))
        for p in (small, other):
            p.join(timeout=60)
            if p.exitcode != 0:
                raise RuntimeError(f"a bench process failed ({p.exitcode})")
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return {"n": len(seconds), "p50": seconds[len(seconds) // 2], "max": seconds[-1]}


def measure(tenants: int, assets: int, hours: int, *, serialize: bool) -> dict[str, float]:
    """Ingests of ``tenants`` tenants started together, each in a process, into a fresh
    database; returns the aggregate rate and the slowest and fastest ingest."""
    db = f"aihub_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    try:
        engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        upgrade(engine)
        engine.dispose()
        ctx = mp.get_context("fork")
        barrier, out = ctx.Barrier(tenants), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=((db_url, f"tenant-{i}", assets, hours,
                                                     serialize, barrier, out),))
                 for i in range(tenants)]
        for p in procs:
            p.start()
        results = [out.get(timeout=1800) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            if p.exitcode != 0:
                raise RuntimeError(f"an ingest process failed ({p.exitcode})")
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    n = sum(r[1] for r in results)
    wall = max(r[3] for r in results) - min(r[2] for r in results)
    each = [r[3] - r[2] for r in results]
    return {"readings": n, "wall": wall, "rate": n / wall, "slowest": max(each),
            "fastest": min(each)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--assets", type=int, default=25, help="assets per tenant")
    ap.add_argument("--hours", type=int, default=8760, help="hourly readings per asset")
    ap.add_argument("--no-write", action="store_true", help="don't update RESULTS.md")
    args = ap.parse_args()
    load_start = os.getloadavg()
    header = machine()
    # Alone before and after the concurrent runs: the floor is their mean.
    alone_1 = measure(1, args.assets, args.hours, serialize=False)
    print(f"alone {alone_1}", flush=True)
    together = measure(args.tenants, args.assets, args.hours, serialize=False)
    print(f"together {together}", flush=True)
    queued = measure(args.tenants, args.assets, args.hours, serialize=True)
    print(f"one lock {queued}", flush=True)
    alone_2 = measure(1, args.assets, args.hours, serialize=False)
    print(f"alone {alone_2}", flush=True)
    small_alone = measure_small_writes(args.assets, args.hours, big=False, serialize=False)
    small_locks = measure_small_writes(args.assets, args.hours, big=True, serialize=False)
    small_queued = measure_small_writes(args.assets, args.hours, big=True, serialize=True)
    print(f"small {small_alone} {small_locks} {small_queued}", flush=True)
    load_end = os.getloadavg()
    floor = (alone_1["rate"] + alone_2["rate"]) / 2
    per = args.assets * args.hours
    lines = [
        f"Machine: {header}; load average at the end {load_end[0]:.2f} "
        f"(1 min; {load_start[1]:.2f} -> {load_end[1]:.2f} over 5 min). "
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. PostgreSQL 15 on loopback "
        "(stock settings), sharing the 2 cores with the ingest processes.",
        "",
        f"Each ingest: one tenant, {args.assets} assets x {args.hours} h = {per:,} hourly "
        "readings (and as many rollup rows), validated, binary COPY, rollups, one commit; "
        "one process per ingest, started together at a barrier; a fresh database per row.",
        "",
        "| measurement | aggregate readings/s | wall | slowest / fastest ingest | vs alone |",
        "|---|---|---|---|---|",
        f"| 1 ingest alone (floor; mean of a run before and after) | {floor:,.0f} "
        f"({alone_1['rate']:,.0f} / {alone_2['rate']:,.0f}) | {alone_1['wall']:.2f} s / "
        f"{alone_2['wall']:.2f} s | | 1.00x |",
        f"| {args.tenants} ingests at once, per-asset locks | {together['rate']:,.0f} | "
        f"{together['wall']:.2f} s | {together['slowest']:.2f} s / {together['fastest']:.2f} s"
        f" | {together['rate'] / floor:.2f}x |",
        f"| {args.tenants} ingests at once, one global lock (as before: every write queued "
        f"on `ingest_seq`) | {queued['rate']:,.0f} | {queued['wall']:.2f} s | "
        f"{queued['slowest']:.2f} s / {queued['fastest']:.2f} s | "
        f"{queued['rate'] / floor:.2f}x |",
        "",
        "A small ingest (96 readings of one asset of another tenant) while one of the "
        "ingests above runs, repeated until it commits:",
        "",
        "| small ingests | count | p50 | max |",
        "|---|---|---|---|",
        f"| on their own (1 s) | {small_alone['n']} | {small_alone['p50'] * 1e3:.0f} ms | "
        f"{small_alone['max'] * 1e3:.0f} ms |",
        f"| during a big ingest, per-asset locks | {small_locks['n']} | "
        f"{small_locks['p50'] * 1e3:.0f} ms | {small_locks['max'] * 1e3:.0f} ms |",
        f"| during a big ingest, one global lock (as before) | {small_queued['n']} | "
        f"{small_queued['p50'] * 1e3:.0f} ms | {small_queued['max'] * 1e3:.0f} ms |",
        "",
        "Reading these numbers: with one lock the ingests run one after another, so the",
        "aggregate stays at one ingest's rate and the last tenant waits for all the others",
        "(its 'slowest' is the whole wall time). With per-asset locks they overlap: the",
        "aggregate is bounded by the 2 cores that the ingest processes (validation, COPY",
        "tuples, rollups) and PostgreSQL's backends share, not by a lock. On 2 cores shared",
        "with other work that bound is near either way, and aggregates move by +-30% from",
        "run to run. What the lock changes is who waits: with one lock a small write of",
        "another tenant waits for the whole big COPY (its max is the big ingest's time);",
        "with per-asset locks it only shares the CPU with it.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_concurrent_ingest.py` (needs PostgreSQL "
        "on loopback; creates and drops its own databases).",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Concurrent ingest (PostgreSQL, per-asset locks)", text)


if __name__ == "__main__":
    main()
