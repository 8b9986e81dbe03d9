"""Model versions and stage transitions in the SQL database (SQLAlchemy Core; one
implementation for SQLite and PostgreSQL).

Every method takes the caller's connection: the registry service owns the transaction
boundary (promote must read, archive and update inside one locked transaction).
Rows never leave this module; callers get ``ModelVersion`` and ``Transition`` dataclasses.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from aihub.errors import Conflict
from aihub.stores.model_tables import model_transitions, model_versions

T = model_versions


@dataclass(frozen=True, slots=True)
class ModelVersion:
    id: int
    tenant_id: str
    model_name: str
    version: str
    stage: str
    model_type: str | None
    framework: str | None
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    artifact_key: str | None
    artifact_size: int | None
    artifact_sha256: str | None
    artifact_format: str | None
    registered_at: datetime
    artifact_uploaded_at: datetime | None
    stage_changed_at: datetime
    first_production_at: datetime | None

    @property
    def model_id(self) -> str:
        return f"{self.tenant_id}:{self.model_name}:{self.version}"

    @property
    def feature_names(self) -> list[str] | None:
        names = self.metadata.get("feature_names")
        return [str(n) for n in names] if isinstance(names, list) else None


@dataclass(frozen=True, slots=True)
class NewVersion:
    tenant_id: str
    model_name: str
    version: str
    version_order: bytes
    stage: str
    model_type: str | None
    framework: str | None
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    registered_at: datetime
    artifact_key: str | None = None
    artifact_size: int | None = None
    artifact_sha256: str | None = None
    artifact_format: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    from_stage: str | None
    to_stage: str
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class VersionFilter:
    tenant_id: str | None = None
    model_name: str | None = None
    stage: str | None = None
    tenant_in: tuple[str, ...] | None = None  # a key's tenants, when it isn't one


class ModelMetadataStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def insert(self, conn: sa.Connection, new: NewVersion) -> int:
        """Insert a version; a duplicate ``(tenant, name, version)`` is a ``Conflict``."""
        values = {
            "tenant_id": new.tenant_id,
            "model_name": new.model_name,
            "version": new.version,
            "version_order": new.version_order,
            "stage": new.stage,
            "model_type": new.model_type,
            "framework": new.framework,
            "meta": orjson.dumps(new.metadata).decode(),
            "metrics": orjson.dumps(new.metrics).decode(),
            "artifact_key": new.artifact_key,
            "artifact_size": new.artifact_size,
            "artifact_sha256": new.artifact_sha256,
            "artifact_format": new.artifact_format,
            "registered_at": new.registered_at,
            "artifact_uploaded_at": new.registered_at if new.artifact_key else None,
            "stage_changed_at": new.registered_at,
            "first_production_at": new.registered_at if new.stage == "production" else None,
        }
        try:
            with conn.begin_nested():
                key = conn.execute(T.insert().values(**values)).inserted_primary_key
                assert key is not None
                return int(key[0])
        except IntegrityError as exc:
            raise Conflict(
                f"model '{new.tenant_id}:{new.model_name}:{new.version}' is already registered"
            ) from exc

    def get(
        self, conn: sa.Connection, tenant_id: str, model_name: str, version: str, *,
        for_update: bool = False,
    ) -> ModelVersion | None:
        q = sa.select(T).where(
            T.c.tenant_id == tenant_id, T.c.model_name == model_name, T.c.version == version
        )
        if for_update:
            q = q.with_for_update()
        row = conn.execute(q).first()
        return _version(row) if row else None

    def in_stage(
        self, conn: sa.Connection, tenant_id: str, model_name: str, stage: str, *,
        for_update: bool = False,
    ) -> ModelVersion | None:
        """The newest version (by semver) of a model in ``stage``."""
        q = (
            sa.select(T)
            .where(T.c.tenant_id == tenant_id, T.c.model_name == model_name, T.c.stage == stage)
            .order_by(T.c.version_order.desc())
            .limit(1)
        )
        if for_update:
            q = q.with_for_update()
        row = conn.execute(q).first()
        return _version(row) if row else None

    def list(
        self, conn: sa.Connection, flt: VersionFilter, *, limit: int, offset: int
    ) -> tuple[list[ModelVersion], int]:
        """Newest version first by semver within a model; models by tenant and name."""
        conds = []
        if flt.tenant_id is not None:
            conds.append(T.c.tenant_id == flt.tenant_id)
        if flt.tenant_in is not None:
            conds.append(T.c.tenant_id.in_(flt.tenant_in))
        if flt.model_name is not None:
            conds.append(T.c.model_name == flt.model_name)
        if flt.stage is not None:
            conds.append(T.c.stage == flt.stage)
        total = conn.execute(sa.select(sa.func.count()).select_from(T).where(*conds)).scalar_one()
        rows = conn.execute(
            sa.select(T)
            .where(*conds)
            .order_by(T.c.tenant_id, T.c.model_name, T.c.version_order.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_version(r) for r in rows], int(total)

    def set_stage(
        self, conn: sa.Connection, version: ModelVersion, stage: str, at: datetime
    ) -> ModelVersion:
        """Move ``version`` to ``stage``; returns it as it now is in the database."""
        values: dict[str, Any] = {"stage": stage, "stage_changed_at": at}
        if stage == "production" and version.first_production_at is None:
            values["first_production_at"] = at
        conn.execute(T.update().where(T.c.id == version.id).values(**values))
        return replace(version, **values)

    def attach_artifact(
        self, conn: sa.Connection, version_id: int, *, key: str, size: int, sha256: str,
        fmt: str, at: datetime,
    ) -> bool:
        """Point the version at an uploaded object, only if it has none yet."""
        result = conn.execute(
            T.update()
            .where(T.c.id == version_id, T.c.artifact_key.is_(None))
            .values(artifact_key=key, artifact_size=size, artifact_sha256=sha256,
                    artifact_format=fmt, artifact_uploaded_at=at)
        )
        return result.rowcount == 1

    def add_transition(
        self, conn: sa.Connection, version_id: int, from_stage: str | None, to_stage: str,
        reason: str | None, at: datetime,
    ) -> None:
        conn.execute(
            model_transitions.insert().values(
                version_id=version_id, from_stage=from_stage, to_stage=to_stage, reason=reason,
                at=at,
            )
        )

    def history(self, conn: sa.Connection, version_id: int) -> builtins.list[Transition]:
        rows = conn.execute(
            sa.select(model_transitions)
            .where(model_transitions.c.version_id == version_id)
            .order_by(model_transitions.c.id)
        )
        return [Transition(r.from_stage, r.to_stage, r.reason, r.at) for r in rows]

    def delete(self, conn: sa.Connection, version_id: int) -> None:
        conn.execute(model_transitions.delete().where(model_transitions.c.version_id == version_id))
        conn.execute(T.delete().where(T.c.id == version_id))

    def referenced_keys(self, conn: sa.Connection, keys: Sequence[str]) -> set[str]:
        """The artifact keys among ``keys`` that some version's row points at."""
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = list(keys[i:i + 500])
            rows = conn.execute(sa.select(T.c.artifact_key).where(T.c.artifact_key.in_(chunk)))
            found.update(r[0] for r in rows)
        return found


def _version(row: Any) -> ModelVersion:
    # Positional unpacking (the table's column order): several times faster than named
    # attribute access on a Row, which matters for a page of 100 versions.
    (id_, tenant_id, model_name, version, _order, stage, model_type, framework, meta,
     metrics, key, size, sha256, fmt, registered_at, uploaded_at, stage_changed_at,
     first_production_at) = row
    return ModelVersion(
        id_, tenant_id, model_name, version, stage, model_type, framework,
        orjson.loads(meta), orjson.loads(metrics), key, size, sha256, fmt, registered_at,
        uploaded_at, stage_changed_at, first_production_at,
    )
