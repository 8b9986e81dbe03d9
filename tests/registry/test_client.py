"""``aihub.Client`` against a live server: every registry and feature endpoint, typed
errors, safe serialization of in-memory models, streamed artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightgbm as lgb
import pytest
from sklearn.ensemble import RandomForestRegressor

from aihub import Client, errors
from aihub.api.app import create_app
from tests.factories import at, iso, readings
from tests.registry.models import FEATURES, lightgbm_text, training_data

ROW = {"hour_of_day": 12, "lag_24h": 40.0, "rolling_24h_avg": 41.0}


def test_register_model_lightgbm_end_to_end(hub: Client, tmp_path: Path) -> None:
    x, y = training_data()
    model = lgb.LGBMRegressor(n_estimators=20, verbose=-1).fit(
        __import__("pandas").DataFrame(x, columns=FEATURES), y)
    reg = hub.register_model(model, tenant_id="t1", model_name="lgb", version="v1.0.0",
                             metrics={"rmse": 1.0})
    model_id = reg["model_id"]
    assert reg["sha256"] and reg["model_size_bytes"] > 0
    shown = hub.get_model(model_id)
    assert shown["artifact_format"] == "lightgbm"
    assert shown["metadata"]["feature_names"] == FEATURES
    assert shown["metadata"]["hyperparameters"]["n_estimators"] == 20
    promoted = hub.promote(model_id, "production", reason="first")
    assert promoted["current_stage"] == "production"
    pred = hub.predict("t1:lgb:production", [ROW])["predictions"][0]
    assert pred == pytest.approx(float(model.predict(
        __import__("pandas").DataFrame([ROW]))[0]))
    dest = tmp_path / "model.txt"
    digest = hub.download_artifact(model_id, dest)
    assert digest == shown["sha256"] == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert [t["to_stage"] for t in hub.history(model_id)["transitions"]] == [
        "staging", "production"]
    assert hub.list_models(tenant_id="t1")["total"] == 1
    assert hub.delete_model(model_id, force=True)["deleted"] is True


def test_register_model_sklearn_via_skops(hub: Client) -> None:
    x, y = training_data()
    model = RandomForestRegressor(n_estimators=3, random_state=0).fit(x, y)
    reg = hub.register_model(model, tenant_id="t1", model_name="rf", version="v1.0.0",
                             feature_names=FEATURES)
    assert hub.get_model(reg["model_id"])["artifact_format"] == "skops"
    pred = hub.predict(reg["model_id"], [ROW])["predictions"][0]
    assert pred == pytest.approx(float(model.predict([[12, 40.0, 41.0]])[0]))


def test_register_model_refuses_unserializable(hub: Client) -> None:
    with pytest.raises(TypeError, match="safely"):
        hub.register_model(object(), tenant_id="t1", model_name="x", version="v1.0.0")
    assert hub.list_models()["total"] == 0


def test_upload_from_path_streams_and_checks(hub: Client, tmp_path: Path) -> None:
    hub.register("t1", "m", "v1.0.0", metadata={"feature_names": FEATURES})
    path = tmp_path / "model.txt"
    path.write_bytes(lightgbm_text())
    up = hub.upload_artifact("t1:m:v1.0.0", path)
    assert up["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    hub.register("t1", "m", "v1.1.0")
    with pytest.raises(errors.InvalidInput, match="corrupted in transit"):
        hub.upload_artifact("t1:m:v1.1.0", path, sha256="0" * 64)


def test_typed_errors(hub: Client) -> None:
    with pytest.raises(errors.NotFound):
        hub.get_model("t1:m:v9.9.9")
    with pytest.raises(errors.InvalidInput) as bad:
        hub.register("t1", "m", "1.0")
    assert "version" in bad.value.message
    hub.register("t1", "m", "v1.0.0")
    with pytest.raises(errors.Conflict):
        hub.register("t1", "m", "v1.0.0")
    with pytest.raises(errors.Conflict) as conflict:
        hub.promote("t1:m:v1.0.0", "production")
    assert "artifact" in conflict.value.message
    with pytest.raises(errors.NotFound):
        hub.download_artifact("t1:m:v1.0.0", Path("/nonexistent/never-written"))


def test_unreachable_server_is_backend_unavailable() -> None:
    with Client("http://127.0.0.1:9", timeout=2) as c, \
            pytest.raises(errors.BackendUnavailable):
        c.health()


def test_feature_endpoints(hub: Client) -> None:
    assert hub.health()["status"] == "ok"
    assert hub.ready()["checks"]["artifact_store"]["status"] == "ok"
    accepted = hub.ingest("t1", readings("meter-1", range(24 * 9)))
    assert accepted["accepted"] == 24 * 9
    assert hub.ingest_weather("t1", [{"location_id": "l1", "ts": at(0), "temperature": 3.0}]
                              )["accepted"] == 1
    assert hub.put_asset("t1", "meter-1", timezone="Europe/Berlin", location_id="l1"
                         )["timezone"] == "Europe/Berlin"
    assert hub.get_asset("t1", "meter-1")["location_id"] == "l1"
    assert hub.list_assets("t1")["total"] == 1
    one = hub.get_features("t1", "meter-1", as_of=at(24 * 8))
    assert one["features"]["lag_24h"] is not None
    batch = hub.get_features_batch("t1", ["meter-1"], as_of=iso(at(24 * 8)))
    assert batch["results"][0]["features"] == one["features"]
    export = hub.export_features("t1", start_time=at(24), end_time=at(48))
    assert export["row_count"] == 24
    assert hub.list_exports("t1")["total"] == 1
    assert hub.get_export(export["export_id"])["status"] == "completed"
    assert "forecast_basic" in hub.feature_sets()["feature_sets"]
    created = hub.create_feature_set("t1", "mine", ["hour_of_day", "lag_24h"])
    assert created["name"] == "mine"
    assert any(f["name"] == "lag_24h" for f in hub.catalog())
    assert hub.status("t1")["assets"] == 1
    with pytest.raises(errors.NotFound):
        hub.get_features("t1", "unknown-meter")


COVERED = {
    ("GET", "/health"): "health", ("GET", "/ready"): "ready",
    ("POST", "/ai/features/ingest"): "ingest", ("POST", "/ai/features/weather"): "ingest_weather",
    ("PUT", "/ai/assets/{asset_id}"): "put_asset", ("GET", "/ai/assets/{asset_id}"): "get_asset",
    ("GET", "/ai/assets"): "list_assets", ("POST", "/ai/features/get"): "get_features",
    ("POST", "/ai/features/get-batch"): "get_features_batch",
    ("POST", "/ai/features/export"): "export_features",
    ("GET", "/ai/features/exports"): "list_exports",
    ("GET", "/ai/features/exports/{export_id}"): "get_export",
    ("GET", "/ai/features/sets"): "feature_sets",
    ("POST", "/ai/features/sets"): "create_feature_set",
    ("GET", "/ai/features/catalog"): "catalog", ("GET", "/ai/features/status"): "status",
    ("POST", "/ai/models/register"): "register", ("GET", "/ai/models/"): "list_models",
    ("GET", "/ai/models/{model_id}"): "get_model",
    ("PUT", "/ai/models/{model_id}/promote"): "promote",
    ("DELETE", "/ai/models/{model_id}"): "delete_model",
    ("GET", "/ai/models/{model_id}/history"): "history",
    ("PUT", "/ai/models/{model_id}/artifact"): "upload_artifact",
    ("GET", "/ai/models/{model_id}/artifact"): "download_artifact",
    ("POST", "/ai/models/{model_id}/predict"): "predict",
}


def test_client_covers_every_route() -> None:
    """Each API route has a client method; a new endpoint without one fails here."""
    routes = {(m, r.path) for r in create_app().routes  # type: ignore[attr-defined]
              for m in getattr(r, "methods", ()) if m != "HEAD"
              and r.path.startswith(("/ai", "/health", "/ready"))}
    assert sorted(routes - set(COVERED)) == []
    assert all(callable(getattr(Client, name)) for name in COVERED.values())
