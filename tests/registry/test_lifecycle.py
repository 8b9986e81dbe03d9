"""Registration, lookup, listing and the stage lifecycle over the API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.registry.conftest import MODEL, Register
from tests.registry.models import register_body


def test_register_returns_quickstart_shape(client: TestClient) -> None:
    r = client.post("/ai/models/register", json=register_body())
    assert r.status_code == 201
    body = r.json()
    assert body["model_id"] == f"{MODEL}:v1.0.0"
    assert (body["model_name"], body["version"], body["stage"], body["status"]) == (
        "forecast_lgb", "v1.0.0", "staging", "registered")
    assert body["message"] == "Model forecast_lgb v1.0.0 registered successfully"
    assert body["uploaded_at"].endswith("Z")


def test_duplicate_version_is_409(client: TestClient, register: Register) -> None:
    register("v1.0.0", artifact=False)
    r = client.post("/ai/models/register", json=register_body("v1.0.0"))
    assert r.status_code == 409
    assert "already registered" in r.json()["detail"]


def test_get_model_details(client: TestClient, register: Register) -> None:
    model_id = register("v1.0.0")
    body = client.get(f"/ai/models/{model_id}").json()
    assert body["tenant_id"] == "tenant-123"
    assert body["metrics"] == {"rmse": 2.5, "mae": 1.8, "r2_score": 0.92, "mape": 4.2}
    assert body["metadata"]["feature_names"] == ["hour_of_day", "lag_24h", "rolling_24h_avg"]
    assert "registered_at" in body["metadata"]
    assert body["model_type"] == "LightGBM"
    assert body["model_size_bytes"] > 0
    assert len(body["sha256"]) == 64
    assert body["artifact_format"] == "lightgbm"


def test_unknown_model_is_404(client: TestClient) -> None:
    r = client.get(f"/ai/models/{MODEL}:v9.9.9")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


def test_list_newest_semver_first_with_pagination(client: TestClient, register: Register
                                                  ) -> None:
    for v in ["v1.2.0", "v1.10.0", "v1.0.0-rc.1", "v1.0.0", "v20241130-120000"]:
        register(v, artifact=False)
    register("v3.0.0", artifact=False, name="other_model")
    page = client.get("/ai/models/", params={"tenant_id": "tenant-123",
                                             "model_name": "forecast_lgb"}).json()
    assert [m["version"] for m in page["models"]] == [
        "v20241130-120000", "v1.10.0", "v1.2.0", "v1.0.0", "v1.0.0-rc.1"]
    assert (page["total"], page["limit"], page["offset"]) == (5, 100, 0)
    second = client.get("/ai/models/", params={"tenant_id": "tenant-123",
                                               "model_name": "forecast_lgb",
                                               "limit": 2, "offset": 2}).json()
    assert [m["version"] for m in second["models"]] == ["v1.2.0", "v1.0.0"]
    assert second["total"] == 5
    assert client.get("/ai/models/", params={"tenant_id": "tenant-123"}).json()["total"] == 6


def test_list_filters_by_stage(client: TestClient, register: Register) -> None:
    first = register("v1.0.0")
    register("v1.1.0")
    client.put(f"/ai/models/{first}/promote", json={"target_stage": "production"})
    prod = client.get("/ai/models/?stage=production").json()
    assert prod["total"] == 1
    assert prod["models"][0]["model_id"] == first
    assert client.get("/ai/models/?stage=staging").json()["total"] == 1


def test_promote_archives_previous_production_and_says_which(
    client: TestClient, register: Register
) -> None:
    v1, v2 = register("v1.0.0"), register("v2.0.0")
    assert client.put(f"/ai/models/{v1}/promote",
                      json={"target_stage": "production"}).status_code == 200
    r = client.put(f"/ai/models/{v2}/promote",
                   json={"target_stage": "production", "reason": "5% better RMSE"})
    body = r.json()
    assert r.status_code == 200
    assert (body["previous_stage"], body["current_stage"]) == ("staging", "production")
    assert body["archived_model_id"] == v1
    assert v1 in body["message"]
    assert client.get(f"/ai/models/{v1}").json()["stage"] == "archived"
    assert client.get("/ai/models/?stage=production").json()["total"] == 1


def test_production_requires_an_artifact(client: TestClient, register: Register) -> None:
    model_id = register("v1.0.0", artifact=False)
    r = client.put(f"/ai/models/{model_id}/promote", json={"target_stage": "production"})
    assert r.status_code == 409
    assert "artifact" in r.json()["detail"]
    assert client.get(f"/ai/models/{model_id}").json()["stage"] == "staging"


def test_register_straight_to_production_needs_artifact(client: TestClient) -> None:
    r = client.post("/ai/models/register", json=register_body(stage="production"))
    assert r.status_code == 409
    assert client.get("/ai/models/").json()["total"] == 0


def test_invalid_transition_names_allowed_ones(client: TestClient, register: Register
                                               ) -> None:
    model_id = register("v1.0.0")
    client.put(f"/ai/models/{model_id}/promote", json={"target_stage": "production"})
    r = client.put(f"/ai/models/{model_id}/promote", json={"target_stage": "staging"})
    assert r.status_code == 409
    body = r.json()
    assert body["details"]["allowed"] == ["archived"]
    assert "allowed from production: archived" in body["detail"]
    same = client.put(f"/ai/models/{model_id}/promote", json={"target_stage": "production"})
    assert same.status_code == 409


def test_rollback_archived_to_production(client: TestClient, register: Register) -> None:
    v1, v2 = register("v1.0.0"), register("v2.0.0")
    client.put(f"/ai/models/{v1}/promote", json={"target_stage": "production"})
    client.put(f"/ai/models/{v2}/promote", json={"target_stage": "production"})
    r = client.put(f"/ai/models/{v1}/promote",
                   json={"target_stage": "production", "reason": "rollback"})
    assert r.status_code == 200
    assert r.json()["archived_model_id"] == v2


def test_stage_alias_resolves_everywhere(client: TestClient, register: Register) -> None:
    v1, v2 = register("v1.0.0"), register("v2.0.0")
    client.put(f"/ai/models/{v1}/promote", json={"target_stage": "production"})
    assert client.get(f"/ai/models/{MODEL}:production").json()["model_id"] == v1
    assert client.get(f"/ai/models/{MODEL}:staging").json()["model_id"] == v2
    history = client.get(f"/ai/models/{MODEL}:production/history").json()
    assert history["model_id"] == v1
    art = client.get(f"/ai/models/{MODEL}:production/artifact")
    assert art.headers["x-model-id"] == v1
    client.put(f"/ai/models/{MODEL}:staging/promote", json={"target_stage": "production"})
    assert client.get(f"/ai/models/{MODEL}:production").json()["model_id"] == v2
    assert client.get(f"/ai/models/{MODEL}:staging").status_code == 404


def test_history_keeps_every_transition_with_reason(client: TestClient, register: Register
                                                    ) -> None:
    model_id = register("v1.0.0")
    client.put(f"/ai/models/{model_id}/promote",
               json={"target_stage": "production", "reason": "passed validation"})
    client.put(f"/ai/models/{model_id}/promote",
               json={"target_stage": "archived", "reason": "drift"})
    t = client.get(f"/ai/models/{model_id}/history").json()["transitions"]
    assert [(x["from_stage"], x["to_stage"], x["reason"]) for x in t] == [
        (None, "staging", "registered"),
        ("staging", "production", "passed validation"),
        ("production", "archived", "drift"),
    ]
    assert all(x["at"].endswith("Z") for x in t)


def test_delete_rules(client: TestClient, register: Register) -> None:
    never_promoted, prod = register("v1.0.0"), register("v2.0.0")
    client.put(f"/ai/models/{prod}/promote", json={"target_stage": "production"})
    assert client.delete(f"/ai/models/{never_promoted}").status_code == 200
    refused = client.delete(f"/ai/models/{prod}")
    assert refused.status_code == 409
    assert "force=true" in refused.json()["detail"]
    assert client.get(f"/ai/models/{prod}").status_code == 200
    assert client.delete(f"/ai/models/{prod}?force=true").json()["deleted"] is True
    assert client.get(f"/ai/models/{prod}").status_code == 404


def test_once_production_then_staged_needs_force(client: TestClient, register: Register
                                                 ) -> None:
    model_id = register("v1.0.0")
    for stage in ("production", "archived", "staging"):
        client.put(f"/ai/models/{model_id}/promote", json={"target_stage": stage})
    assert client.delete(f"/ai/models/{model_id}").status_code == 409
    client.put(f"/ai/models/{model_id}/promote", json={"target_stage": "archived"})
    assert client.delete(f"/ai/models/{model_id}").status_code == 200
