"""Knowledge-time benchmarks (issue: what was known when).

    .venv/bin/python bench/bench_knowledge.py [--assets 100] [--hours 8760] [--requests 300]
        [--backends sqlite,postgresql] [--baseline b4f734e] [--only guards] [--repeat N]
        [--only horizons24 [--compare COMMIT] [--rounds 1]]

Each measurement runs in a worker process of its own, in-process service calls (no HTTP),
once for the code before knowledge time (``git archive`` of ``--baseline``) and once for
this code, in the same run, on the embedded default (SQLite) and on PostgreSQL:
- ingest of readings with no prior versions (the demo generator: hourly, one batch);
- the default export (forecast_basic, every row: h = 0, latest);
- online get, cache miss (a new hour each call) p50/p99, and hot (cached) p50.
For this code only, on a tenant backfilled as the data arrived (readings known 5 minutes
after their hour, 5 % corrected two days later, weather forecasts issued at 00:00 and
12:00 UTC for 48 h, then observations):
- the multi-horizon strict export: origins 10:00 Europe/Berlin daily, horizons 14..37,
  as_known "origin" (forecast_advanced): seconds, rows, peak RSS of the worker;
- online get with 24 horizons (0..23) for one asset, as_known "origin" (always computed:
  a cache miss by design) p50/p99.
Results replace the "Knowledge time" section of bench/RESULTS.md.

``--only horizons24`` measures the 24-horizon get alone (the strict tenant's data, no
exports), for this code and, with ``--compare COMMIT``, for that commit's code too, the
two alternating ``--rounds`` times per backend in the same session; it prints the figures
and leaves RESULTS.md as it is (a short run, for a hold of the machine of a few minutes).

The guards (the h = 0 "latest" paths that must not get slower: ingest, default export,
cache miss, hot) carry 10-30 % noise as single samples on a shared machine. ``--only
guards`` skips the strict measurements, and ``--repeat N`` runs N rounds of the before/now
worker pair per backend (alternating which goes first, so a drift of the machine's speed
during the run falls on both) and reports, per measure, the median and the best (least
time, most readings/s) of the N samples and the ratios of both. A guards-only run prints
its table and leaves RESULTS.md alone (it would replace the section's strict figures):
paste it in by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    PeakRss,
    drop_scratch_database,
    machine,
    scratch_settings,
    summary,
    write_section,
)

START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR_US = 3_600_000_000
REPO = Path(__file__).resolve().parents[1]


# -- the worker (runs against whichever aihub is on its PYTHONPATH) -------------------------


def _timed(fn, n: int, warmup: int = 20) -> list[float]:  # type: ignore[no-untyped-def]
    for i in range(warmup):
        fn(n + i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def worker(args: argparse.Namespace) -> dict[str, object]:
    from aihub.db import create_db_engine, upgrade
    from aihub.demo.generator import DemoSpec, readings_frame
    from aihub.services.container import build_services
    from aihub.services.exports import ExportRequest
    from aihub.services.features import OnlineRequest
    from aihub.timeutil import to_us

    data_dir = Path(tempfile.mkdtemp(prefix="bench-knowledge-"))
    settings, db = scratch_settings(args.backend, data_dir, "aihub_bench_k_")
    out: dict[str, object] = {}
    try:
        engine = create_db_engine(settings)  # type: ignore[arg-type]
        upgrade(engine)
        engine.dispose()
        svc = build_services(settings)  # type: ignore[arg-type]
        spec = DemoSpec(tenant_id="bench", assets=args.assets, hours=args.hours, start=START)
        frame = readings_frame(spec, to_us(START))
        if args.only == "horizons24":
            out.update(_strict(svc, spec, frame, args, export=False))
            svc.close()
            return out
        t = time.perf_counter()
        svc.ingest.ingest_readings("bench", frame, max_rows=frame.height + 1)
        out["ingest_rows"] = frame.height
        out["ingest_per_s"] = frame.height / (time.perf_counter() - t)
        end = START + timedelta(hours=args.hours)
        t = time.perf_counter()
        rec = svc.exports.export(ExportRequest("bench", "forecast_basic",
                                               START + timedelta(days=7), end))
        out["export_s"], out["export_rows"] = time.perf_counter() - t, rec.row_count

        def miss(i: int) -> None:
            as_of = START + timedelta(hours=24 * 8 + i)
            svc.features.get_online(OnlineRequest("bench", "forecast_basic", 168, as_of),
                                    ["meter-001"])

        out["miss"] = summary(_timed(miss, args.requests))
        hot = OnlineRequest("bench", "forecast_basic", 168, START + timedelta(hours=24 * 8))
        svc.features.get_online(hot, ["meter-001"])
        out["hot"] = summary(_timed(lambda _i: svc.features.get_online(hot, ["meter-001"]),
                                    args.requests * 10))
        if args.strict:
            out.update(_strict(svc, spec, frame, args))
        svc.close()
    finally:
        drop_scratch_database(db)
    return out


def _strict(svc, spec, frame, args, export=True) -> dict[str, object]:  # type: ignore[no-untyped-def]
    import numpy as np
    import polars as pl

    from aihub.demo.generator import weather_frame
    from aihub.features.knowledge import Knowledge, OriginSchedule
    from aihub.services.exports import ExportRequest
    from aihub.services.features import OnlineRequest
    from aihub.stores.timeseries.base import AssetChanges
    from aihub.timeutil import to_us

    tenant = "strict"
    for a in spec.asset_ids():
        svc.assets.put(tenant, a, AssetChanges(timezone="Europe/Berlin", country="DE",
                                               location_id="berlin"))
    ts = frame.get_column("ts").to_numpy()
    known = frame.with_columns(pl.Series("known_at", ts - ts % HOUR_US + HOUR_US + 300_000_000))
    svc.ingest.ingest_readings(tenant, known, max_rows=known.height + 1)
    rng = np.random.default_rng(5)
    fixes = known.filter(pl.Series(rng.random(known.height) < 0.05)).with_columns(
        pl.col("value") * 1.05, pl.col("known_at") + 48 * HOUR_US,
        pl.lit("edited").alias("quality"))
    svc.ingest.ingest_readings(tenant, fixes, max_rows=fixes.height + 1)
    start_us = to_us(START)
    truth = weather_frame(spec, start_us - 2 * 24 * HOUR_US, args.hours + 5 * 24)
    for issue in range(start_us - 24 * HOUR_US, start_us + args.hours * HOUR_US, 12 * HOUR_US):
        part = truth.filter((pl.col("ts") > issue) & (pl.col("ts") <= issue + 48 * HOUR_US))
        lead = (part.get_column("ts").to_numpy() - issue) / HOUR_US
        svc.ingest.ingest_weather(tenant, part.with_columns(
            pl.col("temperature") + pl.Series(rng.normal(0, 0.3, part.height) * np.sqrt(lead)),
            pl.lit(issue).alias("issued_at")), max_rows=part.height + 1)
    observed = truth.filter(pl.col("ts") < start_us + args.hours * HOUR_US)
    svc.ingest.ingest_weather(tenant, observed.with_columns(
        (pl.col("ts") + 1_800_000_000).alias("issued_at")), max_rows=observed.height + 1)
    out: dict[str, object] = {}
    if export:
        # Daily origins over the whole span (365 for a year), as the target is stated.
        req = ExportRequest(
            tenant, "forecast_advanced", START, START + timedelta(hours=args.hours),
            knowledge=Knowledge(horizons=tuple(range(14, 38)), as_known="origin",
                                origins=OriginSchedule(24, "10:00", "Europe/Berlin")))
        with PeakRss(os.getpid()) as rss:
            t = time.perf_counter()
            rec = svc.exports.export(req)
            seconds = time.perf_counter() - t
        out.update({"strict_s": seconds, "strict_rows": rec.row_count,
                    "strict_peak_rss_gib": rss.peak / 2**30})

    def horizons(i: int) -> None:
        as_of = START + timedelta(hours=24 * 8 + i)
        svc.features.get_known(OnlineRequest(tenant, "forecast_advanced", 168, as_of),
                               ["meter-001"], horizons=list(range(24)), as_known="origin")

    out["h24"] = summary(_timed(horizons, args.requests))
    return out


# -- the orchestrator -----------------------------------------------------------------------


def _run_worker(src: Path, backend: str, args: argparse.Namespace, strict: bool
                ) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [sys.executable, __file__, "--worker", "--backend", backend, "--out", f.name,
               "--assets", str(args.assets), "--hours", str(args.hours),
               "--requests", str(args.requests)] + (["--strict"] if strict else [])
        if args.only:
            cmd += ["--only", args.only]
        env = {**os.environ, "PYTHONPATH": str(src)}
        subprocess.run(cmd, env=env, check=True)
        return json.loads(Path(f.name).read_text())  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--baseline", default="b4f734e", help="commit before knowledge time")
    ap.add_argument("--only", choices=("all", "guards", "horizons24"), default="all",
                    help="guards: ingest, default export, cache miss and hot get only\n"
                         "(no strict export, no 24-horizon get); prints, writes nothing\n"
                         "horizons24: the 24-horizon get only; prints, writes nothing")
    ap.add_argument("--repeat", type=int, default=1,
                    help="before/now worker pairs per backend; medians and bests reported")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="sqlite", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--strict", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compare", help="with --only horizons24: also measure this commit's code")
    ap.add_argument("--rounds", type=int, default=1, help="with --only horizons24: runs per code")
    args = ap.parse_args()
    if args.worker:
        Path(args.out).write_text(json.dumps(worker(args)))
        return
    if args.only == "horizons24":
        _only(args)
        return
    started = machine()
    base = _source(args.baseline)
    if args.repeat > 1 or args.only == "guards":
        _repeated(base, args, started)
        return
    results: dict[str, dict[str, dict[str, object]]] = {}
    for backend in args.backends.split(","):
        results[backend] = {
            "before": _run_worker(base, backend, args, strict=False),
            "now": _run_worker(REPO / "src", backend, args, strict=True),
        }
        print(backend, json.dumps(results[backend], indent=1, default=str))
    write_section("Knowledge time", _report(results, args, started))


def _source(commit: str) -> Path:
    """The ``src`` tree of ``commit`` (``git archive``) in a temporary directory."""
    base = Path(tempfile.mkdtemp(prefix="aihub-baseline-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "src"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(base, filter="data")
    return base / "src"


def _only(args: argparse.Namespace) -> None:
    """The 24-horizon get alone: this code (and ``--compare``'s), alternating per round."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          check=True, capture_output=True, text=True).stdout.strip()
    codes = {f"now ({head}, work tree)": REPO / "src"}
    if args.compare:
        codes = {f"compare ({args.compare})": _source(args.compare), **codes}
    print(f"bench_knowledge.py --only {args.only} --assets {args.assets} --hours {args.hours} "
          f"--requests {args.requests}; {machine()}")
    for backend in args.backends.split(","):
        for round_ in range(args.rounds):
            for name, src in codes.items():
                load = os.getloadavg()[0]
                h24 = _run_worker(src, backend, args, strict=True)["h24"]
                print(f"| {backend} | {name} | round {round_ + 1} | load {load:.2f} | "
                      f"p50 {h24['p50_ms']:.1f} ms | p99 {h24['p99_ms']:.1f} ms | "  # type: ignore[index]
                      f"mean {h24['mean_ms']:.1f} ms |", flush=True)  # type: ignore[index]
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


# The guards: (name, how a worker's result gives it, whether more is better, target ratio).
GUARDS: list[tuple[str, Any, bool, str]] = [
    ("ingest, no prior versions (readings/s)", lambda r: r["ingest_per_s"], True, ">= 0.90"),
    ("default export, h=0 latest (s)", lambda r: r["export_s"], False, "<= 1.10"),
    ("online get, cache miss p99 (ms)", lambda r: r["miss"]["p99_ms"], False, "<= 1.20"),
    ("online get, hot p50 (ms)", lambda r: r["hot"]["p50_ms"], False, "<= 1.05"),
]


def _repeated(baseline: Path, args: argparse.Namespace, started: str) -> None:
    """``args.repeat`` rounds of before/now per backend, the order flipped every round;
    per measure the median and best of the rounds. Writes RESULTS.md only for a full run."""
    strict = args.only == "all"
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for backend in args.backends.split(","):
        runs[backend] = {"before": [], "now": []}
        for i in range(args.repeat):
            order = ["before", "now"] if i % 2 == 0 else ["now", "before"]
            for which in order:
                src = baseline if which == "before" else REPO / "src"
                runs[backend][which].append(
                    _run_worker(src, backend, args, strict=strict and which == "now"))
            print(backend, f"round {i + 1}/{args.repeat}",
                  {name: (f"{get(runs[backend]['before'][-1]):,.3f}",
                          f"{get(runs[backend]['now'][-1]):,.3f}")
                   for name, get, _, _ in GUARDS}, flush=True)
    report = _repeated_report(runs, args, started)
    print(report)
    if strict:
        write_section("Knowledge time", report)


def _repeated_report(runs: dict[str, dict[str, list[dict[str, Any]]]],
                     args: argparse.Namespace, started: str) -> str:
    lines = [
        f"`bench/bench_knowledge.py --assets {args.assets} --hours {args.hours} "
        f"--requests {args.requests} --backends {args.backends} --only {args.only} "
        f"--repeat {args.repeat}` ({datetime.now(UTC):%Y-%m-%d %H:%M}Z; {started}; load "
        f"average at the end {os.getloadavg()[0]:.2f}). In-process service calls; each "
        f"sample a worker process of its own; \"before\" is commit {args.baseline} (before "
        f"knowledge time); {args.repeat} rounds of before/now per backend, the order "
        "flipped every round. Best: the least time (most readings/s) of the rounds.",
        "",
        "| measure | backend | before median | now median | ratio of medians | before best "
        "| now best | ratio of bests | before, every round | now, every round | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in runs.items():
        for name, get, more_is_better, target in GUARDS:
            before = [float(get(x)) for x in r["before"]]
            now = [float(get(x)) for x in r["now"]]
            best = max if more_is_better else min
            mb, mn = statistics.median(before), statistics.median(now)
            bb, bn = best(before), best(now)
            every = [" / ".join(f"{x:,.3f}" for x in xs) for xs in (before, now)]
            lines.append(f"| {name} | {backend} | {mb:,.3f} | {mn:,.3f} | {mn / mb:.2f} | "
                         f"{bb:,.3f} | {bn:,.3f} | {bn / bb:.2f} | {every[0]} | {every[1]} | "
                         f"{target} |")
        if args.only == "all":
            for x in r["now"]:
                lines.append(f"| strict export (s) / peak RSS (GiB) / 24-horizon get p99 (ms) "
                             f"| {backend} | - | {x['strict_s']:.2f} / "
                             f"{x['strict_peak_rss_gib']:.2f} / {x['h24']['p99_ms']:.1f} "
                             "| - | - | - | - | - | - | - |")
    return "\n".join(lines)


def _report(results: dict, args: argparse.Namespace, started: str) -> str:  # type: ignore[type-arg]
    lines = [
        f"`bench/bench_knowledge.py --assets {args.assets} --hours {args.hours} "
        f"--requests {args.requests}` ({datetime.now(UTC):%Y-%m-%d %H:%M}Z; {started}; load "
        f"average at the end {os.getloadavg()[0]:.2f}). In-process service calls; each column "
        f"a worker process of its own; \"before\" is commit {args.baseline} (before knowledge "
        "time), run in the same session. The machine is shared (2 cores), so single figures "
        "carry noise of 10-30 %.",
        "",
        "| measure | backend | before | now | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        b, n = r["before"], r["now"]
        rows = [
            ("ingest, no prior versions (readings/s)", b["ingest_per_s"], n["ingest_per_s"],
             ">= 0.90"),
            ("default export, h=0 latest (s)", b["export_s"], n["export_s"], "<= 1.10"),
            ("online get, cache miss p99 (ms)", b["miss"]["p99_ms"], n["miss"]["p99_ms"],
             "<= 1.20"),
            ("online get, hot p50 (ms)", b["hot"]["p50_ms"], n["hot"]["p50_ms"], "<= 1.05"),
        ]
        for name, before, now, target in rows:
            lines.append(f"| {name} | {backend} | {before:,.3f} | {now:,.3f} | "
                         f"{now / before:.2f} | {target} |")
        lines.append(f"| strict export: {n['strict_rows']:,} rows, origins 10:00 Berlin, "
                     f"h 14..37, as known at origin (s) | {backend} | - | "
                     f"{n['strict_s']:.2f} | - | <= 5 s at 876,000 rows |")
        lines.append(f"| strict export peak RSS of the worker (GiB) | {backend} | - | "
                     f"{n['strict_peak_rss_gib']:.2f} | - | <= 1.5 |")
        lines.append(f"| online get, 24 horizons, one asset, as known at origin: p50 / p99 "
                     f"(ms) | {backend} | - | {n['h24']['p50_ms']:.1f} / "
                     f"{n['h24']['p99_ms']:.1f} | - | p99 <= 20 |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
