"""Field types shared by request schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

from aihub.auth.scope import check_tenant
from aihub.names import NAME_PATTERN
from aihub.timeutil import MAX_TS, MIN_TS


def _in_range(ts: datetime) -> datetime:
    if not (MIN_TS <= ts < MAX_TS):
        raise ValueError("timestamp must lie between 1970 and 2200")
    return ts


Name = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=128),
    AfterValidator(lambda v: _no_dotdot(v)),
]
# A tenant the calling API key may reach (404 otherwise): every request schema and query
# parameter naming a tenant uses this type, so no route can skip the check.
TenantName = Annotated[Name, AfterValidator(lambda v: check_tenant(v))]
Timestamp = Annotated[AwareDatetime, AfterValidator(_in_range)]
# Strict: JSON ``true`` or ``"1.5"`` are not numbers (ints still are); NaN/inf refused.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]


def _no_dotdot(value: str) -> str:
    if ".." in value:
        raise ValueError("a name may not contain '..'")
    return value
