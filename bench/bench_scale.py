"""Scale test (issue 14, not in CI): N assets x 1 year hourly on PostgreSQL.

    .venv/bin/python bench/bench_scale.py [--assets 1000,3000,10000] [--hours 8760]

For each N, in a database of its own (``bench_scale_<pid>``, created and dropped; the
shared databases are never touched) and a Redis key prefix of its own:
- writes a Parquet file of N x hours readings (meters with a daily and weekly shape);
- ``aihub ingest readings FILE`` (chunks of 500,000 rows): readings/s and the command's
  peak RSS; for the first N also the whole file as one chunk (the import before chunking,
  one transaction), in a fresh database, as the rate to keep;
- table and index sizes of ``readings`` and ``hourly_rollups``, then ``VACUUM (ANALYZE)``
  of both (what autovacuum does after a load on a deployed server);
- ``aihub export`` of the year (forecast_basic): in-process (one file), ``--workers 2``
  (a pool started by the command) and ``--dask`` on a standing 2-worker ``LocalCluster``
  (processes, one thread each, aihub imported): seconds of the whole command and the peak
  RSS of every process involved (the command, its pool workers, the Dask workers);
- ``aihub serve`` with every asset's features cached in Redis: p50/p99 of a hot
  ``POST /ai/features/get`` over one keep-alive connection, cycling through the assets.
Writes ``bench/scale.png`` (seconds against assets) and the "At scale" section of
bench/RESULTS.md after each N. ``--steps`` runs part of a size (ingest, vacuum, inline,
workers, dask, get) and ``--state FILE`` keeps its database and figures for the next
invocation, so a large size runs as several short ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import psutil
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import redis
from harness import (
    AIHUB,
    BENCH,
    free_port,
    latencies,
    machine,
    post_json,
    process,
    summary,
    write_section,
)

PG_ADMIN = os.environ.get("AIHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AIHUB_BENCH_REDIS", "redis://127.0.0.1:6379/0")
START = datetime(2024, 1, 1, tzinfo=UTC)
TENANT = "bench"
GROUP = 100  # assets generated at a time


# -- data -------------------------------------------------------------------------------------


def write_readings(path: Path, assets: int, hours: int) -> int:
    """N x hours hourly readings, asset by asset, written 100 assets at a time."""
    rng = np.random.default_rng(14)
    t = np.arange(hours, dtype=np.int64)
    base_us = int(START.timestamp() * 1_000_000)
    ts = base_us + t * 3_600_000_000
    hour = t % 24
    weekday = (t // 24) % 7
    shape = 1 + 0.6 * np.exp(-((hour - 8) ** 2) / 4) + 0.9 * np.exp(-((hour - 19) ** 2) / 6)
    shape = shape * np.where(weekday >= 5, 0.85, 1.0)
    schema = pa.schema([("asset_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
                        ("value", pa.float64())])
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for first in range(0, assets, GROUP):
            ids = [f"meter-{i:05d}" for i in range(first, min(first + GROUP, assets))]
            scale = 5 + 20 * rng.random(len(ids))
            values = np.round(scale[:, None] * shape[None, :]
                              + rng.normal(0, 0.3, (len(ids), hours)), 3)
            writer.write_table(pa.table({
                "asset_id": pa.array(np.repeat(ids, hours)),
                "ts": pa.array(np.tile(ts, len(ids)), pa.timestamp("us", tz="UTC")),
                "value": pa.array(values.ravel()),
            }, schema=schema))
    return assets * hours


# -- processes and their memory ------------------------------------------------------------


class PeakRssOf:
    """Peak RSS of every process ``pids()`` names (sampled every 20 ms), by pid."""

    def __init__(self, pids: Callable[[], Iterable[int]]) -> None:
        self.pids = pids
        self.peaks: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in list(self.pids()):
                try:
                    p = psutil.Process(pid)
                    rss = p.memory_info().rss
                    if pid not in self.names:
                        self.names[pid] = " ".join(p.cmdline()[1:3])[:60]
                except psutil.Error:
                    continue
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRssOf:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def tree(pid: int) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        try:
            p = psutil.Process(pid)
            return [pid, *(c.pid for c in p.children(recursive=True))]
        except psutil.Error:
            return []

    return pids


def run_cli(args: list[str], env: dict[str, str], extra: Callable[[], Iterable[int]] | None = None
            ) -> tuple[float, str, dict[int, int], int]:
    """Seconds, stdout, the peak RSS of every process of one ``aihub`` command (and of
    the processes ``extra`` names, e.g. Dask workers) and that of the command's own."""
    began = time.perf_counter()
    proc = subprocess.Popen([AIHUB, *args], env={**os.environ, **env, "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    own = tree(proc.pid)

    def pids() -> list[int]:
        return own() + (list(extra()) if extra else [])

    with PeakRssOf(pids) as rss:
        out, err = proc.communicate()
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"aihub {' '.join(args)}: {err[-2000:]}")
    return seconds, out, rss.peaks, rss.peaks.get(proc.pid, 0)


# -- one N ------------------------------------------------------------------------------------


def fresh_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sizes(db_url: str) -> dict[str, tuple[int, int]]:
    with psycopg.connect(db_url) as conn:
        return {t: conn.execute("SELECT pg_table_size(%s), pg_indexes_size(%s)",
                                (t, t)).fetchone()  # type: ignore[misc]
                for t in ("readings", "hourly_rollups")}


def ingest(file: Path, env: dict[str, str], chunk_rows: int | None) -> dict[str, float]:
    subprocess.run([AIHUB, "db", "upgrade"], env={**os.environ, **env}, check=True,
                   capture_output=True)
    extra = ["--chunk-rows", str(chunk_rows)] if chunk_rows else []
    seconds, out, peaks, _ = run_cli(["ingest", "readings", str(file), "--tenant", TENANT, *extra],
                                  env)
    flat = " ".join(out.split())
    accepted = int(re.search(r"accepted (\d+) readings", flat).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"\(([\d,]+) readings/s", flat).group(1).replace(",", ""))  # type: ignore[union-attr]
    return {"rows": accepted, "seconds": seconds, "rate": rate, "rss": max(peaks.values())}


