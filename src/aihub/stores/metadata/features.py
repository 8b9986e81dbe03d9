"""Feature-set definitions and export records, kept in the SQL database (SQLite or
PostgreSQL through SQLAlchemy Core: one implementation serves both)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from aihub.errors import Conflict
from aihub.features.catalog import FeatureSet
from aihub.stores.feature_tables import feature_exports, feature_sets


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

    def finished(self, **changes: Any) -> ExportRecord:
        return replace(self, **changes)


class FeatureMetadataStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- feature sets ---------------------------------------------------------------------
    def create_feature_set(self, tenant_id: str, fs: FeatureSet, created_at: datetime) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    feature_sets.insert().values(
                        tenant_id=tenant_id,
                        name=fs.name,
                        description=fs.description,
                        features=list(fs.features),
                        use_cases=list(fs.use_cases),
                        created_at=created_at,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(
                f"feature set '{fs.name}' already exists for tenant '{tenant_id}'"
            ) from exc

    def feature_sets(self, tenant_id: str) -> list[FeatureSet]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(feature_sets)
                .where(feature_sets.c.tenant_id == tenant_id)
                .order_by(feature_sets.c.name)
            )
            return [
                FeatureSet(
                    name=r.name,
                    description=r.description,
                    features=tuple(r.features),
                    use_cases=tuple(r.use_cases),
                )
                for r in rows
            ]

    def feature_set(self, tenant_id: str, name: str) -> FeatureSet | None:
        return next((fs for fs in self.feature_sets(tenant_id) if fs.name == name), None)

    # -- exports --------------------------------------------------------------------------
    def save_export(self, record: ExportRecord) -> None:
        values = {
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
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                feature_exports.update()
                .where(feature_exports.c.export_id == record.export_id)
                .values(**values)
            ).rowcount
            if not updated:
                conn.execute(feature_exports.insert().values(export_id=record.export_id, **values))

    def get_export(self, export_id: str) -> ExportRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(feature_exports).where(feature_exports.c.export_id == export_id)
            ).first()
            return _export(row) if row else None

    def list_exports(
        self, tenant_id: str | None, *, limit: int, offset: int,
        tenant_in: Sequence[str] | None = None,
    ) -> tuple[list[ExportRecord], int]:
        q = sa.select(feature_exports)
        count = sa.select(sa.func.count()).select_from(feature_exports)
        if tenant_id is not None:
            q = q.where(feature_exports.c.tenant_id == tenant_id)
            count = count.where(feature_exports.c.tenant_id == tenant_id)
        if tenant_in is not None:  # a key's tenants
            q = q.where(feature_exports.c.tenant_id.in_(tenant_in))
            count = count.where(feature_exports.c.tenant_id.in_(tenant_in))
        q = q.order_by(feature_exports.c.created_at.desc(), feature_exports.c.export_id)
        with self.engine.connect() as conn:
            total = int(conn.execute(count).scalar_one())
            rows = conn.execute(q.limit(limit).offset(offset))
            return [_export(r) for r in rows], total

    def set_export_owner(self, export_id: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(feature_exports.update()
                         .where(feature_exports.c.export_id == export_id).values(owner=owner))

    def running_exports(self) -> list[tuple[ExportRecord, str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(feature_exports)
                                .where(feature_exports.c.status == "running")).all()
        return [(_export(r), r.owner) for r in rows]

    def fail_running_export(self, export_id: str, message: str, at: datetime) -> None:
        """``running`` -> ``failed``, unless it finished meanwhile."""
        with self.engine.begin() as conn:
            conn.execute(feature_exports.update().where(
                feature_exports.c.export_id == export_id, feature_exports.c.status == "running"
            ).values(status="failed", message=message, completed_at=at))

    def last_export(self, tenant_id: str) -> ExportRecord | None:
        records, _ = self.list_exports(tenant_id, limit=1, offset=0)
        return records[0] if records else None


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
    )
