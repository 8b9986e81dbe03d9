"""Dead letters: what the stream received and could not store (or flagged), kept so an
operator can see it (``GET /ai/stream/dead-letters``) while the stream goes on, for
``AIHUB_DEAD_LETTER_DAYS`` (default 30): ``DeadLetterPurger`` deletes older ones in the
background of every process that serves the API or runs a stream."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from aihub.auth.scope import check_tenant
from aihub.config import Settings
from aihub.db import write_transaction
from aihub.metrics import record_dead_letters
from aihub.names import check_name
from aihub.services.background import PeriodicTask
from aihub.streams.tables import dead_letters
from aihub.timeutil import utcnow

__all__ = ["PAYLOAD_CHARS", "DeadLetter", "DeadLetterPurger", "DeadLetterService",
           "DeadLetterStore"]

log = logging.getLogger("aihub.streams.dead_letters")

PAYLOAD_CHARS = 2048  # of a payload kept with its dead letter
TOPIC_CHARS = 1024
REASON_CHARS = 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    tenant_id: str | None
    topic: str
    payload: str
    reason: str
    received_at: datetime

    @classmethod
    def of(cls, tenant_id: str | None, topic: str, payload: bytes, reason: str,
           received_at: datetime) -> DeadLetter:
        """A record with the payload truncated and decoded leniently (bytes that are not
        UTF-8 become U+FFFD)."""
        text = payload[: PAYLOAD_CHARS * 4].decode("utf-8", "replace")
        if len(text) > PAYLOAD_CHARS:
            text = text[:PAYLOAD_CHARS] + "..."
        return cls(tenant_id, topic[:TOPIC_CHARS], text, reason[:REASON_CHARS], received_at)


class DeadLetterStore:
    """Rows of ``stream_dead_letters`` on the caller's connection."""

    def insert(self, conn: sa.Connection, letters: list[DeadLetter]) -> None:
        if letters:
            conn.execute(dead_letters.insert(), [
                {"tenant_id": d.tenant_id, "topic": d.topic, "payload": d.payload,
                 "reason": d.reason, "received_at": d.received_at} for d in letters])

    def page(self, conn: sa.Connection, tenant_id: str, *, limit: int,
             offset: int) -> tuple[list[DeadLetter], int]:
        where = dead_letters.c.tenant_id == tenant_id
        total = conn.execute(sa.select(sa.func.count()).select_from(dead_letters)
                             .where(where)).scalar_one()
        rows = conn.execute(sa.select(dead_letters).where(where)
                            .order_by(dead_letters.c.id.desc()).limit(limit).offset(offset))
        return [DeadLetter(r.tenant_id, r.topic, r.payload, r.reason, r.received_at)
                for r in rows], int(total)

    def count(self, conn: sa.Connection) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(dead_letters))
                   .scalar_one())

    def purge(self, conn: sa.Connection, cutoff: datetime) -> int:
        """Delete the dead letters received before ``cutoff``; how many went."""
        result = conn.execute(dead_letters.delete().where(dead_letters.c.received_at < cutoff))
        return int(result.rowcount or 0)


class DeadLetterService:
    """Reads for the API; writes happen in the stream writer's transaction."""

    def __init__(self, engine: sa.Engine, store: DeadLetterStore | None = None) -> None:
        self.engine = engine
        self.store = store or DeadLetterStore()

    def page(self, tenant_id: str, *, limit: int, offset: int) -> tuple[list[DeadLetter], int]:
        """A tenant's dead letters, newest first, and how many there are."""
        check_tenant(check_name(tenant_id, "tenant_id"))
        with self.engine.connect() as conn:
            return self.store.page(conn, tenant_id, limit=limit, offset=offset)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return self.store.count(conn)

    def purge(self, days: int, now: datetime | None = None) -> int:
        """Delete every tenant's dead letters received more than ``days`` days before
        ``now``; how many went."""
        if days < 1:
            raise ValueError("dead letters are kept at least one day")
        cutoff = (now or utcnow()) - timedelta(days=days)
        with write_transaction(self.engine) as conn:
            return self.store.purge(conn, cutoff)


class DeadLetterPurger(PeriodicTask):
    """Applies ``AIHUB_DEAD_LETTER_DAYS`` in the background (default every hour)."""

    name = "aihub-dead-letter-purge"

    def __init__(self, service: DeadLetterService, days: int, interval: float) -> None:
        super().__init__(interval, first_delay=min(interval, 60.0))
        self.service = service
        self.days = days

    @classmethod
    def configured(cls, engine: sa.Engine, settings: Settings) -> DeadLetterPurger | None:
        """The purger ``AIHUB_DEAD_LETTER_DAYS`` / ``_PURGE_INTERVAL`` ask for (None: off)."""
        if settings.dead_letter_purge_interval <= 0:
            return None
        return cls(DeadLetterService(engine), settings.dead_letter_days,
                   settings.dead_letter_purge_interval)

    def run_once(self) -> None:
        n = self.service.purge(self.days)
        if n:
            log.info("purged %d dead letters older than %d days", n, self.days)


def recorded(letters: list[DeadLetter]) -> None:
    """Count committed dead letters in the metrics."""
    if letters:
        record_dead_letters(len(letters))
