"""What the running stream reports (``GET /ai/stream/status``): updated by the
subscriber's threads, read by the API."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["StreamStatus"]

_RATE_WINDOW = 10.0  # seconds the message rate is averaged over


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
    last_message_at: float | None = None
    last_commit_at: float | None = None
    last_error: str | None = None
    _pending_since: float | None = None  # receipt time of the oldest unacknowledged message
    _pending: int = 0
    _commits: deque[tuple[float, int]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def received_one(self, at: float) -> None:
        with self._lock:
            self.received += 1
            self.last_message_at = at
            self._pending += 1
            if self._pending_since is None:
                self._pending_since = at

    def committed_batch(self, messages: int, dead_letters: int,
                        oldest_left: float | None, left: int) -> None:
        now = time.time()
        with self._lock:
            self.committed += messages
            self.dead_letters += dead_letters
            self.batches += 1
            self.last_commit_at = now
            self.last_error = None
            self._pending = left
            self._pending_since = oldest_left
            self._commits.append((now, messages))
            while self._commits and self._commits[0][0] < now - _RATE_WINDOW:
                self._commits.popleft()

    def dropped_pending(self) -> None:
        """Messages received on a lost connection: the broker delivers them again."""
        with self._lock:
            self._pending = 0
            self._pending_since = None

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            recent = sum(n for t, n in self._commits if t >= now - _RATE_WINDOW)
            lag = 0.0 if self._pending_since is None else max(0.0, now - self._pending_since)
            return {
                "running": True,
                "broker": self.broker,
                "client_id": self.client_id,
                "connected": self.connected,
                "subscriptions": list(self.subscriptions),
                "messages_received": self.received,
                "messages_committed": self.committed,
                "messages_per_second": round(recent / _RATE_WINDOW, 1),
                "pending": self._pending,
                "lag_seconds": round(lag, 3),
                "last_message_at": _iso(self.last_message_at),
                "last_commit_at": _iso(self.last_commit_at),
                "batches": self.batches,
                "reconnects": self.reconnects,
                "dead_letters": self.dead_letters,
                "last_error": self.last_error,
            }


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
