"""The MQTT stream: its status and its dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from aihub.api.auth import require_role
from aihub.api.deps import ServicesDep
from aihub.api.schemas.common import TenantName
from aihub.api.schemas.streams import DeadLetterPage, DeadLetterPublic, StreamStatusPublic
from aihub.streams.dead_letters import DeadLetterService

router = APIRouter(prefix="/ai/stream", tags=["stream"])


@router.get("/status", response_model=StreamStatusPublic, summary="The MQTT stream's state",
            dependencies=[require_role("read")])
def status(request: Request, services: ServicesDep) -> StreamStatusPublic:
    """Connection, subscriptions, message rate, last message, lag and dead letters of the
    stream this process runs (``AIHUB_MQTT_URL``); ``running: false`` without one. Counts
    only, no tenant's data."""
    stream = getattr(request.app.state, "stream", None)
    if stream is None:
        return StreamStatusPublic(running=False,
                                  dead_letters=DeadLetterService(services.engine).count())
    return StreamStatusPublic(**stream.status.snapshot())


@router.get("/dead-letters", response_model=DeadLetterPage,
            summary="Messages the stream could not store", dependencies=[require_role("read")])
def dead_letters(
    services: ServicesDep,
    tenant_id: Annotated[TenantName, Query()],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> DeadLetterPage:
    """A tenant's dead letters, newest first: unparseable JSON, naive timestamps, NaN,
    unknown fields, a tenant the stream's key may not write, and flagged register drops.
    Each element of a list payload stands alone (its reason names its index)."""
    page, total = DeadLetterService(services.engine).page(tenant_id, limit=limit,
                                                          offset=offset)
    return DeadLetterPage(
        dead_letters=[DeadLetterPublic(topic=d.topic, payload=d.payload, reason=d.reason,
                                       received_at=d.received_at) for d in page],
        total=total, limit=limit, offset=offset)
