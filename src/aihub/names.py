"""Validation of identifiers before they reach SQL, a file path or an object key.

Tenants, assets, locations, feature sets and models share one rule: 1-128 characters of
ASCII letters, digits, ``_``, ``.`` and ``-``, starting with a letter or digit, never
containing ``..``. Anything else (separators, percent-encoding, NUL, look-alike Unicode)
is rejected, so a valid name is always safe as one path segment or key segment.
"""

from __future__ import annotations

import re

from aihub.errors import InvalidInput

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(value: object) -> bool:
    return isinstance(value, str) and bool(_NAME.fullmatch(value)) and ".." not in value


def check_name(value: object, field: str) -> str:
    if not is_valid_name(value):
        shown = repr(value)[:80]
        raise InvalidInput(
            f"{field}: {shown} is not a valid name (1-128 of letters, digits, '_', '.', '-', "
            "starting with a letter or digit, no '..')"
        )
    return value  # type: ignore[return-value]
