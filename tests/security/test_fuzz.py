"""Schemathesis fuzzes every operation of the OpenAPI schema (bounded examples, so it runs
in the suite): no 5xx, and every response matches the schema, error bodies included.
``bench/fuzz.py`` runs the same with many more examples and records the figures."""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.factories import readings

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


EXAMPLES = 6


def fuzz(client: TestClient, *, examples: int) -> dict[str, int]:
    """Run every operation with ``examples`` generated cases; returns cases per operation.
    Raises on the first failing check."""
    # Some data, so generated requests also reach the code behind the 404s.
    client.post("/ai/features/ingest", json={"tenant_id": "tenant-123",
                                             "readings": readings("meter-001", range(48))})
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        counts[label] = 0

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            counts[label] += 1  # noqa: B023
            case.call_and_validate(checks=CHECKS)

        run()
    return counts


def test_api_fuzz(client: TestClient) -> None:
    counts = fuzz(client, examples=EXAMPLES)
    assert len(counts) >= 20  # every operation of the schema was exercised
    assert all(n > 0 for n in counts.values())
