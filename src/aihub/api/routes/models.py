"""Model registry: register, look up, list, promote, delete, history.

A ``model_id`` is ``tenant:name:version``; ``tenant:name:production`` and
``tenant:name:staging`` are aliases for the version currently in that stage.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from aihub.api.auth import ForceDep, require_role
from aihub.api.deps import ModelArtifactsDep, RegistryDep
from aihub.api.routes.monitoring_views import live_comparison
from aihub.api.schemas.common import Name
from aihub.api.schemas.models import (
    HistoryPublic,
    ModelDeleted,
    ModelPage,
    ModelPromote,
    ModelPublic,
    ModelRegister,
    ModelRegistered,
    PromotionPublic,
    Stage,
    TransitionPublic,
)
from aihub.errors import InvalidInput
from aihub.services.registry import RegisterRequest
from aihub.stores.metadata.models import ModelVersion, VersionFilter

router = APIRouter(prefix="/ai/models", tags=["models"])

_REGISTER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ModelRegister"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["request", "artifact"],
                    "properties": {
                        "request": {"type": "string",
                                    "description": "the JSON body of a plain registration"},
                        "artifact": {"type": "string", "format": "binary"},
                        "sha256": {"type": "string", "description": "expected digest"},
                    },
                }
            },
        },
    }
}


def model_public(v: ModelVersion) -> ModelPublic:
    return ModelPublic(
        model_id=v.model_id, tenant_id=v.tenant_id, model_name=v.model_name,
        version=v.version, stage=v.stage, metadata=v.metadata, metrics=v.metrics,
        uploaded_at=v.registered_at, model_size_bytes=v.artifact_size,
        model_type=v.model_type, framework=v.framework, sha256=v.artifact_sha256,
        artifact_format=v.artifact_format, artifact_uploaded_at=v.artifact_uploaded_at,
        stage_changed_at=v.stage_changed_at,
    )


def json_response(body: BaseModel, status_code: int = 200) -> Response:
    """A schema serialized once: returning the model itself would have FastAPI validate it
    a second time against ``response_model`` (which stays for the OpenAPI docs)."""
    return Response(body.model_dump_json(), status_code=status_code,
                    media_type="application/json")


def _register_body(raw: bytes | str) -> ModelRegister:
    try:
        return ModelRegister.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


@router.post("/register", status_code=201, response_model=ModelRegistered,
             summary="Register a model version", openapi_extra=_REGISTER_BODY,
             dependencies=[require_role("write")])
async def register(request: Request, registry: RegistryDep,
                   artifacts: ModelArtifactsDep) -> ModelRegistered:
    """JSON (the quick-start's body) registers metadata; upload the artifact after with
    ``PUT /ai/models/{model_id}/artifact``. Multipart (``request`` = that JSON, ``artifact``
    = the file) does both in one call. A duplicate version is a 409."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form() as form:
            raw, upload = form.get("request"), form.get("artifact")
            if not isinstance(raw, str) or upload is None or isinstance(upload, str):
                raise InvalidInput("multipart registration needs a 'request' field (JSON) and "
                                   "an 'artifact' file")
            body = _register_body(raw)
            sha = form.get("sha256")
            version = await run_in_threadpool(
                artifacts.register_with_artifact, _request(body), upload.file,
                expected_sha256=sha if isinstance(sha, str) else None,
            )
    else:
        body = _register_body(await request.body())
        version = await run_in_threadpool(registry.register, _request(body))
    return ModelRegistered(
        model_id=version.model_id, tenant_id=version.tenant_id,
        model_name=version.model_name, version=version.version, stage=version.stage,
        message=f"Model {version.model_name} {version.version} registered successfully",
        uploaded_at=version.registered_at, model_size_bytes=version.artifact_size,
        sha256=version.artifact_sha256,
    )


def _request(body: ModelRegister) -> RegisterRequest:
    return RegisterRequest(
        tenant_id=body.tenant_id, model_name=body.model_name, version=body.version,
        metadata=body.metadata, metrics=body.metrics, stage=body.stage,
    )


@router.get("/", response_model=ModelPage, summary="List model versions",
            dependencies=[require_role("read")])
def list_models(
    registry: RegistryDep,
    tenant_id: Annotated[Name | None, Query()] = None,
    model_name: Annotated[Name | None, Query()] = None,
    stage: Annotated[Stage | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """Grouped by tenant and model, newest version first (semver order)."""
    versions, total = registry.list(VersionFilter(tenant_id, model_name, stage),
                                    limit=limit, offset=offset)
    return json_response(ModelPage(models=[model_public(v) for v in versions], total=total,
                                   limit=limit, offset=offset))


@router.get("/{model_id}", response_model=ModelPublic, summary="One model version",
            dependencies=[require_role("read")])
def get_model(model_id: str, registry: RegistryDep) -> Response:
    # A database read: a worker thread, so a slow or unreachable database never stalls
    # the event loop (and with it /health and the cached online features).
    return json_response(model_public(registry.get(model_id)))


@router.put("/{model_id}/promote", response_model=PromotionPublic,
            summary="Move a version to another stage", dependencies=[require_role("write")])
def promote(model_id: str, body: ModelPromote, registry: RegistryDep,
            request: Request) -> PromotionPublic:
    """Promoting to production archives the current production version in the same
    transaction (named in ``archived_model_id``) and needs an artifact; ``comparison``
    then scores both on the forecasts both logged. A disallowed transition is a 409
    naming the allowed ones."""
    p = registry.promote(model_id, body.target_stage, body.reason)
    v = p.version
    message = f"Model promoted from {p.previous_stage} to {v.stage}"
    if p.archived is not None:
        message += f"; {p.archived.model_id} archived"
    return PromotionPublic(
        model_id=v.model_id, model_name=v.model_name, version=v.version,
        previous_stage=p.previous_stage, current_stage=v.stage, promoted_at=p.at,
        message=message, archived_model_id=p.archived.model_id if p.archived else None,
        comparison=live_comparison(request.app.state.services, v, p.archived),
    )


@router.delete("/{model_id}", response_model=ModelDeleted, summary="Delete a version")
def delete_model(model_id: str, artifacts: ModelArtifactsDep, force: ForceDep) -> ModelDeleted:
    """Archived and never-promoted versions go freely; others need ``force=true``, which
    needs the ``admin`` role. The artifact is removed too; if that fails after the version
    is gone, the answer is still 200 with ``artifact_removed: false`` and the orphaned
    object is removed by the next sweep (``aihub models sweep``)."""
    deleted = artifacts.delete(model_id, force=force)
    v = deleted.version
    return ModelDeleted(model_id=v.model_id, deleted=True, stage=v.stage,
                        artifact_removed=deleted.artifact_removed,
                        message=f"Model {v.model_id} deleted"
                        + ("" if deleted.artifact_removed or v.artifact_key is None else
                           "; its artifact could not be removed now and will be swept later"))


@router.get("/{model_id}/history", response_model=HistoryPublic,
            summary="Every stage transition of a version", dependencies=[require_role("read")])
def history(model_id: str, registry: RegistryDep) -> HistoryPublic:
    v, transitions = registry.history(model_id)
    return HistoryPublic(
        model_id=v.model_id, stage=v.stage,
        transitions=[TransitionPublic(from_stage=t.from_stage, to_stage=t.to_stage,
                                      reason=t.reason, at=t.at) for t in transitions],
    )
