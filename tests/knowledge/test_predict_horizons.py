"""Predict with ``asset_ids`` + ``horizons``: a day-ahead forecast of many meters from one
origin in one call, each prediction the model run on exactly the online row of its
(asset, origin, horizon)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import at, iso
from tests.registry.test_predict import BASIC, basic_model, meters

__all__ = ["basic_model", "meters"]

pytestmark = pytest.mark.backends


def test_day_ahead_for_many_meters_in_one_call(client: TestClient, basic_model: str,
                                              meters: list[str]) -> None:
    origin = iso(at(24 * 9 + 10))
    r = client.post(f"/ai/models/{basic_model}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "as_of": origin,
        "horizons": {"min": 14, "max": 37}, "as_known": "origin"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"model_id", "version", "origin", "predictions"}
    assert body["origin"] == origin and body["model_id"] == basic_model
    preds = body["predictions"]
    assert [(p["asset_id"], p["horizon"]) for p in preds] == [
        (m, h) for m in meters for h in range(14, 38)]
    assert preds[0]["timestamp"] == iso(at(24 * 9 + 10 + 14))
    # Each prediction is the model on the online row of that horizon.
    online = client.post("/ai/features/get", json={
        "tenant_id": "t1", "asset_id": meters[1], "feature_set": "forecast_basic",
        "as_of": origin, "horizons": {"min": 14, "max": 37}, "as_known": "origin"}).json()
    rows = [x["features"] for x in online["rows"]]
    by_rows = client.post(f"/ai/models/{basic_model}/predict",
                          json={"rows": [{f: row[f] for f in BASIC} for row in rows]}).json()
    assert [p["prediction"] for p in preds[24:]] == by_rows["predictions"]


def test_horizons_need_assets_and_a_forecast_set(client: TestClient, basic_model: str,
                                                 meters: list[str]) -> None:
    r = client.post(f"/ai/models/{basic_model}/predict",
                    json={"rows": [dict.fromkeys(BASIC, 1.0)], "horizons": [1]})
    assert r.status_code == 422
    r = client.post(f"/ai/models/{basic_model}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "horizons": [200]})
    assert r.status_code == 422 and "horizons" in r.text
