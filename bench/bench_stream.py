"""Streaming ingest from MQTT (issue 13): sustained rates and publish-to-visible freshness.

    .venv/bin/python bench/bench_stream.py [--seconds 60] [--backends embedded,postgresql]

Everything on the same cores: a Mosquitto of the bench's own on a free loopback port
(its settings are printed with the results), `aihub serve` with `AIHUB_MQTT_URL` (the
stream inside the API process, batches of 200 ms / 50,000 readings unless
AIHUB_MQTT_BATCH_ROWS says otherwise; the default is 5,000), and publishers
`mosquitto_pub -l -q 1` (one per asset) fed lines by this process. Per backend:

1. messages/s with one reading per message: the publishers publish as fast as they can
   for ``--seconds``; the rate is the stream's committed messages (``GET
   /ai/stream/status``) over the window after a 3 s warm-up. The publishers are held to
   at most two batches (and 60,000 messages) outstanding per stream process. Then the
   bench waits until every published message is committed (a wait with no progress for
   30 s is reported, not waited out) and checks the stored readings count equals the
   published count exactly.
2. readings/s with 100 readings per message, the same way.
3. freshness at 50% of the rate measured in 1: the publishers paced at that rate, and a
   probe every 200 ms: publish a reading (QoS 1) for a probe asset, then poll `POST
   /ai/features/get` until its `lag_1h` is the published value; p50/p99 of publish to
   visible (polled every 10 ms).

Results replace the "Streaming ingest (MQTT)" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import paho.mqtt.client as mqtt
import polars as pl
from harness import AIHUB, RawClient, free_port, machine, process, write_section
from paho.mqtt.enums import CallbackAPIVersion

TENANT = "bench"
BASE = datetime(2020, 1, 1, tzinfo=UTC)
BASE_US = int(BASE.timestamp() * 1_000_000)
PG_ADMIN = os.environ.get("AIHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AIHUB_TEST_REDIS", "redis://127.0.0.1:6379/0")
# The stream's batch size for the run (README "Sizing batches for high rates").
BATCH_ROWS = int(os.environ.get("AIHUB_MQTT_BATCH_ROWS", "50000"))
# Messages a stream process may have outstanding (published, not yet committed): below
# MQTT's 65,535 packet ids. Mosquitto 2.0 numbers a session's messages when it queues
# them, so a larger backlog reuses packet ids still in flight; in a 60 s run with 100,000
# outstanding, 64,923 messages the broker had acknowledged to the publishers never reached
# the stream (README "Broker settings for the rates").
MAX_BACKLOG = 60_000
BROKER_SETTINGS = """\
allow_anonymous true
user root
persistence true
autosave_interval 60
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
"""


def start_broker(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\npersistence_location {folder}/\n"
                    + BROKER_SETTINGS)
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def lines(first: int, count: int, per: int, asset: int) -> list[bytes]:
    """``count`` messages (one JSON line each, with its newline) of ``per`` readings,
    numbered from ``first``: every reading of an asset at its own second, built by Polars."""
    idx = pl.int_range(first * per, (first + count) * per, eager=True, dtype=pl.Int64)
    frame = pl.DataFrame({"i": idx}).with_columns(
        ts=(pl.col("i") * 1_000_000 + BASE_US).cast(pl.Datetime("us"))
        .dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        v=(pl.col("i") % 1000 + asset).cast(pl.Float64) * 0.5,
    ).select(row=pl.format('{{"ts":"{}","value":{}}}', "ts", "v"), m=pl.col("i") // per)
    if per == 1:
        text = frame.get_column("row")
    else:
        text = ("[" + frame.group_by("m", maintain_order=True)
                .agg(pl.col("row").str.join(",")).get_column("row") + "]")
    return [line.encode() + b"\n" for line in text.to_list()]


class Gate:
    """Keeps what the publishers fed but the stream has not committed under ``limit``
    messages: ``mosquitto_pub`` queues without bound in its own memory, so feeding it flat
    out measures nothing but its buffer. A thread reads the stream's committed count every
    50 ms."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit = port, limit
        self.base = committed(port)
        self.done = self.base
        self.fed = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.wait(0.05):
            self.done = committed(self.port)

    def take(self, want: int) -> int:
        with self.lock:
            room = self.limit - (self.fed - (self.done - self.base))
            n = max(0, min(want, room))
            self.fed += n
            return n

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


