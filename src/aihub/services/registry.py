"""The model registry's use cases: register, look up, list, promote, delete, history.

This service owns every transaction. Promotion runs in one write transaction that locks
the version and the model's current production row (``BEGIN IMMEDIATE`` on SQLite,
``SELECT ... FOR UPDATE`` on PostgreSQL), so racing promotions serialise and a partial
unique index backs the rule "at most one production version" in the database itself.
Artifacts (``services.model_artifacts``) are uploaded before a row points at them.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from aihub.auth.scope import check_tenant, visible_tenants
from aihub.db import write_transaction
from aihub.errors import Conflict, InvalidInput, NotFound
from aihub.jsonlimits import check_json
from aihub.names import check_name
from aihub.services.lifecycle import (
    REGISTER_STAGES,
    ModelRef,
    check_stage,
    check_transition,
    deletable_without_force,
    parse_model_id,
)
from aihub.stores.metadata.models import (
    ModelMetadataStore,
    ModelVersion,
    NewVersion,
    Transition,
    VersionFilter,
)
from aihub.timeutil import utcnow
from aihub.versions import parse_version


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    tenant_id: str
    model_name: str
    version: str
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    stage: str = "staging"


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    key: str
    size: int
    sha256: str
    format: str


@dataclass(frozen=True, slots=True)
class Promotion:
    version: ModelVersion
    previous_stage: str
    archived: ModelVersion | None  # the production version this promotion replaced
    at: datetime


class RegistryService:
    def __init__(self, *, engine: sa.Engine, store: ModelMetadataStore) -> None:
        self.engine = engine
        self.store = store
        # Called with a digest when a version is deleted (the model cache drops it).
        self.on_delete: list[Callable[[ModelVersion], None]] = []

    # -- lookup ---------------------------------------------------------------------------
    def get(self, model_id: str) -> ModelVersion:
        ref = parse_model_id(model_id)
        with self.engine.connect() as conn:
            return self._resolve(conn, ref)

    def _resolve(self, conn: sa.Connection, ref: ModelRef, *, for_update: bool = False
                 ) -> ModelVersion:
        if ref.alias is not None:
            found = self.store.in_stage(conn, ref.tenant_id, ref.model_name, ref.alias,
                                        for_update=for_update)
            if found is None:
                raise NotFound(f"model '{ref.tenant_id}:{ref.model_name}' has no {ref.alias} "
                               "version")
            return found
        assert ref.version is not None
        found = self.store.get(conn, ref.tenant_id, ref.model_name, ref.version,
                               for_update=for_update)
        if found is None:
            raise NotFound(f"model '{ref.text}' not found")
        return found

    def list(self, flt: VersionFilter, *, limit: int, offset: int
             ) -> tuple[list[ModelVersion], int]:
        if flt.tenant_id is not None:
            check_name(flt.tenant_id, "tenant_id")
            check_tenant(flt.tenant_id)
        elif (visible := visible_tenants()) is not None:
            flt = dataclasses.replace(flt, tenant_in=visible)
        if flt.model_name is not None:
            check_name(flt.model_name, "model_name")
        if flt.stage is not None:
            check_stage(flt.stage)
        with self.engine.connect() as conn:
            return self.store.list(conn, flt, limit=limit, offset=offset)

    def referenced_artifacts(self, keys: builtins.list[str]) -> set[str]:
        """The artifact keys among ``keys`` that a version still points at."""
        with self.engine.connect() as conn:
            return self.store.referenced_keys(conn, keys)

    def history(self, model_id: str) -> tuple[ModelVersion, builtins.list[Transition]]:
        ref = parse_model_id(model_id)
        with self.engine.connect() as conn:
            version = self._resolve(conn, ref)
            return version, self.store.history(conn, version.id)

    # -- register -------------------------------------------------------------------------
    def validate(self, req: RegisterRequest) -> bytes:
        """Check a registration before anything is stored; returns the version order."""
        check_name(req.tenant_id, "tenant_id")
        check_name(req.model_name, "model_name")
        check_json(req.metadata, "metadata")
        check_json(req.metrics, "metrics")
        order = parse_version(req.version).order
        if req.stage not in REGISTER_STAGES:
            raise InvalidInput(
                f"stage: a new version starts in {' or '.join(REGISTER_STAGES)}, "
                f"not {req.stage!r:.40}"
            )
        return order

    def register(self, req: RegisterRequest, artifact: ArtifactInfo | None = None
                 ) -> ModelVersion:
        """Insert the version (with an already-uploaded artifact, if any). Registering
        straight into production needs the artifact and archives the current one."""
        order = self.validate(req)
        if req.stage == "production" and artifact is None:
            raise Conflict("a version can't reach production without an artifact; "
                           "register it with one or upload it first")
        meta = req.metadata or {}
        now = utcnow()
        new = NewVersion(
            tenant_id=req.tenant_id, model_name=req.model_name, version=req.version,
            version_order=order, stage=req.stage,
            model_type=_text(meta.get("model_type")), framework=_text(meta.get("framework")),
            metadata={**meta, "registered_at": now.isoformat().replace("+00:00", "Z")},
            metrics=req.metrics or {}, registered_at=now,
            artifact_key=artifact.key if artifact else None,
            artifact_size=artifact.size if artifact else None,
            artifact_sha256=artifact.sha256 if artifact else None,
            artifact_format=artifact.format if artifact else None,
        )
        with write_transaction(self.engine) as conn:
            if req.stage == "production":
                self._archive_production(conn, req.tenant_id, req.model_name, now,
                                         f"replaced by {req.version} at registration")
            version_id = self.store.insert(conn, new)
            self.store.add_transition(conn, version_id, None, req.stage, "registered", now)
            row = self.store.get(conn, req.tenant_id, req.model_name, req.version)
        assert row is not None
        return row

    # -- lifecycle ------------------------------------------------------------------------
    def promote(self, model_id: str, target_stage: str, reason: str | None) -> Promotion:
        target = check_stage(target_stage, "target_stage")
        ref = parse_model_id(model_id)
        now = utcnow()
        try:
            with write_transaction(self.engine) as conn:
                version = self._resolve(conn, ref, for_update=True)
                check_transition(version.model_id, version.stage, target)
                archived = None
                if target == "production":
                    if version.artifact_key is None:
                        raise Conflict(
                            f"{version.model_id} has no artifact; upload one before "
                            "promoting to production"
                        )
                    archived = self._archive_production(
                        conn, version.tenant_id, version.model_name, now,
                        f"replaced by {version.version}" + (f": {reason}" if reason else ""),
                    )
                updated = self.store.set_stage(conn, version, target, now)
                self.store.add_transition(conn, version.id, version.stage, target, reason, now)
        except IntegrityError as exc:  # the unique production index caught a race
            raise Conflict(f"concurrent promotion of {ref.text}; retry") from exc
        return Promotion(updated, version.stage, archived, now)

    def _archive_production(self, conn: sa.Connection, tenant_id: str, model_name: str,
                            now: datetime, reason: str) -> ModelVersion | None:
        current = self.store.in_stage(conn, tenant_id, model_name, "production",
                                      for_update=True)
        if current is None:
            return None
        archived = self.store.set_stage(conn, current, "archived", now)
        self.store.add_transition(conn, current.id, "production", "archived", reason, now)
        return archived

    def delete_row(self, model_id: str, *, force: bool) -> ModelVersion:
        """Remove the version's row (and history); the caller removes the artifact after,
        so no row is ever left pointing at a deleted object."""
        ref = parse_model_id(model_id)
        with write_transaction(self.engine) as conn:
            version = self._resolve(conn, ref, for_update=True)
            ever_production = version.first_production_at is not None
            if not force and not deletable_without_force(version.stage, ever_production):
                raise Conflict(
                    f"{version.model_id} is in {version.stage}"
                    + (" and was in production" if version.stage == "staging" else "")
                    + "; archive it first or delete with force=true"
                )
            self.store.delete(conn, version.id)
        for hook in self.on_delete:
            hook(version)
        return version

    def attach_artifact(self, version: ModelVersion, artifact: ArtifactInfo) -> ModelVersion:
        """Point an existing version at an uploaded object: 409 if one is already there."""
        now = utcnow()
        with write_transaction(self.engine) as conn:
            current = self.store.get(conn, version.tenant_id, version.model_name,
                                     version.version, for_update=True)
            if current is None:  # deleted while the bytes were uploading
                raise NotFound(f"model '{version.model_id}' not found")
            attached = current.artifact_key is None and self.store.attach_artifact(
                conn, version.id, key=artifact.key, size=artifact.size,
                sha256=artifact.sha256, fmt=artifact.format, at=now,
            )
            if not attached:
                raise Conflict(f"{version.model_id} already has an artifact; register a new "
                               "version instead")
            row = self.store.get(conn, version.tenant_id, version.model_name, version.version)
        assert row is not None
        return row


def _text(value: object) -> str | None:
    return str(value)[:128] if value is not None else None
