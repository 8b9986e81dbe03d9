"""Monitoring fixtures: tenant ``t1`` with two meters of hourly readings and registered
LightGBM versions of ``t1:load`` over forecast_basic features."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from aihub.services.container import Services
from tests.factories import ingest, readings
from tests.registry.models import lightgbm_text, register_body

TENANT = "t1"
NAME = "load"
DAYS = 10

Register = Callable[..., str]


def load(h: float, scale: float = 1.0) -> float:
    return scale * (40 + 5 * np.sin(h / 4))


@pytest.fixture
def register(client: TestClient) -> Register:
    """Register ``version`` of t1:load (with its artifact unless ``artifact=False``)."""

    def _register(version: str = "v1.0.0", *, artifact: bool = True, seed: int = 0,
                  stage: str = "staging") -> str:
        r = client.post("/ai/models/register",
                        json=register_body(version, tenant=TENANT, name=NAME, stage="staging"))
        assert r.status_code == 201, r.text
        model_id = str(r.json()["model_id"])
        if artifact:
            up = client.put(f"/ai/models/{model_id}/artifact",
                            content=lightgbm_text(n_estimators=20 + seed, seed=seed))
            assert up.status_code == 200, up.text
        if stage != "staging":
            p = client.put(f"/ai/models/{model_id}/promote", json={"target_stage": stage})
            assert p.status_code == 200, p.text
        return model_id

    return _register


@pytest.fixture
def meters(client: TestClient) -> list[str]:
    for asset, scale in (("meter-a", 1.0), ("meter-b", 2.0)):
        ingest(client, TENANT, readings(asset, range(24 * DAYS), lambda h, s=scale: load(h, s)))
    return ["meter-a", "meter-b"]


def logged(services: Services, model_id: str) -> pl.DataFrame:
    """The version's logged rows after the queued log is written."""
    services.prediction_log.flush()
    version = services.registry.get(model_id)
    return services.prediction_log.store.rows(version.id)


def rows_of(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()
