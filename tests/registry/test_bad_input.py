"""Bad input is a clear 4xx, never a 500 or a trace, and changes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.registry.conftest import Register
from tests.registry.models import register_body


@pytest.mark.parametrize("field,value", [
    ("version", "1.0.0"), ("version", "v1.0"), ("version", "latest"), ("version", "../v1.0.0"),
    ("model_name", "../../etc"), ("model_name", "a/b"), ("model_name", "a..b"),
    ("model_name", ""), ("tenant_id", "x" * 129), ("tenant_id", "t:1"), ("stage", "archived"),
    ("stage", "prod"), ("metrics", {"rmse": "low"}), ("metadata", [1, 2]),
])
def test_bad_registration_is_422_and_stores_nothing(client: TestClient, field: str,
                                                    value: object) -> None:
    body = register_body()
    body[field] = value
    r = client.post("/ai/models/register", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_input"
    assert field in r.json()["detail"] or field in str(r.json().get("details"))
    assert "Traceback" not in r.text
    assert client.get("/ai/models/").json()["total"] == 0


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b'{"tenant_id": 5}'])
def test_malformed_body_is_422(client: TestClient, raw: bytes) -> None:
    r = client.post("/ai/models/register", content=raw,
                    headers={"content-type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize("model_id", [
    "nocolons", "a:b", "a:b:c:d", "t:m:1.0.0", "..:m:v1.0.0", "t:m:v1.0.0..",
    "t:m:latest", "t:m:v1.0.0%00",
])
def test_bad_model_ids_are_422(client: TestClient, model_id: str) -> None:
    for method, path in [("GET", ""), ("GET", "/history"), ("GET", "/artifact"),
                         ("DELETE", "")]:
        r = client.request(method, f"/ai/models/{model_id}{path}")
        assert r.status_code == 422, (method, path, r.text)


def test_bad_promote_bodies(client: TestClient, register: Register) -> None:
    model_id = register("v1.0.0")
    for body in ({"target_stage": "live"}, {}, {"target_stage": "production", "x": 1},
                 {"target_stage": "production", "reason": "r" * 3000}):
        assert client.put(f"/ai/models/{model_id}/promote", json=body).status_code == 422
    assert client.get(f"/ai/models/{model_id}").json()["stage"] == "staging"


def test_list_with_bad_filters(client: TestClient) -> None:
    assert client.get("/ai/models/?stage=live").status_code == 422
    assert client.get("/ai/models/?limit=0").status_code == 422
    assert client.get("/ai/models/?limit=100000").status_code == 422
    assert client.get("/ai/models/?tenant_id=../x").status_code == 422


def test_predict_bad_bodies(client: TestClient, register: Register) -> None:
    model_id = register("v1.0.0")
    for body in ({}, {"rows": [{"a": 1}], "asset_ids": ["m"]}, {"asset_ids": ["m"]},
                 {"rows": [{"hour_of_day": "noon"}]}, {"rows": "x"}):
        r = client.post(f"/ai/models/{model_id}/predict", json=body)
        assert r.status_code == 422, (body, r.text)


def test_encoded_slash_in_model_id_is_a_clean_404(client: TestClient) -> None:
    r = client.get("/ai/models/t:m:v1.0.0%2F..%2F..")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
