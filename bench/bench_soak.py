"""Soak: two ``aihub serve`` replicas sharing their backends under a mixed load (issue 5).

    .venv/bin/python bench/bench_soak.py [--seconds 180] [--threads 8] [--config both]

``production``: PostgreSQL (a fresh database, dropped afterwards), Redis (a key prefix of
its own) and S3 (a moto server on a loopback port). ``embedded``: both replicas on one
SQLite file and one artifact directory. Each of ``--threads`` client threads (loopback only,
one keep-alive connection per replica) picks an operation at random: online get (50%),
ingest of a few new readings for one asset (10%), registry read (GET a version or list,
20%), prediction with a production model (20%), against a random replica; the run stops
after ``--seconds``. Records errors (any status but 200), p50/p99 per operation, and the
RSS of both replicas (process tree) after warm-up and at the end. Results replace the
"Soak (two replicas)" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from harness import AIHUB, free_port, machine, process, summary, write_section  # noqa: E402
from tests.registry.models import FEATURES, lightgbm_text, register_body  # noqa: E402

PG_ADMIN = os.environ.get("AIHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AIHUB_TEST_REDIS", "redis://127.0.0.1:6379/0")
T = "tenant-soak"
ASSETS = 20
T0 = datetime(2024, 1, 1, tzinfo=UTC)
OPS = ["get"] * 5 + ["ingest"] + ["registry"] * 2 + ["predict"] * 2


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def rss(pid: int) -> int:
    """RSS of a replica: the serve process and its children (workers)."""
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


@contextmanager
def production_env(work: Path) -> Iterator[dict[str, str]]:
    import psycopg
    import redis
    from moto.server import ThreadedMotoServer

    db = f"aihub_soak_{uuid.uuid4().hex[:10]}"
    prefix = f"aihub-soak-{uuid.uuid4().hex[:10]}:"
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield {"DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + db, "REDIS_URL": REDIS_URL,
               "AIHUB_REDIS_PREFIX": prefix, "MINIO_ENDPOINT_URL": f"http://127.0.0.1:{port}",
               "MINIO_ACCESS_KEY": "testing", "MINIO_SECRET_KEY": "testing",
               "MODEL_STORAGE_BUCKET": "aihub-soak", "AIHUB_DATA_DIR": str(work / "data")}
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)
        moto.stop()


def seed(url: str) -> str:
    """Two weeks of hourly readings for every asset and a production LightGBM model."""
    with httpx.Client(base_url=url, timeout=120) as c:
        rows = [{"asset_id": f"m{a}", "ts": iso(T0 + timedelta(hours=h)),
                 "value": 40 + (h % 24) + a * 0.1} for a in range(ASSETS) for h in range(24 * 14)]
        r = c.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
        r.raise_for_status()
        r = c.post("/ai/models/register", json=register_body("v1.0.0", tenant=T))
        r.raise_for_status()
        model_id = r.json()["model_id"]
        c.put(f"/ai/models/{model_id}/artifact", content=lightgbm_text()).raise_for_status()
        c.put(f"/ai/models/{model_id}/promote",
              json={"target_stage": "production", "reason": "soak"}).raise_for_status()
        return str(model_id)


class Load:
    def __init__(self, urls: list[str], model_id: str, seconds: float, threads: int) -> None:
        self.urls, self.model_id = urls, model_id
        self.deadline = time.monotonic() + seconds
        self.threads = threads
        self.samples: dict[str, list[float]] = {op: [] for op in set(OPS)}
        self.errors: list[str] = []
        self.next_hour = [24 * 14] * ASSETS  # ingest appends (and sometimes corrects) hours
        self.lock = threading.Lock()

    def request(self, c: httpx.Client, op: str, rng: random.Random) -> httpx.Response:
        asset = rng.randrange(ASSETS)
        if op == "get":
            return c.post("/ai/features/get", json={"tenant_id": T, "asset_id": f"m{asset}"})
        if op == "ingest":
            with self.lock:
                start = self.next_hour[asset] - rng.choice((0, 0, 2))  # some corrections
                self.next_hour[asset] = start + 4 if start + 4 > self.next_hour[asset] \
                    else self.next_hour[asset]
            rows = [{"asset_id": f"m{asset}", "ts": iso(T0 + timedelta(minutes=15 * q)),
                     "value": rng.uniform(20, 60)} for q in range(start * 4, start * 4 + 16)]
            return c.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
        if op == "registry":
            if rng.random() < 0.5:
                return c.get(f"/ai/models/{self.model_id}")
            return c.get("/ai/models/", params={"tenant_id": T})
        rows = [{"hour_of_day": rng.randrange(24), "lag_24h": rng.uniform(30, 50),
                 "rolling_24h_avg": rng.uniform(30, 50)} for _ in range(rng.randrange(1, 25))]
        assert set(rows[0]) == set(FEATURES)
        return c.post(f"/ai/models/{self.model_id}/predict", json={"rows": rows})

    def worker(self, n: int) -> None:
        rng = random.Random(n)
        clients = [httpx.Client(base_url=u, timeout=30) for u in self.urls]
        try:
            while time.monotonic() < self.deadline:
                op = rng.choice(OPS)
                t = time.perf_counter()
                try:
                    r = self.request(rng.choice(clients), op, rng)
                    ok, what = r.status_code == 200, f"{op}: {r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, what = False, f"{op}: {type(exc).__name__} {exc}"
                dt = time.perf_counter() - t
                with self.lock:
                    (self.samples[op] if ok else self.errors).append(dt if ok else what)
        finally:
            for c in clients:
                c.close()

    def run(self) -> None:
        threads = [threading.Thread(target=self.worker, args=(n,)) for n in range(self.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def soak(config: str, seconds: float, threads: int) -> list[str]:
    work = Path(f"/tmp/aihub-soak-{uuid.uuid4().hex[:8]}")
    with ExitStack() as stack:
        if config == "production":
            env = stack.enter_context(production_env(work))
        else:
            env = {"AIHUB_DATA_DIR": str(work / "data")}
        env = {**env, "EXPORT_STORAGE_PATH": str(work / "exports"), "FEATURE_CACHE_TTL": "300"}
        ports = [free_port(), free_port()]
        procs = [stack.enter_context(process(
            [AIHUB, "serve", "--port", str(p), "--log-level", "warning"],
            env, p, ready_path="/ready")) for p in ports]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        model_id = seed(urls[0])
        Load(urls, model_id, min(20.0, seconds / 6), threads).run()  # warm-up
        start_rss = [rss(p.pid) for p in procs]
        load = Load(urls, model_id, seconds, threads)
        t0 = time.monotonic()
        load.run()
        elapsed = time.monotonic() - t0
        end_rss = [rss(p.pid) for p in procs]
    total = sum(len(s) for s in load.samples.values())
    where = ("PostgreSQL + Redis + S3/moto" if config == "production"
             else "one SQLite file, one artifact directory")
    lines = [f"**{config}** ({where}): "
             f"{elapsed:.0f} s, {threads} client threads, {total + len(load.errors):,} "
             f"requests ({(total + len(load.errors)) / elapsed:.0f}/s), "
             f"**errors: {len(load.errors)}**.", "",
             "| operation | requests | p50 ms | p99 ms |", "|---|---|---|---|"]
    for op in ("get", "ingest", "registry", "predict"):
        s = summary(load.samples[op])
        lines.append(f"| {op} | {s['n']:,} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} |")
    lines += ["", "| replica | RSS after warm-up | RSS at end | change |", "|---|---|---|---|"]
    for name, a, b in zip("AB", start_rss, end_rss, strict=True):
        lines.append(f"| {name} | {a / 2**20:.0f} MiB | {b / 2**20:.0f} MiB | "
                     f"{(b - a) / 2**20:+.1f} MiB |")
    if load.errors:
        lines += ["", "First errors: " + "; ".join(load.errors[:5])]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--config", choices=["production", "embedded", "both"], default="both")
    ap.add_argument("--no-write", action="store_true", help="don't update RESULTS.md")
    args = ap.parse_args()
    configs = ["production", "embedded"] if args.config == "both" else [args.config]
    lines = [f"Machine: {machine()}. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Two "
             "`aihub serve` processes (1 worker each) on loopback ports; the load picks a "
             "replica at random per request: online get 50%, ingest (16 fifteen-minute "
             "readings of one asset, some correcting earlier ones) 10%, registry read 20%, "
             "predict (1-24 rows, LightGBM) 20%. Server, clients and backends share the "
             "2 cores: read latencies with the load average above.", ""]
    for config in configs:
        lines += [*soak(config, args.seconds, args.threads), ""]
    lines += ["Reproduce: `.venv/bin/python bench/bench_soak.py --seconds 180` (needs "
              "PostgreSQL and Redis on loopback for the production run)."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Soak (two replicas)", text)


if __name__ == "__main__":
    main()
