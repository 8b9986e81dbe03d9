"""Custom feature-set definitions in the SQL database (SQLite or PostgreSQL through
SQLAlchemy Core: one implementation serves both).

Every method runs on the caller's connection: the service owns the transaction.
"""

from __future__ import annotations

import builtins
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from aihub.errors import Conflict
from aihub.features.catalog import FeatureSet
from aihub.stores.feature_tables import feature_sets


class FeatureSetStore:
    def create(
        self, conn: sa.Connection, tenant_id: str, fs: FeatureSet, created_at: datetime
    ) -> None:
        try:
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

    def list(self, conn: sa.Connection, tenant_id: str) -> builtins.list[FeatureSet]:
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

    def get(self, conn: sa.Connection, tenant_id: str, name: str) -> FeatureSet | None:
        row = conn.execute(
            sa.select(feature_sets).where(
                feature_sets.c.tenant_id == tenant_id, feature_sets.c.name == name
            )
        ).first()
        if row is None:
            return None
        return FeatureSet(
            name=row.name,
            description=row.description,
            features=tuple(row.features),
            use_cases=tuple(row.use_cases),
        )
