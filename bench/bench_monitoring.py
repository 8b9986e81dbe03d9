"""Forecast monitoring benchmarks (issue 11: forecast monitoring).

    .venv/bin/python bench/bench_monitoring.py [--requests 400] [--log-rows 1000000]
        [--sqlite-rows 1000000] [--pg-rows 10000000]

Measures:
1. What logging adds to ``POST /predict`` p50 (``aihub serve`` on the embedded default,
   one keep-alive connection): one asset, and 100 assets, each with ``"log": false`` and
   with logging, in alternating rounds (the best p50 of each). On this branch predictions
   by assets are ``h = 0``; the horizons of the knowledge-time work add rows, not requests.
2. Logged predictions per second through ``PredictionLog`` (queue, then the writer's
   upsert with actuals and baselines read from the rollups of 100 meters), flushed every
   100,000 rows like the background writer, on SQLite and PostgreSQL.
3. ``performance`` by horizon over 1,000,000 logged rows on SQLite and 10,000,000 on
   PostgreSQL (1,000 meters, day-ahead origins, 24 horizons). The rows are seeded through
   the log store's upsert with synthetic actuals and baselines (ingesting 10M readings
   first would only slow the seeding), their score sums rebuilt as the background task
   does, then one more day logged through the writer (a live system always has changed
   days). Five timings each: median and max.
Results replace the "Forecast monitoring" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import AIHUB, free_port, latencies, machine, process, summary, write_section

TENANT, NAME = "bench", "load"
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
PG_ADMIN = os.environ.get("AIHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def basic_model() -> tuple[bytes, list[str]]:
    import lightgbm as lgb

    from aihub.features.catalog import BUILTIN_SETS

    names = list(BUILTIN_SETS["forecast_basic"].features)
    rng = np.random.default_rng(0)
    x = rng.normal(40, 5, size=(2000, len(names)))
    y = x[:, names.index("lag_24h")] * 0.8 + x[:, names.index("rolling_24h_avg")] * 0.2
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, y, feature_name=names), num_boost_round=100)
    return booster.model_to_string().encode(), names


def readings_frame(assets: int, hours: int, end: datetime) -> Any:
    import polars as pl

    start_us = int((end - timedelta(hours=hours)).timestamp() * 1e6)
    ts = np.arange(hours, dtype=np.int64) * HOUR_US + start_us
    frames = []
    for a in range(assets):
        values = 40 + 5 * np.sin(np.arange(hours) / 4 + a) + a % 7
        frames.append(pl.DataFrame({"asset_id": f"meter-{a:04d}", "ts": ts, "value": values}))
    return pl.concat(frames)


def seed_predict(data_dir: Path, end: datetime) -> str:
    from aihub.config import Settings
    from aihub.services.container import build_services
    from aihub.services.registry import RegisterRequest

    model, names = basic_model()
    svc = build_services(Settings(AIHUB_DATA_DIR=data_dir))
    try:
        svc.ingest.ingest_readings(TENANT, readings_frame(100, 24 * 10, end), max_rows=10**7)
        req = RegisterRequest(TENANT, NAME, "v1.0.0", {"feature_names": names}, {})
        v = svc.model_artifacts.register_with_artifact(req, [model])
        return v.model_id
    finally:
        svc.close()


def predict_overhead(requests: int) -> dict[str, Any]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        model_id = seed_predict(data_dir, end)
        port = free_port()
        env = {"AIHUB_DATA_DIR": str(data_dir), "EXPORT_STORAGE_PATH": str(Path(tmp) / "exp")}
        serve = [AIHUB, "serve", "--port", str(port), "--log-level", "warning"]
        out: dict[str, Any] = {}
        with process(serve, env, port):
            path = f"/ai/models/{model_id}/predict"
            for label, n_assets in (("1 asset", 1), ("100 assets", 100)):
                assets = [f"meter-{a:04d}" for a in range(n_assets)]
                hours = [end - timedelta(hours=h) for h in range(1, 48)]

                def body(i: int, log: bool, assets: list[str] = assets,
                         hours: list[datetime] = hours) -> bytes:
                    # a different past hour each time: online features computed, as for
                    # the first request of each hour in production
                    return json.dumps({"asset_ids": assets, "feature_set": "forecast_basic",
                                       "as_of": hours[i % len(hours)].isoformat(),
                                       "log": log}).encode()

                n = requests if n_assets == 1 else max(requests // 4, 50)
                rounds: dict[bool, list[dict[str, float]]] = {False: [], True: []}
                for _ in range(3):
                    for log in (False, True):
                        rounds[log].append(summary(latencies(
                            port, path, lambda i, log=log: body(i, log), n, warmup=20)))
                base = min(r["p50_ms"] for r in rounds[False])
                logged = min(r["p50_ms"] for r in rounds[True])
                out[label] = {"p50_no_log_ms": base, "p50_log_ms": logged,
                              "overhead_pct": 100 * (logged - base) / base}
    return out


def pg_database() -> tuple[str, str]:
    import psycopg

    name = f"aihub_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def logging_rate(settings: Any, rows: int) -> dict[str, float]:
    """Logged predictions/s through the queue and the writer (actuals from the rollups)."""
    from aihub.services.container import build_services
    from aihub.services.prediction_log import Forecasts
    from aihub.services.registry import RegisterRequest

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    svc = build_services(settings)
    try:
        svc.ingest.ingest_readings(TENANT, readings_frame(100, 24 * 40, end), max_rows=10**7)
        version = svc.registry.register(RegisterRequest(TENANT, "rate", "v1.0.0", {}, {}))
        start_us = int((end - timedelta(days=30)).timestamp() * 1e6)
        assets = [f"meter-{a:04d}" for a in range(100)]
        horizons = np.arange(24, dtype=np.int64)
        per_origin = len(assets) * len(horizons)
        origins = rows // per_origin
        asset_col = [a for a in assets for _ in horizons]
        t = time.perf_counter()
        queued = 0
        for o in range(origins):
            origin = start_us + o * HOUR_US
            targets = np.tile(origin + horizons * HOUR_US, len(assets)).tolist()
            preds = (40 + np.random.default_rng(o).normal(0, 3, per_origin)).tolist()
            svc.prediction_log.log(version, Forecasts(asset_col, [origin] * per_origin,
                                                      targets, preds), source="external")
            queued += per_origin
            if queued >= 100_000:
                svc.prediction_log.flush()
                queued = 0
        svc.prediction_log.flush()
        took = time.perf_counter() - t
        n = origins * per_origin
        assert svc.prediction_log.store.count(version.id) == n
        return {"rows": n, "seconds": took, "rows_per_s": n / took}
    finally:
        svc.close()


def performance_at_scale(settings: Any, rows: int) -> dict[str, float]:
    import polars as pl

    from aihub.db import write_transaction
    from aihub.services.container import build_services
    from aihub.services.prediction_log import Forecasts
    from aihub.services.registry import RegisterRequest

    svc = build_services(settings)
    try:
        version = svc.registry.register(RegisterRequest(TENANT, "scale", "v1.0.0", {}, {}))
        assets, horizons = 1000, 24
        per_day = assets * horizons
        days = rows // per_day
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        first = int((today - timedelta(days=days + 1)).timestamp() * 1e6)
        asset_ids = np.repeat(np.array([f"meter-{a:04d}" for a in range(assets)]), horizons)
        h = np.tile(np.arange(14, 14 + horizons, dtype=np.int64), assets)
        rng = np.random.default_rng(0)
        t = time.perf_counter()
        for chunk in range(0, days, 20):
            frames = []
            for d in range(chunk, min(chunk + 20, days)):
                origin = first + d * DAY_US + 10 * HOUR_US  # day-ahead: 10:00, 14..37 h
                actual = rng.normal(40, 5, per_day)
                frames.append(pl.DataFrame({
                    "version_id": version.id, "asset_id": asset_ids,
                    "origin": np.full(per_day, origin), "target": origin + h * HOUR_US,
                    "horizon": h, "prediction": actual + rng.normal(0, 2, per_day),
                    "actual": actual, "persistence": actual + rng.normal(0, 4, per_day),
                    "seasonal": actual + rng.normal(0, 3, per_day),
                    "logged_at": np.full(per_day, origin), "source": "external"}))
            frame = pl.concat(frames)
            svc.prediction_log.store.ensure_partitions(frame.get_column("target"))
            with write_transaction(svc.engine) as conn:
                svc.prediction_log.store.upsert(conn, frame)
                svc.prediction_log.scores.mark(conn, frame.select(
                    "version_id", pl.col("target") // DAY_US).unique().iter_rows())
        seeded = time.perf_counter() - t
        t = time.perf_counter()
        svc.score_compactor.run_once()
        compacted = time.perf_counter() - t
        # One more day through the writer: it stays changed (not yet rebuilt).
        origin = first + days * DAY_US + 10 * HOUR_US
        svc.prediction_log.log(version, Forecasts(
            asset_ids.tolist(), [origin] * per_day, (origin + h * HOUR_US).tolist(),
            rng.normal(40, 5, per_day).tolist()), source="external")
        svc.prediction_log.flush()
        if svc.engine.dialect.name == "postgresql":
            with svc.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE prediction_log")
                conn.commit()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            p = svc.performance.performance(version.model_id, group_by="horizon")
            times.append(time.perf_counter() - t)
        assert p.predicted == (days + 1) * per_day, p.predicted
        assert len(p.groups) == horizons
        return {"rows": p.predicted, "seed_s": seeded, "compact_s": compacted,
                "median_s": statistics.median(times), "max_s": max(times)}
    finally:
        svc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--sqlite-rows", type=int, default=1_000_000)
    parser.add_argument("--pg-rows", type=int, default=10_000_000)
    args = parser.parse_args()

    from aihub.config import Settings

    started = machine()
    print("predict overhead ...", flush=True)
    overhead = predict_overhead(args.requests)
    print(overhead, flush=True)
    results: dict[str, Any] = {"overhead": overhead}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = Settings(AIHUB_DATA_DIR=Path(tmp) / "rate")
        results["rate_sqlite"] = logging_rate(sqlite, args.log_rows)
        print("rate sqlite", results["rate_sqlite"], flush=True)
        sqlite = Settings(AIHUB_DATA_DIR=Path(tmp) / "scale")
        results["perf_sqlite"] = performance_at_scale(sqlite, args.sqlite_rows)
        print("perf sqlite", results["perf_sqlite"], flush=True)
    name, url = pg_database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pg = Settings(AIHUB_DATA_DIR=Path(tmp), DATABASE_URL=url)
            results["rate_pg"] = logging_rate(pg, args.log_rows)
            print("rate pg", results["rate_pg"], flush=True)
        drop_pg(name)
        name, url = pg_database()
        with tempfile.TemporaryDirectory() as tmp:
            pg = Settings(AIHUB_DATA_DIR=Path(tmp), DATABASE_URL=url)
            results["perf_pg"] = performance_at_scale(pg, args.pg_rows)
            print("perf pg", results["perf_pg"], flush=True)
    finally:
        drop_pg(name)
    ended = os.getloadavg()
    o, rs, rp = results["overhead"], results["rate_sqlite"], results["rate_pg"]
    ps, pp = results["perf_sqlite"], results["perf_pg"]
    def p50(label: str) -> str:
        x = o[label]
        return (f"{x['p50_no_log_ms']:.2f} ms / {x['p50_log_ms']:.2f} ms "
                f"({x['overhead_pct']:+.1f} %)")

    def perf(x: dict[str, float]) -> str:
        return f"{x['median_s']:.3f} s / {x['max_s']:.3f} s"

    rows = [
        ("predict p50, 1 asset: no log / logged", p50("1 asset"), "<= +10 %"),
        ("predict p50, 100 assets: no log / logged", p50("100 assets"), "<= +10 %"),
        (f"logged predictions/s, SQLite ({rs['rows']:,} rows, actuals from rollups)",
         f"{rs['rows_per_s']:,.0f}", ">= 100,000"),
        (f"logged predictions/s, PostgreSQL ({rp['rows']:,} rows)",
         f"{rp['rows_per_s']:,.0f}", ">= 100,000"),
        (f"performance by horizon, SQLite, {ps['rows']:,} rows: median / max of 5",
         perf(ps), "<= 2 s"),
        (f"performance by horizon, PostgreSQL, {pp['rows']:,} rows: median / max of 5",
         perf(pp), "<= 2 s"),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    body = f"""
Run: `python bench/bench_monitoring.py` on {started}; load average at the end
{ended[0]:.2f} (the machine's 2 cores were shared with other work).

| measure | result | target |
|---|---|---|
{table}

Seeding took {ps['seed_s']:.0f} s (SQLite) and {pp['seed_s']:.0f} s (PostgreSQL); the first
rebuild of every day's score sums {ps['compact_s']:.1f} s and {pp['compact_s']:.1f} s (the
background task does it once; afterwards only changed days). Predictions by assets are
`h = 0` on this branch: "100 assets" is 100 rows per request, the "100 assets x 24
horizons" request waits for the horizons of the knowledge-time work.
"""
    write_section("Forecast monitoring", body)
    print(body)


if __name__ == "__main__":
    main()