def export(env: dict[str, str], how: str, dask: object | None = None) -> dict[str, object]:
    args = ["export", "--tenant", TENANT, "--start", START.isoformat(),
            "--end", (START + timedelta(days=366)).isoformat(), "-s", "forecast_basic"]
    extra: Callable[[], Iterable[int]] | None = None
    if how == "workers":
        args += ["--workers", "2"]
    if how == "dask":
        worker_pids = list(dask.run(os.getpid).values())  # type: ignore[attr-defined]
        args += ["--dask", dask.scheduler.address]  # type: ignore[attr-defined]
        extra = lambda: worker_pids  # noqa: E731
    seconds, out, peaks, command = run_cli(args, env, extra)
    flat = " ".join(out.split())
    rows = int(re.search(r"completed (\d+) rows", flat).group(1))  # type: ignore[union-attr]
    path = flat.rsplit("-> ", 1)[1].split(" export_id")[0].replace(" ", "")
    shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else Path(path).unlink()
    ordered = sorted(peaks.values(), reverse=True)
    return {"seconds": seconds, "rows": rows, "rss_max": ordered[0], "rss_command": command,
            "rss_all": ordered, "processes": len(ordered)}


def hot_get(env: dict[str, str], assets: int, requests: int) -> dict[str, float]:
    port = free_port()
    as_of = (START + timedelta(days=300, hours=13)).isoformat()
    with process([AIHUB, "serve", "--port", str(port), "--log-level", "warning"],
                 {**env, "FEATURE_CACHE_TTL": "3600"}, port, "/ready", timeout=300):
        ids = [f"meter-{i:05d}" for i in range(assets)]
        for first in range(0, assets, 100):  # every asset's features into Redis
            post_json(port, "/ai/features/get-batch", {
                "tenant_id": TENANT, "asset_ids": ids[first:first + 100],
                "feature_set": "forecast_basic", "lookback_hours": 168, "as_of": as_of})
        bodies = [json.dumps({"tenant_id": TENANT, "asset_id": a, "feature_set": "forecast_basic",
                              "lookback_hours": 168, "as_of": as_of}).encode() for a in ids]
        step = 7919  # a prime: cycles through every asset in a scattered order
        got = summary(latencies(port, "/ai/features/get",
                                lambda i: bodies[(i * step) % assets], requests, warmup=200))
    return got


