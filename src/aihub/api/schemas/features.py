"""Request and response bodies of the feature-store endpoints (the quick-start's shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aihub.api.schemas.common import FiniteFloat, Name, TenantName, Timestamp

_STRICT = ConfigDict(extra="forbid")

Horizons = list[int] | dict[str, int]
AsKnownField = Annotated[
    str | None,
    Field(
        description='"latest" (default: everything stored now), "origin" (each row as '
        "known at its own origin) or an ISO timestamp K (the data as it stood at K)",
        max_length=64,
    ),
]


class ReadingIn(BaseModel):
    model_config = _STRICT
    asset_id: Name
    ts: Timestamp
    value: FiniteFloat
    known_at: Timestamp | None = Field(
        default=None, description="When this value became known (default: the batch's)"
    )
    quality: Literal["actual", "estimated", "edited"] | None = None


class ReadingsHead(BaseModel):
    """The top-level fields of a readings batch, without the rows (which the route parses
    into columns: ``aihub.services.columns``)."""

    model_config = _STRICT
    tenant_id: TenantName
    known_at: Timestamp | None = Field(
        default=None,
        description="Knowledge time of every row that gives none (default: commit time); "
        "at most 5 minutes in the future",
    )


class ReadingsIngest(ReadingsHead):
    """A readings batch as JSON (the schema shown in the API docs)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "tenant-123",
                    "readings": [
                        {"asset_id": "meter-001", "ts": "2024-01-01T00:15:00Z", "value": 1.5},
                        {"asset_id": "meter-001", "ts": "2024-01-01T00:30:00Z", "value": 1.7},
                    ],
                }
            ]
        },
    )
    readings: list[ReadingIn] = Field(min_length=1)


class IngestPublic(BaseModel):
    tenant_id: str
    accepted: int
    assets: list[str]
    first_ts: datetime | None
    last_ts: datetime | None


class WeatherIn(BaseModel):
    model_config = _STRICT
    location_id: Name
    ts: Timestamp
    temperature: FiniteFloat | None = None
    humidity: FiniteFloat | None = None
    wind_speed: FiniteFloat | None = None
    solar_irradiance: FiniteFloat | None = None
    cloud_cover: FiniteFloat | None = None
    issued_at: Timestamp | None = Field(
        default=None, description="When this value was issued (default: the batch's)"
    )


class WeatherHead(BaseModel):
    """The top-level fields of a weather batch, without the observations."""

    model_config = _STRICT
    tenant_id: TenantName
    issued_at: Timestamp | None = Field(
        default=None,
        description="Issue time (knowledge time) of every row that gives none: a "
        "forecast's issue time, default commit time; at most 5 minutes in the future",
    )


