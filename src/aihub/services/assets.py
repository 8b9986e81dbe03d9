"""Assets (timezone, country, weather location, kind) and a tenant's store status.

An asset edit is one write transaction that this service opens; the cached online
features of the asset are dropped after it commits (calendar and weather features depend
on what changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import holidays
import sqlalchemy as sa

from aihub.db import write_transaction
from aihub.errors import InvalidInput, NotFound
from aihub.names import check_name
from aihub.stores.metadata.exports import ExportRecord, ExportStore
from aihub.stores.online.base import OnlineStore, cache_key
from aihub.stores.timeseries.base import Asset, AssetChanges, TimeSeriesStore
from aihub.timeutil import from_us, is_valid_timezone

_REQUIRED = ("timezone", "kind")


@dataclass(frozen=True, slots=True)
class TenantStatus:
    tenant_id: str
    assets: int
    readings: int
    rollup_hours: int
    first_reading: datetime | None
    last_reading: datetime | None
    last_ingest_at: datetime | None
    last_export: ExportRecord | None


class AssetService:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        store: TimeSeriesStore,
        online: OnlineStore,
        exports: ExportStore,
    ) -> None:
        self.engine = engine
        self.store = store
        self.online = online
        self.exports = exports

    def get(self, tenant_id: str, asset_id: str) -> Asset:
        check_name(tenant_id, "tenant_id")
        check_name(asset_id, "asset_id")
        found = self.store.get_assets(tenant_id, [asset_id])
        if not found:
            raise NotFound(f"unknown asset '{asset_id}' for tenant '{tenant_id}'")
        return found[0]

    def list(
        self, tenant_id: str, *, limit: int, offset: int, prefix: str | None = None
    ) -> tuple[list[Asset], int]:
        check_name(tenant_id, "tenant_id")
        return self.store.list_assets(tenant_id, limit=limit, offset=offset, prefix=prefix)

    def put(self, tenant_id: str, asset_id: str, changes: AssetChanges) -> Asset:
        """Create the asset or change the given fields (``changes.clear`` names optional
        fields to reset); the asset's cached features are dropped once committed."""
        check_name(tenant_id, "tenant_id")
        check_name(asset_id, "asset_id")
        self._check(changes)
        with write_transaction(self.engine) as conn:
            asset = self.store.upsert_asset(conn, tenant_id, asset_id, changes)
        # After the commit: a reader that filled the cache before it is dropped now.
        self.online.invalidate([cache_key(tenant_id, asset_id)], seq=asset.data_seq or None)
        return asset

    def status(self, tenant_id: str) -> TenantStatus:
        """Assets, readings, first/last reading, last ingest and last export of a tenant."""
        check_name(tenant_id, "tenant_id")
        if not self.store.tenant_exists(tenant_id):
            raise NotFound(f"unknown tenant '{tenant_id}'")
        stats = self.store.tenant_stats(tenant_id)
        with self.engine.connect() as conn:
            last = self.exports.last(conn, tenant_id)
        return TenantStatus(
            tenant_id=tenant_id,
            assets=stats.assets,
            readings=stats.readings,
            rollup_hours=stats.rollup_hours,
            first_reading=from_us(stats.first_ts) if stats.first_ts is not None else None,
            last_reading=from_us(stats.last_ts) if stats.last_ts is not None else None,
            last_ingest_at=stats.last_ingest_at,
            last_export=last,
        )

    @staticmethod
    def _check(changes: AssetChanges) -> None:
        required = sorted(set(_REQUIRED) & changes.clear)
        if required:
            raise InvalidInput(f"{required[0]}: cannot be null")
        if changes.timezone is not None and not is_valid_timezone(changes.timezone):
            raise InvalidInput(f"timezone: '{changes.timezone}' is not an IANA timezone name")
        if (changes.country is not None
                and changes.country not in holidays.list_supported_countries()):
            raise InvalidInput(
                f"country: '{changes.country}' is not a country with a holiday calendar"
            )
        if changes.location_id is not None:
            check_name(changes.location_id, "location_id")
