"""Stream messages into the rows the shared parser and validation read.

A payload is JSON: one object or an array of them (DESIGN.md: ``{"ts", "value"}`` on
``aihub/{tenant}/readings/{asset}``; an observation on ``.../weather/{location}``). This
module only decodes it and puts each element into the shape of an HTTP row (the topic's
asset or location added; a custom layout's fields renamed, its epoch times written as ISO
8601, its value scaled). Every rule (types, zones, finiteness, names) is then applied by
``aihub.services.columns`` and ``aihub.services.validation``, the functions HTTP ingest
uses, so a field they learn (a knowledge time, a quality flag) flows through here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pydantic_core

from aihub.streams.config import Mapping

__all__ = ["Decoded", "ElementProblem", "decode", "to_rows"]


@dataclass(frozen=True, slots=True)
class Decoded:
    """A payload's elements, whether it was a single object (not an array), or why the
    message as a whole can't be read."""

    elements: list[Any]
    single: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ElementProblem:
    """A problem found while shaping element ``index`` (its ``field``'s cell left null)."""

    index: int
    field: str
    reason: str


def decode(payload: bytes) -> Decoded:
    """JSON with NaN/Infinity tolerated (so the rules can name them); an empty array or
    anything but an object or an array of them is a problem of the whole message."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        try:
            data = pydantic_core.from_json(payload, allow_inf_nan=True)
        except ValueError as exc:
            return Decoded([], error=f"not valid JSON: {str(exc)[:200]}")
    if type(data) is dict:
        return Decoded([data], single=True)
    if type(data) is list:
        if not data:
            return Decoded([], error="an empty array: nothing to store")
        return Decoded(data)
    return Decoded([], error="expected a JSON object or an array of objects")


_EPOCH_DIVISOR = {"epoch_s": 1.0, "epoch_ms": 1000.0}


def _time(value: Any, fmt: str) -> tuple[Any, str | None]:
    """An epoch number as ISO 8601 UTC; anything else as it is (the parser judges it)."""
    if fmt == "iso" or type(value) not in (int, float):
        return value, None
    try:
        return datetime.fromtimestamp(value / _EPOCH_DIVISOR[fmt], UTC).isoformat(), None
    except (OverflowError, OSError, ValueError):
        return None, "epoch time out of range"


def _scaled(value: Any, scale: float) -> Any:
    if scale == 1.0 or type(value) not in (int, float):
        return value
    try:
        return value * scale
    except OverflowError:
        return float("inf")  # the rules refuse it as not finite


def to_rows(
    mapping: Mapping, thing: str, elements: list[Any], rows: list[Any]
) -> list[ElementProblem]:
    """Appends each element to ``rows`` as a row with the mapping's id column
    (``asset_id`` or ``location_id``) set to the topic's ``thing``. In the default (strict)
    layout the element's own keys go through unchanged (the element, freshly decoded, is
    completed in place), so unknown ones are refused by the parser; an element naming the
    id itself is refused here (the topic names it). A custom layout reads only its time
    and value fields. Non-objects pass through for the parser to name."""
    key = mapping.id_field
    problems: list[ElementProblem] = []
    if mapping.strict:
        for i, el in enumerate(elements):
            if type(el) is dict:
                if key in el:
                    problems.append(ElementProblem(
                        i, key, f"unknown field '{key}': the topic names the "
                                f"{'location' if key == 'location_id' else 'asset'}"))
                el[key] = thing
            rows.append(el)
        return problems
    for i, el in enumerate(elements):
        if type(el) is not dict:
            rows.append(el)
            continue
        ts, why = _time(el.get(mapping.time_field), mapping.time_format)
        if why:
            problems.append(ElementProblem(i, "ts", why))
        rows.append({key: thing, "ts": ts,
                     "value": _scaled(el.get(mapping.value_field), mapping.scale)})
    return problems
