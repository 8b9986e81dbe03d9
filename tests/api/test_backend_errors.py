"""Backend-specific refusals map to the error tree: a value PostgreSQL cannot store (a NUL
character, which SQLite keeps) is a 4xx on either backend, never a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_nul_character_in_text_is_never_a_500(client: TestClient) -> None:
    r = client.post("/ai/features/sets", json={"tenant_id": "t1", "name": "with_nul",
                                               "description": "a\x00b", "features": ["lag_1h"]})
    assert r.status_code in (200, 201, 422), r.text
    if r.status_code == 422:
        assert r.json()["error"] == "invalid_input"
        assert "Traceback" not in r.text
