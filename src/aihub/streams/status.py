"""What the running stream reports (``GET /ai/stream/status``).

Written without locks on the hot path: the network thread alone counts what arrives
(``received``, ``last_message_at``), the batch thread alone what was committed; what is
pending (and how old its oldest message is) is asked of the subscriber when a snapshot is
taken."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["StreamStatus"]

_RATE_WINDOW = 10.0  # seconds the message rate is averaged over


def _nothing_pending() -> tuple[int, float | None]:
    return 0, None


def _no_others() -> list[dict[str, Any]]:
    return []


_SUMMED = ("messages_received", "messages_committed", "pending", "batches", "reconnects",
           "dropped_qos0", "dead_letters")


@dataclass
class StreamStatus:
    broker: str = ""
    client_id: str = ""
    connected: bool = False
    subscriptions: list[str] = field(default_factory=list)
    received: int = 0
    committed: int = 0
    dead_letters: int = 0  # records ever written (the table's count at start, plus since)
    batches: int = 0
    reconnects: int = 0
    dropped_qos0: int = 0  # QoS 0 messages dropped while the inbox was full
    last_message_at: float | None = None
    last_commit_at: float | None = None
    last_error: str | None = None
    # (messages received and not yet acknowledged, receipt time of the oldest of them)
    pending: Callable[[], tuple[int, float | None]] = _nothing_pending
    # The latest snapshots of the other worker processes (``AIHUB_MQTT_PROCESSES``), added
    # to this one's.
    others: Callable[[], list[dict[str, Any]]] = _no_others
    _dead_at_start: int = -1
    _commits: deque[tuple[float, int]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._dead_at_start = self.dead_letters

    def committed_batch(self, messages: int, dead_letters: int) -> None:
        now = time.time()
        with self._lock:
            self.committed += messages
            self.dead_letters += dead_letters
            self.batches += 1
            self.last_commit_at = now
            self.last_error = None
            self._commits.append((now, messages))
            while self._commits and self._commits[0][0] < now - _RATE_WINDOW:
                self._commits.popleft()

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        pending, oldest = self.pending()
        with self._lock:
            recent = sum(n for t, n in self._commits if t >= now - _RATE_WINDOW)
            own = {
                "running": True,
                "broker": self.broker,
                "client_id": self.client_id,
                "connected": self.connected,
                "subscriptions": list(self.subscriptions),
                "messages_received": self.received,
                "messages_committed": self.committed,
                "messages_per_second": round(recent / _RATE_WINDOW, 1),
                "pending": pending,
                "lag_seconds": 0.0 if oldest is None else round(max(0.0, now - oldest), 3),
                "last_message_at": _iso(self.last_message_at),
                "last_commit_at": _iso(self.last_commit_at),
                "batches": self.batches,
                "reconnects": self.reconnects,
                "dropped_qos0": self.dropped_qos0,
                "dead_letters": self.dead_letters,
                "dead_letters_written": self.dead_letters - self._dead_at_start,
                "last_error": self.last_error,
                "processes": 1,
            }
        return _merged(own, self.others())


def _merged(own: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """One status of several workers: counts added up (dead letters: the table's count at
    this worker's start plus what each wrote), the oldest lag, connected only if all
    are, the latest times."""
    if not others:
        return own
    out = dict(own)
    for o in others:
        for key in _SUMMED:
            out[key] += o["dead_letters_written"] if key == "dead_letters" else o[key]
        out["messages_per_second"] = round(out["messages_per_second"]
                                           + o["messages_per_second"], 1)
        out["lag_seconds"] = max(out["lag_seconds"], o["lag_seconds"])
        out["connected"] = out["connected"] and o["connected"]
        for key in ("last_message_at", "last_commit_at"):  # ISO 8601 UTC: sortable
            out[key] = max((t for t in (out[key], o[key]) if t), default=None)
        out["last_error"] = out["last_error"] or o["last_error"]
    out["processes"] = 1 + len(others)
    return out


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
