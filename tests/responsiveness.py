"""Probing that the event loop stays free: ``/health`` and a hot cached online ``get``
timed one request at a time while some backend is stalled, cut or exhausted.

A blocked loop holds every request for as long as the blocking call lasts (a pool timeout,
a connect timeout: a second or more in these tests), so the bounds below can't be met by a
server whose loop waits on the database, yet leave room for a loaded machine. The servers
run in the test's own process, so the garbage collector is held off while probing: a full
collection of a long test session's heap stops every thread, the loop's included, for as
long as a blocked loop would."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

HEALTH_P90_S = 0.05  # /health answers within 50 ms
HOT_MAX_S = 0.5  # a hot get never waits anywhere near a pool or connect timeout


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
    p90 = health[int(len(health) * 0.9) - 1]
    assert p90 < HEALTH_P90_S, f"/health p90 {p90 * 1000:.1f} ms: the event loop was held"
    assert health[-1] < HOT_MAX_S, f"/health took {health[-1]:.2f} s: the event loop was held"
    assert p.hot_status == [200] * len(p.hot_status), p.hot_status
    assert max(p.hot) < HOT_MAX_S, f"a hot get took {max(p.hot):.2f} s"
