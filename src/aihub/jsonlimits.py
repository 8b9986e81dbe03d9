"""Bounds on free-form JSON a caller stores (model metadata and metrics)."""

from __future__ import annotations

from typing import Any

import orjson

from aihub.errors import InvalidInput

MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 16


def check_json(value: Any, field: str, *, max_bytes: int = MAX_JSON_BYTES,
               max_depth: int = MAX_JSON_DEPTH) -> None:
    """422 if ``value`` nests deeper than ``max_depth`` or serializes beyond ``max_bytes``
    (checked iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InvalidInput(f"{field}: nested deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)
    try:
        size = len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(f"{field}: not JSON-serializable ({exc})") from exc
    if size > max_bytes:
        raise InvalidInput(f"{field}: {size} bytes of JSON; at most {max_bytes} allowed")
