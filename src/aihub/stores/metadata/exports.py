"""Export records in the SQL database (SQLite or PostgreSQL; one implementation).

Every method runs on the caller's connection: ``ExportService`` owns the transaction, so
a record and its owner are written together or not at all. Rows never leave this module;
callers get ``ExportRecord``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from aihub.stores.feature_tables import feature_exports

T = feature_exports


@dataclass(frozen=True, slots=True)
class ExportRecord:
    export_id: str
    tenant_id: str
    feature_set: str
    status: str  # running | completed | failed
    start_time: datetime
    end_time: datetime
    asset_ids: list[str] | None
    lookback_hours: int
    storage_path: str | None
    row_count: int | None
    file_size_bytes: int | None
    message: str | None
    created_at: datetime
    completed_at: datetime | None
    # A dataset export's parts: ``{"path", "rows", "bytes"}`` each, path relative to
    # ``storage_path`` (None for a single file).
    parts: list[dict[str, Any]] | None = None
    # origins, horizons and as_known of the request (None: today's rows and columns)
    options: dict[str, Any] | None = None

    def finished(self, **changes: Any) -> ExportRecord:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class RunningExport:
    record: ExportRecord
    owner: str | None  # host:pid:start of the process writing it


class ExportStore:
    def insert(self, conn: sa.Connection, record: ExportRecord, *, owner: str | None) -> None:
        """A new record, with the process that will write it."""
        conn.execute(T.insert().values(export_id=record.export_id, owner=owner,
                                       **_values(record)))

    def update(self, conn: sa.Connection, record: ExportRecord) -> None:
        """Store ``record``'s state (status, counts, path, message, times)."""
        conn.execute(T.update().where(T.c.export_id == record.export_id)
                     .values(**_values(record)))

    def get(self, conn: sa.Connection, export_id: str) -> ExportRecord | None:
        row = conn.execute(sa.select(T).where(T.c.export_id == export_id)).first()
        return _export(row) if row else None

    def list(
        self, conn: sa.Connection, tenant_id: str | None, *, limit: int, offset: int,
        tenant_in: Sequence[str] | None = None,
    ) -> tuple[builtins.list[ExportRecord], int]:
        """A page of records, newest first, and the total; ``tenant_in`` limits the listing
        to a key's tenants."""
        q = sa.select(T)
        count = sa.select(sa.func.count()).select_from(T)
        if tenant_id is not None:
            q = q.where(T.c.tenant_id == tenant_id)
            count = count.where(T.c.tenant_id == tenant_id)
        if tenant_in is not None:
            q = q.where(T.c.tenant_id.in_(tenant_in))
            count = count.where(T.c.tenant_id.in_(tenant_in))
        q = q.order_by(T.c.created_at.desc(), T.c.export_id)
        total = int(conn.execute(count).scalar_one())
        rows = conn.execute(q.limit(limit).offset(offset))
        return [_export(r) for r in rows], total

    def last(self, conn: sa.Connection, tenant_id: str) -> ExportRecord | None:
        records, _ = self.list(conn, tenant_id, limit=1, offset=0)
        return records[0] if records else None

    def running(self, conn: sa.Connection) -> builtins.list[RunningExport]:
        rows = conn.execute(sa.select(T).where(T.c.status == "running")).all()
        return [RunningExport(_export(r), r.owner) for r in rows]

    def fail_running(self, conn: sa.Connection, export_id: str, message: str,
                     at: datetime) -> bool:
        """``running`` -> ``failed``, unless it finished meanwhile; True if it changed."""
        done = conn.execute(T.update().where(T.c.export_id == export_id,
                                             T.c.status == "running")
                            .values(status="failed", message=message, completed_at=at))
        return bool(done.rowcount)


def _values(record: ExportRecord) -> dict[str, Any]:
    return {
        "tenant_id": record.tenant_id,
        "feature_set": record.feature_set,
        "status": record.status,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "asset_ids": record.asset_ids,
        "lookback_hours": record.lookback_hours,
        "storage_path": record.storage_path,
        "row_count": record.row_count,
        "file_size_bytes": record.file_size_bytes,
        "message": record.message,
        "created_at": record.created_at,
        "completed_at": record.completed_at,
        "parts": record.parts,
        "options": record.options,
    }


def _export(row: Any) -> ExportRecord:
    return ExportRecord(
        export_id=row.export_id,
        tenant_id=row.tenant_id,
        feature_set=row.feature_set,
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        asset_ids=row.asset_ids,
        lookback_hours=row.lookback_hours,
        storage_path=row.storage_path,
        row_count=row.row_count,
        file_size_bytes=row.file_size_bytes,
        message=row.message,
        created_at=row.created_at,
        completed_at=row.completed_at,
        parts=row.parts,
        options=row.options,
    )
