"""The Python client of an aihub server (httpx, synchronous).

    from aihub import Client

    with Client("http://localhost:8003") as hub:
        hub.register_model(booster, tenant_id="tenant-123", model_name="forecast_lgb",
                           version="v1.0.0", metrics={"rmse": 2.5})
        hub.promote("tenant-123:forecast_lgb:v1.0.0", "production", reason="better rmse")
        hub.predict("tenant-123:forecast_lgb:production", rows=[{...}])

Errors come back as the service's own types (``aihub.errors``): ``NotFound``,
``Conflict``, ``InvalidInput``, ... with the server's message and details.
"""

from __future__ import annotations

from aihub.client.base import BaseClient
from aihub.client.features import FeaturesMixin
from aihub.client.models import ModelsMixin
from aihub.client.monitoring import MonitoringMixin


class Client(FeaturesMixin, ModelsMixin, MonitoringMixin, BaseClient):
    """Every feature-store, model-registry and monitoring endpoint, one method each."""


__all__ = ["Client"]
