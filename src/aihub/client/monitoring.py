"""Client methods for forecast monitoring: external forecasts, scores, shadows, drift."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aihub.client.base import BaseClient, drop_none, iso


def _mid(model_id: str) -> str:
    return quote(model_id, safe=":")


class MonitoringMixin(BaseClient):
    def log_predictions(self, model_id: str,
                        predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Log forecasts made elsewhere under an existing version: each
        ``{"asset_id", "origin", "timestamp", "value"}`` (datetimes or ISO strings)."""
        body = {"predictions": [{k: iso(v) for k, v in p.items()} for p in predictions]}
        return self._json("POST",  # type: ignore[no-any-return]
                          f"/ai/models/{_mid(model_id)}/predictions", json=body)

    def logged_predictions(self, model_id: str, asset_id: str, *,
                           start: datetime | str | None = None,
                           end: datetime | str | None = None, limit: int = 1000,
                           offset: int = 0) -> dict[str, Any]:
        """One asset's logged forecasts of a version (target in ``[start, end)``), each
        with its origin, horizon and the actual as known now; a page of ``limit``."""
        params = drop_none(asset_id=asset_id, start=iso(start), end=iso(end), limit=limit,
                           offset=offset)
        return self._json("GET",  # type: ignore[no-any-return]
                          f"/ai/models/{_mid(model_id)}/predictions", params=params)

    def performance(self, model_id: str, *, group_by: str = "none",
                    start: datetime | str | None = None,
                    end: datetime | str | None = None) -> dict[str, Any]:
        """Scores of a version's logged forecasts (group_by none, horizon, asset, day)."""
        params = drop_none(group_by=group_by, start=iso(start), end=iso(end))
        return self._json("GET",  # type: ignore[no-any-return]
                          f"/ai/models/{_mid(model_id)}/performance", params=params)

    def compare_versions(self, tenant_id: str, model_name: str, *,
                         start: datetime | str | None = None,
                         end: datetime | str | None = None) -> dict[str, Any]:
        """Every version of a model scored on the rows all of them predicted."""
        params = drop_none(tenant_id=tenant_id, model_name=model_name, start=iso(start),
                           end=iso(end))
        return self._json("GET", "/ai/models/performance",  # type: ignore[no-any-return]
                          params=params)

    def set_shadow(self, model_id: str, enabled: bool = True) -> dict[str, Any]:
        """Run a staging version in the shadow of production (or stop it)."""
        return self._json("PUT",  # type: ignore[no-any-return]
                          f"/ai/models/{_mid(model_id)}/shadow", json={"enabled": enabled})

    def drift(self, model_id: str, *, start: datetime | str | None = None,
              end: datetime | str | None = None) -> dict[str, Any]:
        """Served features against the version's training export (PSI, null rates)."""
        params = drop_none(start=iso(start), end=iso(end))
        return self._json("GET",  # type: ignore[no-any-return]
                          f"/ai/models/{_mid(model_id)}/drift", params=params)
