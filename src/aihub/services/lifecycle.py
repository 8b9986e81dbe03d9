"""Model identity and lifecycle rules: parsing ``tenant:name:version`` (or a stage alias)
and the allowed stage transitions. Pure functions, no storage."""

from __future__ import annotations

from dataclasses import dataclass

from aihub.auth.scope import check_tenant
from aihub.errors import Conflict, InvalidInput
from aihub.names import check_name
from aihub.versions import parse_version

STAGES = ("staging", "production", "archived")
ALIASES = ("production", "staging")

# production is left by promoting another version (which archives it) or by archiving it;
# an archived version may come back (rollback) through staging or straight to production.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "staging": ("production", "archived"),
    "production": ("archived",),
    "archived": ("staging", "production"),
}
REGISTER_STAGES = ("staging", "production")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model_id: ``version`` is a concrete version unless ``alias`` is set."""

    tenant_id: str
    model_name: str
    version: str | None
    alias: str | None

    @property
    def text(self) -> str:
        return f"{self.tenant_id}:{self.model_name}:{self.version or self.alias}"


def parse_model_id(model_id: str) -> ModelRef:
    parts = model_id.split(":") if isinstance(model_id, str) else []
    if len(parts) != 3:
        raise InvalidInput(
            f"model_id: {model_id!r:.120} must be 'tenant:name:version' "
            "(or 'tenant:name:production' / 'tenant:name:staging')"
        )
    tenant_id, name, last = parts
    check_name(tenant_id, "tenant_id")
    check_name(name, "model_name")
    check_tenant(tenant_id, f"model '{model_id}' not found")  # another tenant's: 404
    if last in ALIASES:
        return ModelRef(tenant_id, name, None, last)
    return ModelRef(tenant_id, name, parse_version(last).text, None)


def check_stage(stage: object, field: str = "stage") -> str:
    if stage not in STAGES:
        raise InvalidInput(f"{field}: {stage!r:.40} is not a stage (one of {', '.join(STAGES)})")
    return stage  # type: ignore[return-value]


def check_transition(model_id: str, current: str, target: str) -> None:
    allowed = TRANSITIONS[current]
    if target not in allowed:
        raise Conflict(
            f"cannot move {model_id} from {current} to {target}; "
            f"allowed from {current}: {', '.join(allowed)}",
            details={"current_stage": current, "target_stage": target,
                     "allowed": list(allowed)},
        )


def deletable_without_force(stage: str, ever_production: bool) -> bool:
    """Archived versions and versions never promoted to production go freely."""
    return stage == "archived" or (stage == "staging" and not ever_production)
