"""Probing that the event loop stays free: ``/health`` and a hot cached online ``get``
timed one request at a time while some backend is stalled, cut or exhausted.

A blocked loop holds every request for as long as the blocking call lasts (a pool timeout
of 3 s in these tests), so the bounds below can't be met by a server whose loop waits on the
database, yet leave room for a loaded machine: the median /health within 50 ms, none over
a second (a stray sample can wait for a CPU on a busy 2-core machine; none waits seconds).
The servers run in the test's own process, so the garbage collector is held off while
probing: a full collection of a long test session's heap stops every thread, the loop's
included."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

HEALTH_P50_S = 0.05  # /health answers within 50 ms
MAX_S = 1.0  # nothing waits anywhere near a pool timeout


@dataclass
class Probe:
    health: list[float] = field(default_factory=list)
    hot: list[float] = field(default_factory=list)
    hot_status: list[int] = field(default_factory=list)


def probe(url: str, hot_body: dict[str, Any], *, samples: int = 20,
          headers: dict[str, str] | None = None) -> Probe:
    out = Probe()
    gc.collect()
    gc.disable()
    try:
        with httpx.Client(base_url=url, timeout=30, headers=headers or {}) as http:
            for _ in range(samples):
                t = time.perf_counter()
                assert http.get("/health").status_code == 200
                out.health.append(time.perf_counter() - t)
                t = time.perf_counter()
                out.hot_status.append(http.post("/ai/features/get", json=hot_body).status_code)
                out.hot.append(time.perf_counter() - t)
    finally:
        gc.enable()
    return out


def assert_responsive(p: Probe) -> None:
    health = sorted(p.health)
    p50 = health[len(health) // 2]
    assert p50 < HEALTH_P50_S, f"/health p50 {p50 * 1000:.1f} ms: the event loop was held"
    assert health[-1] < MAX_S, f"/health took {health[-1]:.2f} s: the event loop was held"
    assert p.hot_status == [200] * len(p.hot_status), p.hot_status
    assert max(p.hot) < MAX_S, f"a hot get took {max(p.hot):.2f} s: the event loop was held"
