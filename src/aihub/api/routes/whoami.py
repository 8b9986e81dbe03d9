"""Who is calling: the key's id, role and tenants (a cheap call for clients, such as the
dashboard, that adapt to what a key may do)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from aihub.api.auth import require_role
from aihub.auth.scope import current

router = APIRouter(prefix="/ai/auth", tags=["auth"])


class WhoAmI(BaseModel):
    key_id: str | None = Field(description="null when no API keys are configured")
    role: str = Field(description="read, write or admin")
    tenants: list[str] = Field(description="'*' = every tenant")
    keys_required: bool


@router.get("/whoami", response_model=WhoAmI, summary="The calling key's role and tenants",
            dependencies=[require_role("read")])
async def whoami() -> WhoAmI:
    """Without configured keys the API is open: role ``admin`` on every tenant."""
    p = current()
    if p is None:
        return WhoAmI(key_id=None, role="admin", tenants=["*"], keys_required=False)
    return WhoAmI(key_id=p.key_id, role=p.role, tenants=sorted(p.tenants), keys_required=True)
