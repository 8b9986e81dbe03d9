"""Shadow versions: they see production's inputs after the answer, are logged under their
own version, and neither a failing nor a slow one changes or delays the answer."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from aihub.inference.loaders import LoadedModel
from aihub.services.container import Services
from aihub.stores.metadata.models import ModelVersion
from tests.factories import at, iso
from tests.monitoring.conftest import NAME, TENANT, Register, logged
from tests.registry.models import lightgbm_text

pytestmark = pytest.mark.backends

PRODUCTION = f"{TENANT}:{NAME}:production"


def predict(client: TestClient, meters: list[str], hour: int) -> tuple[list[float], float]:
    started = time.perf_counter()
    r = client.post(f"/ai/models/{PRODUCTION}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "as_of": iso(at(hour))})
    assert r.status_code == 200, r.text
    return r.json()["predictions"], time.perf_counter() - started


def test_only_staging_versions_can_be_shadows(client: TestClient, register: Register) -> None:
    prod = register("v1.0.0", stage="production")
    r = client.put(f"/ai/models/{prod}/shadow", json={"enabled": True})
    assert r.status_code == 409, r.text
    staging = register("v1.1.0", seed=1)
    r = client.put(f"/ai/models/{staging}/shadow", json={"enabled": True})
    assert r.status_code == 200 and r.json() == {"model_id": staging, "stage": "staging",
                                                "shadow": True}
    assert client.put(f"/ai/models/{staging}/shadow", json={"on": 1}).status_code == 422
    assert client.put("/ai/models/t1:load:v7.0.0/shadow",
                      json={"enabled": True}).status_code == 404


def test_shadow_runs_on_the_same_inputs_and_is_logged_under_its_version(
    client: TestClient, services: Services, register: Register, meters: list[str]
) -> None:
    prod = register("v1.0.0", stage="production")
    shadow = register("v1.1.0", seed=1)
    assert client.put(f"/ai/models/{shadow}/shadow", json={"enabled": True}).status_code == 200
    alone = client.post(f"/ai/models/{shadow}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "as_of": iso(at(200)),
        "log": False}).json()["predictions"]
    preds, _ = predict(client, meters, 200)
    assert services.shadows.wait_idle(10)
    prod_rows, shadow_rows = logged(services, prod), logged(services, shadow)
    assert prod_rows.get_column("prediction").to_list() == pytest.approx(preds)
    assert shadow_rows.get_column("prediction").to_list() == pytest.approx(alone)
    assert set(shadow_rows.get_column("source")) == {"shadow"}
    assert shadow_rows.get_column("actual").to_list() == \
        prod_rows.get_column("actual").to_list()
    # Predicting through the version id (not the alias) runs no shadow.
    client.post(f"/ai/models/{prod}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "as_of": iso(at(201))})
    assert services.shadows.wait_idle(10)
    assert logged(services, shadow).height == 2
    # Disabled: no more shadow runs.
    client.put(f"/ai/models/{shadow}/shadow", json={"enabled": False})
    predict(client, meters, 202)
    assert services.shadows.wait_idle(10)
    assert logged(services, shadow).height == 2


def test_a_failing_shadow_changes_nothing(client: TestClient, services: Services,
                                          register: Register, meters: list[str]) -> None:
    register("v1.0.0", stage="production")
    before, _ = predict(client, meters, 180)
    # A shadow whose metadata names a feature the feature set doesn't serve: it raises.
    body = {"tenant_id": TENANT, "model_name": NAME, "version": "v2.0.0",
            "metadata": {"feature_names": ["hour_of_day", "lag_24h", "no_such_feature"]}}
    broken = client.post("/ai/models/register", json=body).json()["model_id"]
    client.put(f"/ai/models/{broken}/artifact", content=lightgbm_text())
    client.put(f"/ai/models/{broken}/shadow", json={"enabled": True})
    failed = services.shadows.failed
    after, _ = predict(client, meters, 180)
    assert services.shadows.wait_idle(10)
    assert after == before
    assert services.shadows.failed == failed + 1
    assert logged(services, broken).height == 0


def test_a_slow_shadow_does_not_delay_the_answer(
    client: TestClient, services: Services, register: Register, meters: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register("v1.0.0", stage="production")
    slow = register("v1.1.0", seed=1)
    client.put(f"/ai/models/{slow}/shadow", json={"enabled": True})
    predict(client, meters, 150)  # warm: models loaded, features cached
    assert services.shadows.wait_idle(10)
    # A fault we cannot cause with a real small model: loading the shadow takes 3 s.
    real_load = services.predictions.load

    def load(version: ModelVersion) -> LoadedModel:
        if version.model_id == slow:
            time.sleep(3)
        return real_load(version)

    monkeypatch.setattr(services.predictions, "load", load)
    _, took = predict(client, meters, 151)
    assert took < 1.5
    assert services.shadows.wait_idle(10)
    assert logged(services, slow).height == 4


def test_promote_answers_with_the_live_comparison(
    client: TestClient, services: Services, register: Register, meters: list[str]
) -> None:
    old = register("v1.0.0", stage="production")
    new = register("v1.1.0", seed=1)
    client.put(f"/ai/models/{new}/shadow", json={"enabled": True})
    for hour in (170, 171, 172):
        predict(client, meters, hour)
    assert services.shadows.wait_idle(10)
    services.prediction_log.flush()
    r = client.put(f"/ai/models/{new}/promote", json={"target_stage": "production"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["archived_model_id"] == old
    comparison = body["comparison"]
    assert comparison["common_rows"] == 6
    assert {v["model_id"]: v["stage"] for v in comparison["versions"]} == {
        new: "production", old: "archived"}
    # Without common rows there is no comparison.
    third = register("v1.2.0", seed=2)
    r = client.put(f"/ai/models/{third}/promote", json={"target_stage": "production"})
    assert r.json()["comparison"] is None
