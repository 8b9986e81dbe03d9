"""Predictions on rows and on the feature store's online features."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from fastapi.testclient import TestClient

from aihub.features.catalog import BUILTIN_SETS
from tests.factories import T0, at, iso, readings

BASIC = list(BUILTIN_SETS["forecast_basic"].features)


@pytest.fixture
def basic_model(client: TestClient) -> str:
    """A LightGBM model over the forecast_basic features, registered with its artifact."""
    rng = np.random.default_rng(1)
    x = rng.normal(40, 5, size=(300, len(BASIC)))
    y = x[:, BASIC.index("lag_24h")] * 0.8 + x[:, BASIC.index("rolling_24h_avg")] * 0.2
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, y, feature_name=BASIC), num_boost_round=30)
    body = {"tenant_id": "t1", "model_name": "load", "version": "v1.0.0",
            "metadata": {"framework": "lightgbm", "feature_names": BASIC}, "metrics": {}}
    model_id = client.post("/ai/models/register", json=body).json()["model_id"]
    r = client.put(f"/ai/models/{model_id}/artifact",
                   content=booster.model_to_string().encode())
    assert r.status_code == 200
    return str(model_id)


@pytest.fixture
def meters(client: TestClient) -> list[str]:
    for asset, scale in (("meter-a", 1.0), ("meter-b", 2.0)):
        rows = readings(asset, range(24 * 10), lambda h, s=scale: s * (40 + 5 * np.sin(h / 4)))
        assert client.post("/ai/features/ingest",
                           json={"tenant_id": "t1", "readings": rows}).status_code == 200
    return ["meter-a", "meter-b"]


def test_predict_rows_several(client: TestClient, basic_model: str) -> None:
    rows = [dict.fromkeys(BASIC, 40.0), dict.fromkeys(BASIC, 60.0)]
    r = client.post(f"/ai/models/{basic_model}/predict", json={"rows": rows})
    assert r.status_code == 200
    body = r.json()
    assert body["model_id"] == basic_model and body["version"] == "v1.0.0"
    assert len(body["predictions"]) == 2
    assert body["predictions"][0] < body["predictions"][1]


def test_null_features_are_missing_values(client: TestClient, basic_model: str) -> None:
    row = {**dict.fromkeys(BASIC, 40.0), "lag_168h": None}
    r = client.post(f"/ai/models/{basic_model}/predict", json={"rows": [row]})
    assert r.status_code == 200
    assert isinstance(r.json()["predictions"][0], float)


def test_missing_feature_is_422_naming_it(client: TestClient, basic_model: str) -> None:
    row = dict.fromkeys(BASIC, 40.0)
    del row["lag_24h"]
    r = client.post(f"/ai/models/{basic_model}/predict", json={"rows": [{**row}, row]})
    assert r.status_code == 422
    assert "lag_24h" in r.json()["detail"]
    assert r.json()["details"]["missing"] == ["lag_24h"]


def test_predict_from_online_features_equals_predict_on_those_rows(
    client: TestClient, basic_model: str, meters: list[str]
) -> None:
    as_of = iso(at(24 * 9 + 5))
    r = client.post(f"/ai/models/{basic_model}/predict",
                    json={"asset_ids": meters, "feature_set": "forecast_basic", "as_of": as_of})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["asset_ids"] == meters
    assert body["timestamp"] == as_of
    rows = [client.post("/ai/features/get", json={"tenant_id": "t1", "asset_id": m,
                                                  "feature_set": "forecast_basic",
                                                  "as_of": as_of}).json()["features"]
            for m in meters]
    direct = client.post(f"/ai/models/{basic_model}/predict", json={"rows": rows}).json()
    assert body["predictions"] == direct["predictions"]
    assert body["predictions"][0] != body["predictions"][1]


def test_predict_via_production_alias(client: TestClient, basic_model: str,
                                      meters: list[str]) -> None:
    client.put(f"/ai/models/{basic_model}/promote", json={"target_stage": "production"})
    r = client.post("/ai/models/t1:load:production/predict",
                    json={"asset_ids": meters[:1], "feature_set": "forecast_basic",
                          "as_of": iso(T0.replace(day=9))})
    assert r.status_code == 200
    assert r.json()["model_id"] == basic_model


def test_feature_set_missing_model_features_is_422(client: TestClient, basic_model: str,
                                                   meters: list[str]) -> None:
    r = client.post(f"/ai/models/{basic_model}/predict",
                    json={"asset_ids": meters, "feature_set": "anomaly_detection",
                          "as_of": iso(at(100))})
    assert r.status_code == 422
    assert "missing feature 'hour_of_day'" in r.json()["detail"]


def test_unknown_asset_is_404(client: TestClient, basic_model: str, meters: list[str]) -> None:
    r = client.post(f"/ai/models/{basic_model}/predict",
                    json={"asset_ids": ["nope"], "feature_set": "forecast_basic"})
    assert r.status_code == 404


def test_model_without_artifact_cannot_predict(client: TestClient) -> None:
    body = {"tenant_id": "t1", "model_name": "load", "version": "v0.1.0",
            "metadata": {"feature_names": BASIC}, "metrics": {}}
    model_id = client.post("/ai/models/register", json=body).json()["model_id"]
    r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [dict.fromkeys(BASIC, 1)]})
    assert r.status_code == 409
    assert "no artifact" in r.json()["detail"]