STEPS = ("ingest", "vacuum", "inline", "workers", "dask", "get")
MEASURED = ("ingest", "inline", "workers", "dask", "get")  # what a size's row shows


def one_size(n: int, args: argparse.Namespace, baseline: bool, steps: Iterable[str],
             prior: dict[str, object] | None = None) -> dict[str, object]:
    """The ``steps`` of size ``n``; ``prior``: what earlier invocations measured of this
    size (``--state``), whose database and Redis keys are kept until every step ran."""
    from distributed import Client, LocalCluster

    out: dict[str, object] = dict(prior or {"assets": n})
    db = str(out.setdefault("db", f"bench_scale_{os.getpid()}"))
    prefix = str(out.setdefault("prefix", f"aihub-bench-scale-{os.getpid()}:"))
    work = Path(f"/tmp/{db}")
    work.mkdir(parents=True, exist_ok=True)
    loads: dict[str, object] = out.setdefault("loads", {})  # type: ignore[assignment]
    file = work / f"readings_{n}.parquet"
    env = {"AIHUB_DATA_DIR": str(work / "data"), "EXPORT_STORAGE_PATH": str(work / "exports"),
           "REDIS_URL": REDIS_URL, "AIHUB_REDIS_PREFIX": prefix,
           "AIHUB_CHANGE_FOLLOW_INTERVAL": "0",
           "DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + db}
    finished = False
    try:
        for step in steps:
            began = os.getloadavg()[0]
            if step == "ingest":
                t = time.perf_counter()
                rows = write_readings(file, n, args.hours)
                print(f"[{n}] file {rows:,} rows, {file.stat().st_size / 1e6:.0f} MB in "
                      f"{time.perf_counter() - t:.1f} s", flush=True)
                out["readings"] = rows
                out["load"] = began = os.getloadavg()[0]
                if baseline:
                    env["DATABASE_URL"] = fresh_database(db)
                    out["whole"] = ingest(file, env, chunk_rows=rows + 1)
                    print(f"[{n}] whole-file ingest {out['whole']}", flush=True)
                env["DATABASE_URL"] = fresh_database(db)
                out["ingest"] = ingest(file, env, chunk_rows=None)
                print(f"[{n}] chunked ingest {out['ingest']}", flush=True)
                file.unlink()
                out["sizes"] = sizes(env["DATABASE_URL"])
                print(f"[{n}] sizes {out['sizes']}", flush=True)
            elif step == "vacuum":
                # What autovacuum does after a bulk load on a deployed server (the test
                # server runs without it): hint bits and visibility set, statistics
                # gathered. Without it the first export after the load sets the hint bits
                # itself, writing back every page it reads.
                t = time.perf_counter()
                with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
                    conn.execute("VACUUM (ANALYZE) readings, hourly_rollups")
                out["vacuum"] = {"seconds": time.perf_counter() - t}
                print(f"[{n}] vacuum {out['vacuum']}", flush=True)
            elif step in ("inline", "workers"):
                out[step] = export(env, step)
                print(f"[{n}] export {step} {out[step]}", flush=True)
            elif step == "dask":
                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, Client(cluster) as client:
                    # A standing cluster has aihub loaded: imports are not part of the export.
                    client.run(lambda: __import__("aihub.services.export_parts"))
                    out["dask"] = export(env, "dask", client)
                print(f"[{n}] export dask {out['dask']}", flush=True)
            elif step == "get":
                out["get"] = hot_get(env, n, args.requests)
                print(f"[{n}] hot get {out['get']}", flush=True)
            else:
                raise SystemExit(f"--steps: unknown step '{step}' (one of {', '.join(STEPS)})")
            loads[step] = [round(began, 2), round(os.getloadavg()[0], 2)]
        finished = all(k in out for k in MEASURED)
    finally:
        if finished or not args.state:
            drop_database(db)
            r = redis.Redis.from_url(REDIS_URL)
            keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
            for i in range(0, len(keys), 1000):
                r.delete(*keys[i : i + 1000])
            shutil.rmtree(work, ignore_errors=True)
        file.unlink(missing_ok=True)
    return out


# -- report -----------------------------------------------------------------------------------


def mib(b: object) -> str:
    return f"{int(b) / 2**20:,.0f}"  # type: ignore[call-overload]


def peaks(run: object) -> str:
    """The command's peak RSS, then its workers' (the two largest of the others)."""
    others = list(run["rss_all"])  # type: ignore[index]
    if "rss_command" not in run:  # type: ignore[operator]
        return f"peaks {', '.join(mib(x) for x in others[:3])} MiB"
    command = int(run["rss_command"])  # type: ignore[index]
    if command in others:
        others.remove(command)
    return (f"command {mib(command)}, workers "
            f"{', '.join(mib(x) for x in others[:2])} MiB")


def report(results: list[dict[str, object]], started: str, note: str) -> str:
    lines = [
        f"Machine: {machine()}. Run {started} UTC. PostgreSQL 15 without TimescaleDB (stock "
        "settings), Redis 7, on loopback; other work shared the 2 cores (load average "
        "noted per size).",
        "",
        "| assets | readings | load avg | ingest (chunks of 500k) | ingest peak RSS | "
        "readings table + indexes | rollups table + indexes | export in-process | "
        "export 2 local workers | export Dask LocalCluster (2 workers) | hot get p50 / p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ing, sz = r["ingest"], r["sizes"]
        inl, wrk, dsk, get = r["inline"], r["workers"], r["dask"], r["get"]
        lines.append(
            f"| {r['assets']:,} | {r['readings']:,} | {r['load']:.1f} | "  # type: ignore[str-format]
            f"{ing['seconds']:.1f} s, {ing['rate']:,.0f}/s | {mib(ing['rss'])} MiB | "  # type: ignore[index]
            f"{mib(sz['readings'][0])} + {mib(sz['readings'][1])} MiB | "  # type: ignore[index]
            f"{mib(sz['hourly_rollups'][0])} + {mib(sz['hourly_rollups'][1])} MiB | "  # type: ignore[index]
            f"{inl['seconds']:.1f} s, peak {mib(inl['rss_max'])} MiB | "  # type: ignore[index]
            f"{wrk['seconds']:.1f} s, {peaks(wrk)} | "
            f"{dsk['seconds']:.1f} s, {peaks(dsk)} | "
            f"{get['p50_ms']:.3f} / {get['p99_ms']:.3f} ms |"  # type: ignore[index]
        )
    lines.append("")
    lines.append("Load average (1 min) at the start and end of each step: " + "; ".join(
        f"{r['assets']:,}: " + ", ".join(  # type: ignore[str-format]
            f"{step} {a:.1f}-{b:.1f}" for step, (a, b) in r["loads"].items())  # type: ignore[attr-defined]
        for r in results if r.get("loads")) + ".")
    vacuumed = [r for r in results if "vacuum" in r]
    if vacuumed:
        lines.append("VACUUM (ANALYZE) of readings and rollups after the load, before the "
                     "exports: " + "; ".join(
                         f"{r['assets']:,} assets {r['vacuum']['seconds']:.1f} s"  # type: ignore[index,str-format]
                         for r in vacuumed) + ".")
    first = next((r for r in results if "whole" in r), results[0])
    lines.append("")
    if "whole" in first:
        w, c = first["whole"], first["ingest"]
        lines.append(
            f"Ingest before and after chunking, {first['assets']:,} assets "  # type: ignore[str-format]
            f"({first['readings']:,} readings), same file, fresh database each: the whole "
            f"file in one chunk (one transaction, as before) {w['rate']:,.0f} readings/s, "  # type: ignore[index]
            f"peak RSS {mib(w['rss'])} MiB; chunks of 500,000 rows {c['rate']:,.0f} readings/s "  # type: ignore[index]
            f"({c['rate'] / w['rate']:.2f}x), peak RSS {mib(c['rss'])} MiB."  # type: ignore[index]
        )
    if len(results) > 1:
        lo, hi = results[0], results[-1]
        scale = hi["assets"] / lo["assets"]  # type: ignore[operator]
        parts = []
        for key, label in (("inline", "in-process"), ("workers", "2 workers"),
                           ("dask", "Dask")):
            ratio = hi[key]["seconds"] / lo[key]["seconds"] / scale  # type: ignore[index]
            parts.append(f"{label} {ratio:.2f}x")
        p50 = hi["get"]["p50_ms"] / lo["get"]["p50_ms"]  # type: ignore[index]
        lines.append(
            f"From {lo['assets']:,} to {hi['assets']:,} assets: export time over linear "  # type: ignore[str-format]
            f"growth {', '.join(parts)} (target <= 1.1x); hot get p50 {p50:.2f}x "
            "(target within 10%); peak RSS per process in the columns above (target: "
            "independent of the asset count)."
        )
    lines += ["", note, "",
              "![export and ingest time against assets](scale.png)", "",
              "Reproduce: `.venv/bin/python bench/bench_scale.py --assets 1000,3000,10000` "
              "(needs PostgreSQL and Redis on loopback; creates and drops its own database), or a "
              "size in steps that keep its database in between: `--assets 10000 --state "
              "s.json --steps ingest,vacuum`, then `--steps inline`, `--steps workers`, ... "
              "(the section is written once a size has every step)."]
    return "\n".join(lines)


def plot(results: list[dict[str, object]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["assets"] for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (("ingest", "ingest (chunks of 500k rows)"),
                       ("inline", "export, in-process"),
                       ("workers", "export, 2 local workers"),
                       ("dask", "export, Dask LocalCluster, 2 workers")):
        ax.plot(x, [r[key]["seconds"] for r in results], marker="o", label=label)  # type: ignore[index]
    ax.set_xlabel("assets (1 year hourly each)")
    ax.set_ylabel("seconds")
    ax.set_title("aihub on PostgreSQL: time against assets (2 shared cores)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(BENCH / "scale.png", dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--assets", default="1000,3000,10000")
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--note", default="", help="a line added below the table")
    ap.add_argument("--no-write", action="store_true", help="don't update RESULTS.md")
    ap.add_argument("--previous", type=Path, default=None,
                    help="results JSON of an earlier run (/tmp/bench_scale_<pid>.json) to "
                    "report together with this one's")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the whole-file (one chunk) ingest of the first size")
    ap.add_argument("--steps", default=",".join(STEPS),
                    help="what to run of each size (ingest,inline,workers,dask,get); with "
                    "--state, one invocation per step or two keeps each one short")
    ap.add_argument("--state", type=Path, default=None,
                    help="JSON file of the sizes measured so far, step by step: their "
                    "database is kept until every step of the size ran")
    args = ap.parse_args()
    # Every child (commands, servers, Dask workers) runs this checkout's aihub.
    src = str(BENCH.parent / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [src, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)])
    sys.path.insert(0, src)  # and the Dask workers this process spawns
    sizes_to_run = [int(a) for a in args.assets.split(",")]
    steps = [s for s in args.steps.split(",") if s]
    started = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
    earlier: list[dict[str, object]] = (
        json.loads(args.previous.read_text()) if args.previous else [])
    state: dict[str, dict[str, object]] = (
        json.loads(args.state.read_text()) if args.state and args.state.exists() else {})
    results: list[dict[str, object]] = []
    for i, n in enumerate(sizes_to_run):
        baseline = i == 0 and not args.no_baseline and str(n) not in state
        state[str(n)] = one_size(n, args, baseline, steps, state.get(str(n)))
        results.append(state[str(n)])
        if args.state:
            args.state.write_text(json.dumps(state, default=str))
        Path(f"/tmp/bench_scale_{os.getpid()}.json").write_text(
            json.dumps(results, default=str))
        complete = [r for r in earlier + list(state.values() if args.state else results)
                    if all(k in r for k in MEASURED)]
        if not complete:
            continue
        both = sorted(complete, key=lambda r: int(r["assets"]))  # type: ignore[call-overload]
        text = report(both, started, args.note)
        print(text, flush=True)
        if not args.no_write:
            write_section("At scale", text)
            plot(both)


if __name__ == "__main__":
    main()
