"""Prometheus metrics of one aihub process, served at ``GET /metrics``.

Counters live at module level because prometheus-client's registry is process-global;
services record through the small functions below so nothing else imports the client.
With several workers (``aihub serve --workers N``) ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, and a scrape
of any worker aggregates all of them.

    aihub_http_requests_total{method,route,status}
    aihub_http_request_duration_seconds{method,route}        histogram
    aihub_online_cache_lookups_total{result="hit"|"miss"}   hit ratio = hit / (hit + miss)
    aihub_ingest_rows_total{kind="readings"|"weather"}
    aihub_export_duration_seconds{status}                    histogram
    aihub_export_rows_total
    aihub_model_cache_lookups_total{result="hit"|"miss"}    (the registry's model cache)
    aihub_stream_messages_total{result="stored"|"dead_letter"}  MQTT messages committed
    aihub_stream_dead_letters_total                          dead-letter records written
    aihub_stream_batch_duration_seconds                      histogram, one per micro-batch
    aihub_stream_reconnects_total                            broker connections made again
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)

REQUESTS = Counter("aihub_http_requests", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram(
    "aihub_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
CACHE_LOOKUPS = Counter("aihub_online_cache_lookups", "Online feature cache lookups", ["result"])
INGEST_ROWS = Counter("aihub_ingest_rows", "Rows stored by ingest", ["kind"])
EXPORT_DURATION = Histogram(
    "aihub_export_duration_seconds",
    "Feature export duration",
    ["status"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)
EXPORT_ROWS = Counter("aihub_export_rows", "Rows written by feature exports")
MODEL_CACHE_LOOKUPS = Counter("aihub_model_cache_lookups", "Loaded-model cache lookups", ["result"])
STALE_DROPS = Counter(
    "aihub_online_cache_stale_drops",
    "Online cache entries dropped for writes the cache never heard of (change feed)",
)
STREAM_MESSAGES = Counter("aihub_stream_messages", "MQTT messages committed", ["result"])
STREAM_DEAD_LETTERS = Counter("aihub_stream_dead_letters", "Stream dead-letter records written")
STREAM_BATCH = Histogram(
    "aihub_stream_batch_duration_seconds",
    "Stream micro-batch commit duration",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STREAM_RECONNECTS = Counter("aihub_stream_reconnects", "MQTT broker connections made again")


# Resolved once: looking a labelled child up costs more than the increment (hot path).
_CACHE_HIT = CACHE_LOOKUPS.labels("hit")
_CACHE_MISS = CACHE_LOOKUPS.labels("miss")


def record_cache_lookups(cached: Sequence[object | None]) -> None:
    hits = sum(1 for v in cached if v is not None)
    if hits:
        _CACHE_HIT.inc(hits)
    if len(cached) - hits:
        _CACHE_MISS.inc(len(cached) - hits)


def record_stale_drops(entries: int) -> None:
    STALE_DROPS.inc(entries)


def record_ingest(kind: str, rows: int) -> None:
    INGEST_ROWS.labels(kind).inc(rows)


def record_stream_batch(seconds: float, *, stored: int, dead: int) -> None:
    STREAM_BATCH.observe(seconds)
    if stored:
        STREAM_MESSAGES.labels("stored").inc(stored)
    if dead:
        STREAM_MESSAGES.labels("dead_letter").inc(dead)


def record_dead_letters(records: int) -> None:
    STREAM_DEAD_LETTERS.inc(records)


def record_stream_reconnect() -> None:
    STREAM_RECONNECTS.inc()


def record_export(status: str, seconds: float, rows: int = 0) -> None:
    EXPORT_DURATION.labels(status).observe(seconds)
    if rows:
        EXPORT_ROWS.inc(rows)


def model_cache_hit() -> None:
    MODEL_CACHE_LOOKUPS.labels("hit").inc()


def model_cache_miss() -> None:
    MODEL_CACHE_LOOKUPS.labels("miss").inc()


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


# Any other method a client sends is counted as "OTHER": labels stay bounded.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task or body copy): counts and times each
    request under its route template (``/ai/models/{model_id}``), never the raw path, and
    its method (``OTHER`` for any but the standard ones), so label cardinality stays
    bounded whatever clients send."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._cache: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            if method not in _METHODS:
                method = "OTHER"
            counter, histogram = self._children(method, template, status[0])
            counter.inc()
            histogram.observe(time.perf_counter() - start)

    def _children(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        """Labelled metric children, looked up once per (method, route, status): resolving
        labels on every request costs more than the observation itself."""
        key = (method, template, status)
        found = self._cache.get(key)
        if found is None:
            found = (
                REQUESTS.labels(method, template, str(status)),
                LATENCY.labels(method, template),
            )
            self._cache[key] = found
        return found
