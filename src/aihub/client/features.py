"""Client methods for the feature store endpoints."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from aihub import errors
from aihub.client.base import BaseClient, drop_none, error_from_response, iso


class FeaturesMixin(BaseClient):
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")  # type: ignore[no-any-return]

    def ready(self) -> dict[str, Any]:
        """Backend checks; a degraded server raises ``BackendUnavailable``."""
        return self._json("GET", "/ready")  # type: ignore[no-any-return]

    def ingest(self, tenant_id: str, readings: Sequence[dict[str, Any]]) -> dict[str, Any]:
        rows = [{**r, "ts": iso(r["ts"])} for r in readings]
        return self._json("POST", "/ai/features/ingest",  # type: ignore[no-any-return]
                          json={"tenant_id": tenant_id, "readings": rows})

    def ingest_weather(self, tenant_id: str, observations: Sequence[dict[str, Any]]
                       ) -> dict[str, Any]:
        rows = [{**r, "ts": iso(r["ts"])} for r in observations]
        return self._json("POST", "/ai/features/weather",  # type: ignore[no-any-return]
                          json={"tenant_id": tenant_id, "observations": rows})

    def put_asset(self, tenant_id: str, asset_id: str, *, timezone: str | None = None,
                  country: str | None = None, location_id: str | None = None,
                  kind: str | None = None) -> dict[str, Any]:
        body = drop_none(timezone=timezone, country=country, location_id=location_id, kind=kind)
        return self._json("PUT", f"/ai/assets/{asset_id}",  # type: ignore[no-any-return]
                          params={"tenant_id": tenant_id}, json=body)

    def get_asset(self, tenant_id: str, asset_id: str) -> dict[str, Any]:
        return self._json("GET", f"/ai/assets/{asset_id}",  # type: ignore[no-any-return]
                          params={"tenant_id": tenant_id})

    def list_assets(self, tenant_id: str, *, limit: int = 100, offset: int = 0
                    ) -> dict[str, Any]:
        return self._json("GET", "/ai/assets",  # type: ignore[no-any-return]
                          params={"tenant_id": tenant_id, "limit": limit, "offset": offset})

    def get_features(self, tenant_id: str, asset_id: str, *,
                     feature_set: str = "forecast_basic", lookback_hours: int = 168,
                     as_of: datetime | str | None = None) -> dict[str, Any]:
        body = drop_none(tenant_id=tenant_id, asset_id=asset_id, feature_set=feature_set,
                         lookback_hours=lookback_hours, as_of=iso(as_of))
        return self._json("POST", "/ai/features/get", json=body)  # type: ignore[no-any-return]

    def get_features_batch(self, tenant_id: str, asset_ids: Sequence[str], *,
                           feature_set: str = "forecast_basic", lookback_hours: int = 168,
                           as_of: datetime | str | None = None) -> dict[str, Any]:
        body = drop_none(tenant_id=tenant_id, asset_ids=list(asset_ids),
                         feature_set=feature_set, lookback_hours=lookback_hours,
                         as_of=iso(as_of))
        return self._json("POST", "/ai/features/get-batch",  # type: ignore[no-any-return]
                          json=body)

    def export_features(self, tenant_id: str, *, start_time: datetime | str,
                        end_time: datetime | str, feature_set: str = "forecast_basic",
                        asset_ids: Sequence[str] | None = None, lookback_hours: int = 168,
                        wait: bool = True) -> dict[str, Any]:
        """``wait=False`` returns the running record at once; poll ``get_export``."""
        body = drop_none(tenant_id=tenant_id, feature_set=feature_set,
                         start_time=iso(start_time), end_time=iso(end_time),
                         asset_ids=list(asset_ids) if asset_ids is not None else None,
                         lookback_hours=lookback_hours, wait=wait)
        return self._json("POST", "/ai/features/export",  # type: ignore[no-any-return]
                          json=body)

    def list_exports(self, tenant_id: str | None = None, *, limit: int = 100, offset: int = 0
                     ) -> dict[str, Any]:
        params = drop_none(tenant_id=tenant_id, limit=limit, offset=offset)
        return self._json("GET", "/ai/features/exports",  # type: ignore[no-any-return]
                          params=params)

    def get_export(self, export_id: str) -> dict[str, Any]:
        return self._json("GET", f"/ai/features/exports/{export_id}")  # type: ignore[no-any-return]

    def download_export(self, export_id: str, dest_path: str | os.PathLike[str], *,
                        part: int | None = None) -> Path:
        """Stream an export's Parquet file (``part`` N of a dataset export) to
        ``dest_path``, written whole or not at all; returns the path."""
        dest = Path(dest_path)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
        params = drop_none(part=part)
        url = f"/ai/features/exports/{export_id}/file"
        try:
            with self._http.stream("GET", url, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                with tmp.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.TransportError as exc:
            tmp.unlink(missing_ok=True)
            raise errors.BackendUnavailable("aihub server",
                                            str(exc) or type(exc).__name__) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(dest)
        return dest

    def feature_sets(self, tenant_id: str | None = None) -> dict[str, Any]:
        return self._json("GET", "/ai/features/sets",  # type: ignore[no-any-return]
                          params=drop_none(tenant_id=tenant_id))

    def create_feature_set(self, tenant_id: str, name: str, features: Sequence[str], *,
                           description: str = "", use_cases: Sequence[str] = ()
                           ) -> dict[str, Any]:
        body = {"tenant_id": tenant_id, "name": name, "description": description,
                "features": list(features), "use_cases": list(use_cases)}
        return self._json("POST", "/ai/features/sets", json=body)  # type: ignore[no-any-return]

    def catalog(self) -> list[dict[str, Any]]:
        return self._json("GET", "/ai/features/catalog")  # type: ignore[no-any-return]

    def status(self, tenant_id: str) -> dict[str, Any]:
        return self._json("GET", "/ai/features/status",  # type: ignore[no-any-return]
                          params={"tenant_id": tenant_id})
