"""Small helpers shared by the benchmarks: servers as subprocesses, latency loops, RSS
sampling and writing a section of RESULTS.md."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
AIHUB = str(Path(sys.executable).parent / "aihub")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str = "/health", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not come up")


@contextmanager
def process(
    args: list[str],
    env: dict[str, str],
    port: int,
    ready_path: str = "/health",
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server until the block ends; ready once ``ready_path`` answers. Its output is
    discarded (a pipe nobody reads would block a chatty server)."""
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(port, ready_path, timeout=timeout)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


class RawClient:
    """A minimal keep-alive HTTP/1.1 client over one socket: pre-built request bytes and
    Content-Length framing, so the client adds as little as possible to what is timed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def post(
        self, path: str, body: bytes, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        header, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        length = 0
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self._recv()
        self.buf = rest[length:]
        return status, rest[:length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def latencies(
    port: int, path: str, body: bytes | Callable[[int], bytes], n: int, warmup: int = 200
) -> list[float]:
    """Seconds per request over one keep-alive connection."""
    client = RawClient(port)
    out: list[float] = []
    for i in range(-warmup, n):
        payload = body(i) if callable(body) else body
        t = time.perf_counter()
        status, data = client.post(path, payload)
        dt = time.perf_counter() - t
        if status != 200:
            raise RuntimeError(f"{path}: {status} {data[:300]!r}")
        if i >= 0:
            out.append(dt)
    client.close()
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50_ms": q[49] * 1e3,
        "p99_ms": q[98] * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
        "rps": len(ordered) / sum(ordered),
    }


class PeakRss:
    """Samples a process's RSS every 10 ms; ``peak`` and ``growth`` in bytes."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def write_section(heading: str, body: str) -> None:
    """Replace (or append) the ``## heading`` section of RESULTS.md."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(section + "\n", text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + section)
    )
    RESULTS.write_text(text)


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"load average at start {load[0]:.2f}, Python {sys.version.split()[0]}"
    )


def post_json(
    port: int, path: str, payload: dict[str, object], timeout: float = 600
) -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, json.dumps(payload), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    if resp.status != 200:
        raise RuntimeError(f"{path}: {resp.status} {data}")
    return data  # type: ignore[no-any-return]


# -- scratch stores for benchmark workers (aihub imported late: a worker runs whichever
# aihub is on its PYTHONPATH) ---------------------------------------------------------------

PG_ADMIN = os.environ.get("AIHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def scratch_settings(backend: str, data_dir: Path, prefix: str) -> tuple[object, str | None]:
    """Settings of a store of its own under ``data_dir``: the embedded default for
    ``"sqlite"``, otherwise a new PostgreSQL database named ``prefix`` + a random suffix
    (returned, for :func:`drop_scratch_database`)."""
    import uuid

    from aihub.config import Settings

    if backend == "sqlite":
        return Settings(AIHUB_DATA_DIR=data_dir, EXPORT_STORAGE_PATH=str(data_dir / "x")), None
    import psycopg

    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(
        AIHUB_DATA_DIR=data_dir, DATABASE_URL=url, EXPORT_STORAGE_PATH=str(data_dir / "x")
    )
    return settings, name


def drop_scratch_database(name: str | None) -> None:
    """Drops a database made by :func:`scratch_settings` (nothing for the embedded one)."""
    if name:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