class Publisher:
    """One ``mosquitto_pub -l`` for one asset, fed by a thread: as fast as the ``gate``
    lets it, or paced at ``rate`` messages/s."""

    def __init__(self, port: int, asset: int, per: int, *, rate: float | None = None,
                 gate: Gate | None = None, first: int = 0) -> None:
        self.asset, self.per, self.rate, self.gate, self.next = asset, per, rate, gate, first
        self.sent = 0
        self.proc = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-M", "1000",
             "-i", f"bench-pub-{uuid.uuid4().hex[:8]}", "-l",
             "-t", f"aihub/{TENANT}/readings/a{asset}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        assert self.proc.stdin is not None
        chunk = 500 if self.per == 1 else 10
        # Lines are built ahead, many per Polars call: paced publishers write a few dozen
        # at a time, and building those few per call cost the bench itself most of a core
        # at 26,000 msg/s (CPU the stream under test shares).
        ready: list[bytes] = []
        began = time.monotonic()
        while not self.stop.is_set():
            n = chunk
            if self.rate is not None:
                n = min(int((time.monotonic() - began) * self.rate) - self.sent, chunk)
            if self.gate is not None:
                n = self.gate.take(n)
            if n <= 0:
                time.sleep(0.005)
                continue
            if len(ready) < n:
                ready += lines(self.next + len(ready), 20 * chunk, self.per, self.asset)
            data, ready = b"".join(ready[:n]), ready[n:]
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            self.next += n
            self.sent += n

    def finish(self) -> int:
        """Stop feeding; ``mosquitto_pub`` sends what it has and exits. Messages fed."""
        self.stop.set()
        self.thread.join()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(300)
        return self.sent


