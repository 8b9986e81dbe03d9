"""The time-series store: assets, readings, hourly rollups and weather.

Frames crossing this interface are Polars with integer epoch-microsecond instants
(``ts``/``hour``, UTC; shapes in ``aihub.features.frames``).

Transactions belong to the caller. A write method (``upsert_asset``, ``ingest_readings``,
``ingest_weather``) runs on a connection the service opened with
``aihub.db.write_transaction`` and commits after it returns, so the write is all or
nothing together with whatever else the service did in that transaction. Each write takes
the locks it needs as its first statements (see the backends): call it before any other
write of the transaction. Reads open connections of their own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import sqlalchemy as sa

from aihub.features.frames import ROLLUP_VALUES

ASSET_KINDS = ("load", "generation")

Progress = Callable[[int], None]

# Hours with current readings known late (after the hour ended, or after a given time) or
# not actual: ``known_at`` and ``first_known`` are the hour's marks (``MARK_SCHEMA``),
# ``estimated`` and ``edited`` are 1 if a current reading of the hour has that quality.
HOUR_MARKS_SCHEMA = {
    "asset_key": pl.Int64,
    "hour": pl.Int64,
    "known_at": pl.Int64,
    "first_known": pl.Int64,
    "estimated": pl.Int64,
    "edited": pl.Int64,
}


@dataclass(frozen=True, slots=True)
class Asset:
    tenant_id: str
    asset_id: str
    timezone: str
    country: str | None
    location_id: str | None
    kind: str
    key: int
    created_at: datetime
    updated_at: datetime
    last_ingest_at: datetime | None
    data_seq: int


@dataclass(frozen=True, slots=True)
class AssetChanges:
    """Fields to set on an asset; ``None`` leaves a field as it is (except when creating).
    ``clear`` names optional fields (country, location_id) to reset to null."""

    timezone: str | None = None
    country: str | None = None
    location_id: str | None = None
    kind: str | None = None
    clear: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    asset_ids: list[str]
    first_ts: int | None
    last_ts: int | None
    seq: int = 0  # the change feed's number for this write (0: nothing was written)


@dataclass(frozen=True, slots=True)
class Change:
    """An asset changed by a committed write: ``seq`` is the change-feed number of the
    last write that changed it (what a cache records as heard, ``OnlineStore.heard``)."""

    tenant_id: str
    asset_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """What ``changes_since`` found, and the cursor to pass to the next call."""

    changes: list[Change]
    cursor: int


@dataclass(frozen=True, slots=True)
class TenantStats:
    assets: int
    readings: int
    rollup_hours: int
    first_ts: int | None
    last_ts: int | None
    last_ingest_at: datetime | None


class TimeSeriesStore(ABC):
    """Assets, readings, rollups and weather of every tenant."""

    # -- assets ---------------------------------------------------------------------------
    @abstractmethod
    def get_assets(self, tenant_id: str, asset_ids: Sequence[str]) -> list[Asset]:
        """The assets that exist among ``asset_ids`` (order not guaranteed)."""

    @abstractmethod
    def list_assets(
        self, tenant_id: str, *, limit: int, offset: int, prefix: str | None = None
    ) -> tuple[list[Asset], int]:
        """A page of a tenant's assets ordered by asset_id (only ids starting with
        ``prefix`` when given), and the total count."""

    @abstractmethod
    def upsert_asset(
        self, conn: sa.Connection, tenant_id: str, asset_id: str, changes: AssetChanges
    ) -> Asset:
        """Create the asset (defaults for unset fields) or update the given fields, in the
        caller's write transaction."""

    @abstractmethod
    def tenant_exists(self, tenant_id: str) -> bool: ...

    # -- writes (in the caller's transaction) ---------------------------------------------
    @abstractmethod
    def ingest_readings(
        self,
        conn: sa.Connection,
        tenant_id: str,
        readings: pl.DataFrame,
        *,
        progress: Progress | None = None,
    ) -> IngestResult:
        """Store readings (``READINGS_SCHEMA``, unique on asset_id+ts, optionally with
        ``known_at``, default now, and ``quality``, default actual) and recompute the
        touched hourly rollups, creating unknown assets with defaults. A changed value of a
        stored ``(asset, ts)`` keeps the older version in the history; the same value
        changes nothing. Rollups always describe the current values."""

    @abstractmethod
    def ingest_weather(
        self, conn: sa.Connection, tenant_id: str, observations: pl.DataFrame
    ) -> IngestResult:
        """Store weather (``WEATHER_SCHEMA``, unique on location_id+ts, optionally with
        ``issued_at``, default now), keeping every version of a ``(location, ts)``;
        ``asset_ids`` of the result are the tenant's assets at those locations."""

    # -- reads ----------------------------------------------------------------------------
    @abstractmethod
    def load_rollups(
        self,
        asset_keys: Sequence[int],
        start: int,
        end: int,
        *,
        columns: Sequence[str] = ROLLUP_VALUES,
    ) -> pl.DataFrame:
        """Hourly rollups with ``start <= hour < end``, sorted by asset and hour:
        ``asset_key``, ``hour`` and the requested ``columns`` of ``ROLLUP_SCHEMA`` (values)
        and ``MARK_SCHEMA`` (the hour's knowledge marks; ``first_known`` always set)."""

    @abstractmethod
    def last_rollup_hour(self, asset_key: int) -> int | None:
        """Start (epoch microseconds) of the asset's last hour with readings, or None."""

    @abstractmethod
    def load_weather(
        self, tenant_id: str, location_ids: Sequence[str], start: int, end: int
    ) -> pl.DataFrame:
        """Weather (``WEATHER_SCHEMA``) with ``start <= ts < end``, sorted by location, ts."""

    @abstractmethod
    def load_reading_versions(
        self, asset_keys: Sequence[int], start: int, end: int
    ) -> pl.DataFrame:
        """Every version, current and superseded, of the readings with ``start <= ts <
        end`` (``READING_VERSIONS_SCHEMA``), sorted by asset, ts, known_at."""

    @abstractmethod
    def load_hour_marks(
        self,
        asset_keys: Sequence[int],
        start: int,
        end: int,
        *,
        known_after: int | None = None,
        origins: Sequence[int] | None = None,
        reach_hours: int = 168,
    ) -> pl.DataFrame:
        """Hours in ``[start, end)`` (``HOUR_MARKS_SCHEMA``, sorted by asset and hour) with
        a reading that is not actual (a target's quality), or whose value "as known" at
        some time can differ from the current rollup: with a current reading known after
        ``known_after``; with ``origins`` (sorted, on hour bounds, the same for every asset),
        known after an origin ``O`` that reads the hour (``t + 1h <= O <= t + reach``); by
        default, known after the hour ended. Read from the marks kept with the rollups."""

    @abstractmethod
    def load_hour_versions(self, hours: pl.DataFrame) -> pl.DataFrame:
        """Every version, current and superseded, of the readings in the given hours
        (``asset_key, hour``, distinct) as ``READING_VERSIONS_SCHEMA``, sorted by asset,
        ts, known_at: the few hours whose value "as known at K" needs them."""

    @abstractmethod
    def load_weather_versions(
        self, tenant_id: str, location_ids: Sequence[str], start: int, end: int
    ) -> pl.DataFrame:
        """Every version of the weather with ``start <= ts < end``
        (``WEATHER_VERSIONS_SCHEMA``), sorted by location, ts, known_at."""

    @abstractmethod
    def load_readings(self, asset_key: int, start: int, end: int) -> pl.DataFrame:
        """Raw readings (``ts``, ``value``) of one asset with ``start <= ts < end``."""

    @abstractmethod
    def asset_keys_with_data(
        self, tenant_id: str, asset_ids: Sequence[str] | None, start: int, end: int
    ) -> list[Asset]:
        """Assets of a tenant (optionally limited to ``asset_ids``) with rollups in range."""

    @abstractmethod
    def tenant_stats(self, tenant_id: str) -> TenantStats: ...

    # -- change feed ----------------------------------------------------------------------
    @abstractmethod
    def changes_since(self, cursor: int | None) -> ChangeBatch:
        """Assets changed by writes (from any process) committed after ``cursor`` was
        handed out. ``None`` asks where to start: the cursor, with the changes committed
        before it that later calls may still return (the caller counts them as seen).

        The guarantee: a write that commits after a call returned ``cursor`` is in the
        result of a later call given that cursor (or one it returned in turn); none is
        ever skipped, whatever the order in which concurrent writes commit. A change may be
        returned again by later calls (the caller skips repeats of the same ``seq``)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise ``BackendUnavailable`` if the store cannot be reached."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def pinned_reads(self) -> AbstractContextManager[None]:
        """A block whose reads (of this thread) may share one connection; by default
        nothing is shared."""
        return nullcontext()

    def few_rows(self) -> AbstractContextManager[None]:
        """A block whose reads (of this thread) return few rows, as an online request's
        do: a backend may read them the way that answers soonest rather than the way that
        streams most rows per second; by default nothing changes."""
        return nullcontext()
