"""The quick-start's Model Registry curl examples and its training-pipeline script, over
real HTTP against a live server."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from aihub.demo.generator import DemoSpec
from aihub.demo.loader import load_demo
from aihub.services.container import Services
from tests.conftest import LiveServer
from tests.registry.models import lightgbm_text

REGISTER = {  # the quick-start's body, verbatim
    "tenant_id": "tenant-123",
    "model_name": "forecast_lgb",
    "version": "v1.0.0",
    "metadata": {
        "model_type": "LightGBM",
        "framework": "lightgbm",
        "hyperparameters": {"num_leaves": 31, "learning_rate": 0.05, "n_estimators": 100},
        "feature_names": ["hour", "temp", "humidity", "lag_24h"],
        "description": "Production load forecasting model",
    },
    "metrics": {"rmse": 2.5, "mae": 1.8, "r2_score": 0.92, "mape": 4.2},
    "stage": "staging",
}
PROMOTE = {
    "target_stage": "production",
    "reason": "Passed validation tests, 5% improvement in RMSE over v0.9.0",
}
MID = "tenant-123:forecast_lgb:v1.0.0"


def test_quickstart_registry_examples(http: httpx.Client) -> None:
    # 1. Register
    r = http.post("/ai/models/register", json=REGISTER)
    assert r.status_code == 201
    body = r.json()
    assert {k: body[k] for k in ("model_id", "model_name", "version", "stage", "status")} == {
        "model_id": MID, "model_name": "forecast_lgb", "version": "v1.0.0",
        "stage": "staging", "status": "registered"}
    # 2. Details
    details = http.get(f"/ai/models/{MID}").json()
    assert details["metadata"]["hyperparameters"]["num_leaves"] == 31
    assert details["metrics"]["r2_score"] == 0.92
    assert details["model_type"] == "LightGBM"
    for key in ("model_id", "tenant_id", "model_name", "version", "stage", "metadata",
                "metrics", "uploaded_at", "model_size_bytes"):
        assert key in details
    # 3. List, the three forms
    assert http.get("/ai/models/?tenant_id=tenant-123").json()["total"] == 1
    assert http.get("/ai/models/?stage=production").json()["total"] == 0
    listed = http.get("/ai/models/?tenant_id=tenant-123&model_name=forecast_lgb").json()
    assert [m["model_id"] for m in listed["models"]] == [MID]
    # the predecessor the promotion reason mentions, in production
    old = {**REGISTER, "version": "v0.9.0"}
    assert http.post("/ai/models/register", json=old).status_code == 201
    for mid in ("tenant-123:forecast_lgb:v0.9.0", MID):  # 6. the artifact upload
        assert http.put(f"/ai/models/{mid}/artifact", content=lightgbm_text()).status_code == 200
    http.put("/ai/models/tenant-123:forecast_lgb:v0.9.0/promote",
             json={"target_stage": "production"})
    # 4. Promote
    r = http.put(f"/ai/models/{MID}/promote", json=PROMOTE)
    assert r.status_code == 200
    p = r.json()
    assert (p["previous_stage"], p["current_stage"]) == ("staging", "production")
    assert p["message"].startswith("Model promoted from staging to production")
    assert p["archived_model_id"] == "tenant-123:forecast_lgb:v0.9.0"
    assert http.get("/ai/models/?stage=production").json()["total"] == 1
    # 5. Delete: the archived one safely, the production one only with force
    assert http.delete("/ai/models/tenant-123:forecast_lgb:v0.9.0").status_code == 200
    assert http.delete(f"/ai/models/{MID}").status_code == 409
    assert http.delete(f"/ai/models/{MID}?force=true").status_code == 200
    assert http.get("/ai/models/?tenant_id=tenant-123").json()["total"] == 0


@pytest.mark.slow
def test_training_pipeline_script_runs_unchanged(services: Services, live_server: LiveServer,
                                                 http: httpx.Client, tmp_path: Path) -> None:
    load_demo(services, DemoSpec(assets=2, start=datetime(2024, 1, 1, tzinfo=UTC),
                                 hours=24 * 340))
    script = (Path(__file__).parent / "quickstart_training.py").read_text()
    # The one deployment detail: the server's address.
    run = tmp_path / "train.py"
    run.write_text(script.replace("http://localhost:8003", live_server.url))
    done = subprocess.run([sys.executable, str(run)], capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Model registered: tenant-123:forecast_lgb:v" in done.stdout
    model_id = done.stdout.strip().rsplit(" ", 1)[-1]
    model = http.get(f"/ai/models/{model_id}").json()
    assert model["metadata"]["feature_names"] == ["hour_of_day", "temperature", "lag_24h",
                                                  "rolling_24h_avg"]
    assert model["metadata"]["training_samples"] > 10_000
    assert 0.5 < model["metrics"]["r2_score"] <= 1.0