def get_json(port: int, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    data: dict[str, Any] = json.loads(conn.getresponse().read())
    conn.close()
    return data


def committed(port: int) -> int:
    return int(get_json(port, "/ai/stream/status")["messages_committed"])


def stored_readings(port: int) -> int:
    """The tenant's stored readings (0 before its first: the status is a 404 then)."""
    return int(get_json(port, f"/ai/features/status?tenant_id={TENANT}").get("readings", 0))


def throughput(port: int, broker: int, per: int, seconds: float, publishers: int,
               *, offset: int, processes: int = 1) -> dict[str, float]:
    """Flat-out publishing for ``seconds``; the stream's sustained commit rate. Readings
    start ``offset`` seconds after ``BASE``."""
    base_msgs, base_rows = committed(port), stored_readings(port)
    load = os.getloadavg()[0]
    # At most two batches' worth of readings outstanding per stream process (and what
    # the other processes' status reports, four a second, may lag by): the stream always
    # has a full batch waiting, the publishers never run ahead into their own memory.
    # Never more than MAX_BACKLOG messages per process: see there.
    gate = Gate(port, min(max(50, 2 * BATCH_ROWS // per), MAX_BACKLOG) * processes)
    pubs = [Publisher(broker, a, per, gate=gate, first=offset // per)
            for a in range(publishers)]
    warm = min(3.0, seconds / 5)
    time.sleep(warm)
    t0, c0 = time.monotonic(), committed(port)
    time.sleep(seconds - warm)
    t1, c1 = time.monotonic(), committed(port)
    fed = sum(p.finish() for p in pubs)
    gate.close()
    publish_rate = fed / (time.monotonic() - t0 + warm)
    drain = wait_committed(port, base_msgs + fed)
    rows = stored_readings(port) - base_rows
    out = {"msg_s": (c1 - c0) / (t1 - t0), "published": fed, "fed_msg_s": publish_rate,
           "stored": rows, "expected": fed * per, "drain_s": drain, "load": load,
           "load_end": os.getloadavg()[0]}
    print(f"phase {per}/message: {out}", flush=True)  # seen even if a later phase hangs
    return out


def wait_committed(port: int, target: int, *, stalled: float = 30.0) -> float:
    """Seconds until the stream committed ``target`` messages in all; gives up once its
    count has not moved for ``stalled`` seconds (the phase then reports the mismatch
    instead of holding the CPU lock for minutes in silence)."""
    began = last_move = time.monotonic()
    seen = committed(port)
    while seen < target and time.monotonic() - last_move < stalled:
        time.sleep(0.2)
        now = committed(port)
        if now != seen:
            seen, last_move = now, time.monotonic()
    if seen < target:
        print(f"stream stalled {target - seen:,} messages short of what was published",
              flush=True)
    return time.monotonic() - began


def freshness(port: int, broker: int, rate: float, seconds: float, publishers: int,
              ) -> dict[str, float]:
    """Probes while background publishers run at ``rate`` messages/s in total."""
    hist = [{"asset_id": "probe", "ts": (BASE + timedelta(hours=h)).isoformat()
             .replace("+00:00", "Z"), "value": 1.0} for h in range(47)]
    client = RawClient(port)
    status, body = client.post("/ai/features/ingest",
                               orjson.dumps({"tenant_id": TENANT, "readings": hist}))
    assert status == 200, body
    get = orjson.dumps({"tenant_id": TENANT, "asset_id": "probe",
                        "feature_set": "forecast_basic",
                        "as_of": (BASE + timedelta(hours=48)).isoformat()})
    probe_ts = (BASE + timedelta(hours=47, minutes=30)).isoformat().replace("+00:00", "Z")
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                      client_id=f"bench-probe-{uuid.uuid4().hex[:8]}")
    pub.connect("127.0.0.1", broker)
    pub.loop_start()
    load = os.getloadavg()[0]
    pubs = [Publisher(broker, 100 + a, 1, rate=rate / publishers, first=20_000_000)
            for a in range(publishers)]
    time.sleep(2)
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    k = 0
    while time.monotonic() < deadline:
        k += 1
        value = 1000.0 + k
        t = time.perf_counter()
        pub.publish("aihub/bench/readings/probe",
                    orjson.dumps({"ts": probe_ts, "value": value}), qos=1)
        while True:
            status, answer = client.post("/ai/features/get", get)
            if status == 200 and orjson.loads(answer)["features"].get("lag_1h") == value:
                samples.append(time.perf_counter() - t)
                break
            if time.perf_counter() - t > 10:
                raise RuntimeError("a probe was not visible within 10 s")
            # Every 10 ms: polling harder would take the server's (and so the stream's)
            # CPU and measure the probe itself.
            time.sleep(0.01)
        time.sleep(0.2)
    fed = sum(p.finish() for p in pubs)
    pub.disconnect()
    pub.loop_stop()
    client.close()
    q = statistics.quantiles(sorted(samples), n=100, method="inclusive")
    print(f"freshness: p50 {q[49] * 1e3:.0f} ms, p99 {q[98] * 1e3:.0f} ms", flush=True)
    return {"p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3, "n": len(samples),
            "rate": rate, "fed": fed, "load": load, "load_end": os.getloadavg()[0]}


def run_backend(name: str, env: dict[str, str], args: argparse.Namespace,
                broker: int) -> list[str]:
    port = free_port()
    env = {**env, "AIHUB_MQTT_URL": f"mqtt://127.0.0.1:{broker}",
           "AIHUB_MQTT_CLIENT_ID": f"bench-{uuid.uuid4().hex[:8]}",
           "AIHUB_MQTT_PROCESSES": str(args.processes),
           "AIHUB_MQTT_BATCH_ROWS": str(BATCH_ROWS),
           "AIHUB_CHANGE_FOLLOW_INTERVAL": str(args.follow_interval)}
    out: list[str] = []
    if args.processes > 1:
        name = f"{name}, {args.processes} stream processes"
    with process([AIHUB, "serve", "--port", str(port)], env, port, ready_path="/health"):
        while not get_json(port, "/ai/stream/status").get("subscriptions"):
            time.sleep(0.1)
        time.sleep(3 if args.processes > 1 else 0)  # the other workers subscribe
        # Each asset's readings one second apart: the phases months apart.
        phases = args.phases.split(",")
        done: list[tuple[str, dict[str, float], int]] = []
        rate = args.fresh_rate
        if "one" in phases:
            one = throughput(port, broker, 1, args.seconds, args.publishers,
                             offset=10_000_000, processes=args.processes)
            done.append(("1 reading/message", one, 1))
            rate = rate or one["msg_s"] / 2
        if "hundred" in phases:
            done.append(("100 readings/message", throughput(
                port, broker, 100, args.seconds, args.publishers, offset=50_000_000,
                processes=args.processes), 100))
        fresh, failed = None, None
        if "fresh" in phases and rate:
            try:
                fresh = freshness(port, broker, rate, args.fresh_seconds, args.publishers)
            except RuntimeError as exc:  # the throughput rows are kept
                failed = f"| {name} | freshness at {rate:,.0f} msg/s (50%) | **failed** | {exc} | |"
                print(failed, flush=True)
    for label, r, per in done:
        ok = "exact" if r["stored"] == r["expected"] else (
            f"MISMATCH {r['stored']:,} of {r['expected']:,}")
        out.append(
            f"| {name} | {label} | **{r['msg_s']:,.0f} msg/s = {r['msg_s'] * per:,.0f} "
            f"readings/s** | fed {r['fed_msg_s']:,.0f} msg/s; {r['published']:,.0f} "
            f"messages, stored {ok}; drained {r['drain_s']:.1f} s after | {r['load']:.2f} -> "
            f"{r['load_end']:.2f} |")
    if fresh is None:
        return out + ([failed] if failed else [])
    out.append(
        f"| {name} | freshness at {fresh['rate']:,.0f} msg/s (50%) | **p50 "
        f"{fresh['p50_ms']:.0f} ms, p99 {fresh['p99_ms']:.0f} ms** | {fresh['n']} probes | "
        f"{fresh['load']:.2f} -> {fresh['load_end']:.2f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--fresh-seconds", type=float, default=30)
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--backends", default="embedded,postgresql")
    ap.add_argument("--phases", default="one,hundred,fresh",
                    help="which of one (1 reading/message), hundred, fresh to run")
    ap.add_argument("--fresh-rate", type=float, default=0.0,
                    help="freshness background rate (default: half of phase one's)")
    ap.add_argument("--processes", type=int, default=1,
                    help="AIHUB_MQTT_PROCESSES: stream worker processes (shared subscriptions)")
    ap.add_argument("--follow-interval", type=float, default=0.5,
                    help="AIHUB_CHANGE_FOLLOW_INTERVAL: how soon the API process hears of "
                         "other processes' writes (matters with --processes > 1, embedded)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows: list[str] = []
    started = datetime.now(UTC)
    head = machine()
    with tempfile.TemporaryDirectory(prefix="aihub-bench-stream-") as tmp:
        work = Path(tmp)
        broker_proc, broker = start_broker(work)
        try:
            for name in args.backends.split(","):
                data = work / name
                env = {"AIHUB_DATA_DIR": str(data / "data"),
                       "EXPORT_STORAGE_PATH": str(data / "exports")}
                if name == "postgresql":
                    rows += with_postgres(env, args, broker)
                else:
                    rows += run_backend("embedded (SQLite, in-process cache)", env, args,
                                        broker)
        finally:
            broker_proc.terminate()
            broker_proc.wait(30)
    settings = "; ".join(line for line in BROKER_SETTINGS.splitlines())
    text = "\n".join([
        f"Machine: {head}. Run {started:%Y-%m-%d %H:%M} UTC, {args.seconds:.0f} s per "
        f"throughput phase, {args.fresh_seconds:.0f} s of freshness probes, "
        f"{args.publishers} publishers (`mosquitto_pub -l -q 1 -M 1000`, one asset each) on "
        "the same cores as Mosquitto 2.0.11, `aihub serve` (stream inside, batches of at "
        f"most 200 ms / {BATCH_ROWS:,} readings, group commit after 20 ms, receive maximum "
        f"{min(65_535, 2 * BATCH_ROWS):,}, {args.processes} stream process(es)) "
        "and PostgreSQL.",
        f"Broker settings: `{settings}` (README \"Streaming ingest (MQTT)\").",
        "",
        "| store | load | sustained | notes | load avg (1 min, start -> end) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Targets: >= 20,000 msg/s with one reading per message, >= 200,000 readings/s with "
        "100 per message; freshness p50 <= 250 ms, p99 <= 1 s at 50% of the rate.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_stream.py` (needs `mosquitto` and "
        "`mosquitto_pub`; the PostgreSQL run creates and drops its own database).",
    ])
    print(text)
    if not args.no_write:
        write_section("Streaming ingest (MQTT)", text)


def with_postgres(env: dict[str, str], args: argparse.Namespace, broker: int) -> list[str]:
    import psycopg
    import redis

    db = f"aihub_bench_{uuid.uuid4().hex[:10]}"
    prefix = f"aihub-bench-{uuid.uuid4().hex[:10]}:"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        env = {**env, "DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + db,
               "REDIS_URL": REDIS_URL, "AIHUB_REDIS_PREFIX": prefix}
        return run_backend("PostgreSQL + Redis", env, args, broker)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i: i + 1000])


if __name__ == "__main__":
    main()
