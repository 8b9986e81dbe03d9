"""The online store on one Redis server against a 3-master Redis Cluster (issue 14).

    .venv/bin/python bench/bench_redis_cluster.py [--rounds 10] [--no-write]

Starts its own cluster (three ``redis-server --cluster-enabled yes`` on loopback ports,
``redis-cli --cluster create``; both must be installed) and uses a key prefix of its own on
the Redis at ``AIHUB_BENCH_REDIS`` (default 127.0.0.1:6379). Measures, in the same process
and interleaved round by round so both see the same machine load: reading one and 100
cached assets (``get_many``, what ``get`` and ``get-batch`` do on a hit), filling 100
(``put_many``, the generation-guarded script) and invalidating 100 (``invalidate``, what an
ingest does). On the cluster a batch is one pipeline per master; the row "cluster client's
own pipeline" sends the same 100 reads through ``RedisCluster.pipeline()`` for comparison.
Results replace the "Redis Cluster" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]

import redis  # noqa: E402
from harness import machine, write_section  # noqa: E402
from tests.redis_cluster import start_cluster, stop_cluster  # noqa: E402

from aihub.stores.online.base import cache_key  # noqa: E402
from aihub.stores.online.redis import RedisOnlineStore  # noqa: E402
from aihub.stores.online.redis_clients import Connection  # noqa: E402

REDIS_URL = os.environ.get("AIHUB_BENCH_REDIS", "redis://127.0.0.1:6379/0")
DOC = b"x" * 420  # about the size of a forecast_basic answer


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--no-write", action="store_true", help="don't update RESULTS.md")
    args = ap.parse_args()
    header = machine()
    prefix = f"aihub-bench-{uuid.uuid4().hex[:10]}:"
    servers = start_cluster(Path(tempfile.mkdtemp(prefix="aihub-bench-cluster-")))
    single = RedisOnlineStore(REDIS_URL, prefix=prefix)
    cluster = RedisOnlineStore(None, cluster_nodes=servers.addresses, prefix=prefix)
    keys = [cache_key("bench", f"meter-{i:03d}") for i in range(100)]
    reads = [("HGET", prefix + k, "f") for k in keys]
    try:
        for store in (single, cluster):
            store.put_many([(k, DOC, g) for k, g in zip(keys, store.generations(keys),
                                                       strict=True)], "f", ttl=3600)
            assert store.get_many(keys, "f") == [DOC] * len(keys)

        def fill(store: RedisOnlineStore) -> None:
            store.put_many([(k, DOC, g) for k, g in zip(keys, store.generations(keys),
                                                       strict=True)], "g", ttl=3600)

        cases: dict[str, Callable[[], object]] = {
            "single: get_many, 1 asset": lambda: single.get_many(keys[:1], "f"),
            "cluster: get_many, 1 asset": lambda: cluster.get_many(keys[:1], "f"),
            "single: get_many, 100 assets": lambda: single.get_many(keys, "f"),
            "cluster: get_many, 100 assets": lambda: cluster.get_many(keys, "f"),
            "cluster: the same 100 reads through the cluster client's own pipeline":
                lambda: Connection._run(cluster._conn, reads),
            "single: generations + put_many, 100 assets": lambda: fill(single),
            "cluster: generations + put_many, 100 assets": lambda: fill(cluster),
            "single: invalidate, 100 assets": lambda: single.invalidate(keys, seq=1),
            "cluster: invalidate, 100 assets": lambda: cluster.invalidate(keys, seq=1),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, fn in cases.items():
                samples[name] += timed(fn, 100 if "1 asset" in name else 40)
    finally:
        single.close()
        cluster.close()
        stop_cluster(servers)
        r = redis.Redis.from_url(REDIS_URL)
        for key in list(r.scan_iter(match=f"{prefix}*", count=1000)):
            r.delete(key)
    p50 = {name: statistics.median(xs) * 1e3 for name, xs in samples.items()}
    lines = [
        f"Machine: {header}. Redis 7 on loopback: the shared server and a 3-master cluster "
        "started by the benchmark, both sharing the 2 cores with the client. Median of "
        f"{args.rounds} interleaved rounds per row.",
        "",
        "| measurement | p50 | cluster / single |",
        "|---|---|---|",
    ]
    for name, ms in p50.items():
        twin = name.replace("cluster:", "single:")
        ratio = f"{ms / p50[twin]:.2f}x" if name.startswith("cluster:") and twin in p50 else ""
        lines.append(f"| {name} | {ms:.3f} ms | {ratio} |")
    lines += [
        "",
        "Reading these numbers: on one server a batch of 100 assets is one Lua call; on a",
        "cluster the assets sit in ~100 slots, so it is 100 commands, sent as one pipeline per",
        "master over the cluster client's connections (the cluster client's own pipeline",
        "resolves each command's node through its command tables, hence the slower row).",
        "A single asset costs the same on both.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_redis_cluster.py` (needs redis-server and "
        "redis-cli on the PATH and Redis on loopback).",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Redis Cluster", text)


if __name__ == "__main__":
    main()