class WeatherIngest(WeatherHead):
    """A weather batch as JSON (the schema shown in the API docs)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "tenant-123",
                    "observations": [
                        {
                            "location_id": "berlin",
                            "ts": "2024-01-01T00:00:00Z",
                            "temperature": 4.2,
                            "humidity": 80,
                        }
                    ],
                }
            ]
        },
    )
    observations: list[WeatherIn] = Field(min_length=1)


class WeatherIngestPublic(BaseModel):
    tenant_id: str
    accepted: int


class FeatureGet(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "tenant-123",
                    "asset_id": "meter-001",
                    "feature_set": "forecast_basic",
                    "lookback_hours": 168,
                }
            ]
        },
    )
    tenant_id: TenantName
    asset_id: Name
    feature_set: Name = "forecast_basic"
    lookback_hours: int = Field(default=168, ge=1)
    as_of: Timestamp | None = Field(default=None, description="Hour H to describe (floored)")
    horizons: Horizons | None = Field(
        default=None,
        description="Target hours T = as_of + h (h in 0..168): the origin is as_of. A list or "
        '{"min": a, "max": b}; the answer then has one row per horizon',
    )
    as_known: AsKnownField = None


class FeaturesPublic(BaseModel):
    tenant_id: str
    asset_id: str
    feature_set: str
    timestamp: datetime
    lookback_hours: int
    features: dict[str, float | int | None]
    feature_count: int
    computed_at: datetime


class FeatureGetBatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "tenant-123",
                    "asset_ids": ["meter-001", "meter-002"],
                    "feature_set": "forecast_basic",
                    "lookback_hours": 168,
                }
            ]
        },
    )
    tenant_id: TenantName
    asset_ids: list[Name] = Field(min_length=1, max_length=1000)
    feature_set: Name = "forecast_basic"
    lookback_hours: int = Field(default=168, ge=1)
    as_of: Timestamp | None = None
    horizons: Horizons | None = None
    as_known: AsKnownField = None


class FeatureBatchPublic(BaseModel):
    tenant_id: str
    feature_set: str
    timestamp: datetime
    results: list[FeaturesPublic]


class ExportOrigins(BaseModel):
    model_config = _STRICT
    every_hours: int = Field(default=1, description="Divides 24")
    at: str = Field(default="00:00", description="Local time HH:MM of the first origin")
    timezone: str = Field(default="UTC", max_length=64)


class ExportCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "tenant-123",
                    "feature_set": "forecast_basic",
                    "start_time": "2024-01-01T00:00:00Z",
                    "end_time": "2024-12-31T23:59:59Z",
                    "asset_ids": ["meter-001", "meter-002", "meter-003"],
                }
            ]
        },
    )
    tenant_id: TenantName
    feature_set: Name = "forecast_basic"
    start_time: Timestamp
    end_time: Timestamp
    asset_ids: list[Name] | None = Field(default=None, min_length=1, max_length=100_000)
    lookback_hours: int = Field(default=168, ge=1)
    origins: ExportOrigins | None = Field(
        default=None,
        description="Forecast origins in [start_time, end_time): every `every_hours` from "
        "local `at` in `timezone` (DST-aware). Default: every hour",
    )
    horizons: Horizons | None = Field(
        default=None, description='Hours ahead of each origin: a list or {"min": a, "max": b}'
    )
    as_known: AsKnownField = None
    wait: bool = Field(
        default=True,
        description="true: answer when the file is written (200). false: answer at once with "
        "the running record (202) and poll GET /ai/features/exports/{export_id}",
    )


class ExportPart(BaseModel):
    path: str  # relative to the export's storage_path (a dataset directory)
    rows: int
    bytes: int


class ExportPublic(BaseModel):
    export_id: str
    tenant_id: str
    feature_set: str
    status: Literal["running", "completed", "failed"]
    storage_path: str | None
    row_count: int | None
    file_size_bytes: int | None
    file_size_mb: float | None
    message: str | None
    start_time: datetime
    end_time: datetime
    asset_ids: list[str] | None
    lookback_hours: int
    options: dict[str, Any] | None = Field(
        default=None, description="origins, horizons and as_known of the request, if any"
    )
    created_at: datetime
    completed_at: datetime | None
    # A dataset export (run on an executor): its Parquet parts; null for a single file.
    parts: list[ExportPart] | None = None


class ExportPage(BaseModel):
    exports: list[ExportPublic]
    total: int
    limit: int
    offset: int


class FeatureSetCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tenant_id": "tenant-123",
                    "name": "solar_day_ahead",
                    "description": "Generation forecasting with irradiance",
                    "features": ["hour_of_day", "lag_24h", "solar_irradiance", "cloud_cover"],
                    "use_cases": ["Generation forecasting"],
                }
            ]
        },
    )
    tenant_id: TenantName
    name: Name
    description: str = Field(default="", max_length=2000)
    features: list[str] = Field(min_length=1, max_length=100)
    use_cases: list[str] = Field(default_factory=list, max_length=20)


class FeatureSetsPublic(BaseModel):
    feature_sets: dict[str, dict[str, Any]]


class CatalogFeature(BaseModel):
    name: str
    kind: str
    description: str
    horizon_hours: int
    dtype: str


class AssetUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Europe/Berlin",
                    "country": "DE",
                    "location_id": "berlin",
                    "kind": "load",
                }
            ]
        },
    )
    timezone: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2,3}$")
    location_id: Name | None = None
    kind: Literal["load", "generation"] | None = None


class AssetPublic(BaseModel):
    tenant_id: str
    asset_id: str
    timezone: str
    country: str | None
    location_id: str | None
    kind: str
    created_at: datetime
    updated_at: datetime
    last_ingest_at: datetime | None


class AssetPage(BaseModel):
    assets: list[AssetPublic]
    total: int
    limit: int
    offset: int


class SeriesPublic(BaseModel):
    tenant_id: str
    asset_id: str
    start: datetime
    end: datetime
    count: int
    last_hour: int | None = Field(
        description="epoch seconds (UTC) of the asset's last hour with readings, any range")
    hour: list[int] = Field(description="epoch seconds (UTC) of each hour's start")
    mean: list[float]
    min: list[float]
    max: list[float]
    n: list[int]


class StatusPublic(BaseModel):
    tenant_id: str
    assets: int
    readings: int
    rollup_hours: int
    first_reading: datetime | None
    last_reading: datetime | None
    last_ingest_at: datetime | None
    rollups_fresh: bool
    last_export: ExportPublic | None
