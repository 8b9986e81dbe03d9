"""Forecast monitoring benchmarks (issue 11: forecast monitoring).

    .venv/bin/python bench/bench_monitoring.py [--requests 400] [--log-rows 1000000]
        [--sqlite-rows 1000000] [--pg-rows 10000000] [--phases overhead,rate-sqlite,...]

Measures:
1. What logging adds to ``POST /predict`` p50 (``aihub serve`` on the embedded default,
   one keep-alive connection): one asset, 100 assets, and 100 assets x 24 horizons, each
   with ``"log": false`` and with logging, in alternating rounds (the best p50 of each).
2. Logged predictions per second through ``PredictionLog`` (queue, then the writer's
   upsert with actuals and baselines read from the rollups of 100 meters), flushed every
   100,000 rows like the background writer, on SQLite and PostgreSQL: forecasts without
   served features (``external``), and with them (``predict``: each row's 10 features of
   forecast_basic as JSON, encoded before the clock starts since requests encode them).
3. ``performance`` by horizon over 1,000,000 logged rows on SQLite and 10,000,000 on
   PostgreSQL (1,000 meters, day-ahead origins, 24 horizons). The rows are seeded through
   the log store's upsert with synthetic actuals and baselines (ingesting 10M readings
   first would only slow the seeding), their score sums rebuilt as the background task
   does, then one more day logged through the writer (a live system always has changed
   days). Five timings each: median and max.
The phases (``overhead``, ``rate-sqlite``, ``rate-pg``, ``perf-sqlite``, ``perf-pg``) can run
separately (each under its own exclusive CPU lock): their results gather in ``--state``,
and once every phase has one the "Forecast monitoring" section of bench/RESULTS.md is
replaced.
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

from harness import AIHUB, free_port, latencies, process, summary, write_section

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
            for label, n_assets, horizons in (("1 asset", 1, None), ("100 assets", 100, None),
                                              ("100 assets x 24 horizons", 100,
                                               list(range(1, 25)))):
                assets = [f"meter-{a:04d}" for a in range(n_assets)]
                hours = [end - timedelta(hours=h) for h in range(1, 48)]

                def body(i: int, log: bool, assets: list[str] = assets,
                         hours: list[datetime] = hours,
                         horizons: list[int] | None = horizons) -> bytes:
                    # a different past hour each time: online features computed, as for
                    # the first request of each hour in production
                    b: dict[str, Any] = {"asset_ids": assets, "feature_set": "forecast_basic",
                                         "as_of": hours[i % len(hours)].isoformat(),
                                         "log": log}
                    if horizons:
                        b["horizons"] = horizons
                    return json.dumps(b).encode()

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


def feature_pool(n: int) -> list[str]:
    """``n`` distinct rows of forecast_basic features as JSON (what predict logs per row)."""
    import orjson

    rng = np.random.default_rng(1)
    values = rng.normal(40, 5, size=(n, 7))
    return [orjson.dumps({
        "hour_of_day": i % 24, "day_of_week": i // 24 % 7, "is_weekend": int(i // 24 % 7 >= 5),
        "hourly_avg": v[0], "hourly_std": abs(v[1]) / 8, "lag_1h": v[2], "lag_24h": v[3],
        "lag_168h": v[4], "rolling_24h_avg": v[5], "rolling_24h_std": abs(v[6]) / 8,
    }).decode() for i, v in enumerate(values.tolist())]


def logging_rate(settings: Any, rows: int, *, features: bool = False) -> dict[str, float]:
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
        pool = feature_pool(per_origin * 50) if features else []
        source = "predict" if features else "external"
        t = time.perf_counter()
        queued = 0
        for o in range(origins):
            origin = start_us + o * HOUR_US
            targets = np.tile(origin + horizons * HOUR_US, len(assets)).tolist()
            preds = (40 + np.random.default_rng(o).normal(0, 3, per_origin)).tolist()
            at = o % 50 * per_origin
            svc.prediction_log.log(version, Forecasts(asset_col, [origin] * per_origin,
                                                      targets, preds), source=source,
                                   features=pool[at:at + per_origin] if features else None)
            queued += per_origin
            if queued >= 100_000:
                svc.prediction_log.flush()
                queued = 0
        svc.prediction_log.flush()
        took = time.perf_counter() - t
        n = origins * per_origin
        assert svc.prediction_log.store.count(version.id) == n
        if features:
            served = svc.prediction_log.features.read(version.id, 0, 2**62, 10**7)
            assert len(served) == n, len(served)
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


PHASES = ("overhead", "rate-sqlite", "rate-pg", "perf-sqlite", "perf-pg")


def run_phase(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    from aihub.config import Settings

    if phase == "overhead":
        return predict_overhead(args.requests)
    backend, out = phase.split("-")[1], {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in ("external", "predict") if phase.startswith("rate") else ("perf",):
            name, url = pg_database() if backend == "pg" else ("", "")
            try:
                settings = Settings(AIHUB_DATA_DIR=Path(tmp) / key,
                                    **({"DATABASE_URL": url} if url else {}))
                if key == "perf":
                    out = performance_at_scale(
                        settings, args.sqlite_rows if backend == "sqlite" else args.pg_rows)
                else:
                    out[key] = logging_rate(settings, args.log_rows,
                                            features=key == "predict")
                print(phase, key, out.get(key, out), flush=True)
            finally:
                if name:
                    drop_pg(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--sqlite-rows", type=int, default=1_000_000)
    parser.add_argument("--pg-rows", type=int, default=10_000_000)
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--state", type=Path,
                        default=Path(tempfile.gettempdir()) / "aihub_bench_monitoring.json")
    parser.add_argument("--fresh", action="store_true", help="forget earlier phases' results")
    args = parser.parse_args()

    state: dict[str, Any] = {}
    if args.state.exists() and not args.fresh:
        state = json.loads(args.state.read_text())
    for phase in args.phases.split(","):
        assert phase in PHASES, phase
        load_start, started = os.getloadavg(), datetime.now(UTC)
        print(f"{phase} ...", flush=True)
        result = run_phase(phase, args)
        state[phase] = {"result": result, "load_start": load_start[0],
                        "load_end": os.getloadavg()[0],
                        "at": started.strftime("%Y-%m-%d %H:%M UTC")}
        args.state.write_text(json.dumps(state, indent=1))
    if all(p in state for p in PHASES):
        write_section("Forecast monitoring", report(state))
        print(report(state))
    else:
        print("phases still to run:", [p for p in PHASES if p not in state])


def report(state: dict[str, Any]) -> str:
    o = state["overhead"]["result"]
    rs, rp = state["rate-sqlite"]["result"], state["rate-pg"]["result"]
    ps, pp = state["perf-sqlite"]["result"], state["perf-pg"]["result"]

    def p50(label: str) -> str:
        x = o[label]
        return (f"{x['p50_no_log_ms']:.2f} ms / {x['p50_log_ms']:.2f} ms "
                f"({x['overhead_pct']:+.1f} %)")

    def perf(x: dict[str, float]) -> str:
        return f"{x['median_s']:.3f} s / {x['max_s']:.3f} s"

    def load(phase: str) -> str:
        s = state[phase]
        return f"{s['load_start']:.2f} → {s['load_end']:.2f}"

    rows = [(f"predict p50, {label}: no log / logged", p50(label), "<= +10 %", load("overhead"))
            for label in o]
    for phase, r, db in (("rate-sqlite", rs, "SQLite"), ("rate-pg", rp, "PostgreSQL")):
        for key, what in (("external", "no served features"),
                          ("predict", "with served features")):
            rows.append((f"logged predictions/s, {db}, {what} ({r[key]['rows']:,} rows, "
                         f"{r[key]['seconds']:.1f} s)", f"**{r[key]['rows_per_s']:,.0f}**",
                         ">= 100,000", load(phase)))
    rows += [
        (f"performance by horizon, SQLite, {ps['rows']:,} rows: median / max of 5", perf(ps),
         "<= 2 s", load("perf-sqlite")),
        (f"performance by horizon, PostgreSQL, {pp['rows']:,} rows: median / max of 5",
         perf(pp), "<= 2 s", load("perf-pg")),
    ]
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    when = ", ".join(f"{p} {state[p]['at']}" for p in PHASES)
    return f"""
Run: `python bench/bench_monitoring.py` (phases run separately, each under the exclusive
CPU lock: {when}) on {os.cpu_count()} cores, Python {sys.version.split()[0]}; the last column
is the 1-minute load average at the start and the end of each phase.

| measure | result | target | load |
|---|---|---|---|
{table}

Seeding took {ps['seed_s']:.0f} s (SQLite) and {pp['seed_s']:.0f} s (PostgreSQL); the first
rebuild of every day's score sums {ps['compact_s']:.1f} s and {pp['compact_s']:.1f} s (the
background task does it once; afterwards only changed days).
"""


if __name__ == "__main__":
    main()
