"""Request and response bodies of the model registry (the quick-start's shapes, extended)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aihub.api.schemas.common import FiniteFloat, Name, TenantName, Timestamp

Stage = Literal["staging", "production", "archived"]

_REGISTER_EXAMPLE: dict[str, Any] = {
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


class ModelRegister(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_REGISTER_EXAMPLE]})
    tenant_id: TenantName
    model_name: Name
    version: str = Field(min_length=1, max_length=128,
                         description="'v1.2.3' semver (pre-release/build allowed) or "
                                     "'vYYYYMMDD-HHMMSS'")
    metadata: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, FiniteFloat | None] = Field(default_factory=dict)
    stage: Literal["staging", "production"] = "staging"


class ModelRegistered(BaseModel):
    model_id: str
    tenant_id: str
    model_name: str
    version: str
    stage: str
    status: Literal["registered"] = "registered"
    message: str
    uploaded_at: datetime
    model_size_bytes: int | None
    sha256: str | None


class ModelPublic(BaseModel):
    model_id: str
    tenant_id: str
    model_name: str
    version: str
    stage: str
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    uploaded_at: datetime
    model_size_bytes: int | None
    model_type: str | None
    framework: str | None
    sha256: str | None
    artifact_format: str | None
    artifact_uploaded_at: datetime | None
    stage_changed_at: datetime


class ModelPage(BaseModel):
    models: list[ModelPublic]
    total: int
    limit: int
    offset: int


class ModelPromote(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "target_stage": "production",
            "reason": "Passed validation tests, 5% improvement in RMSE over v0.9.0",
        }]},
    )
    target_stage: Stage
    reason: str | None = Field(default=None, max_length=2000)


class PromotionPublic(BaseModel):
    model_id: str
    model_name: str
    version: str
    previous_stage: str
    current_stage: str
    promoted_at: datetime
    message: str
    archived_model_id: str | None = Field(
        default=None, description="The production version this promotion archived")


class ModelDeleted(BaseModel):
    model_id: str
    deleted: bool
    stage: str
    artifact_removed: bool
    message: str


class TransitionPublic(BaseModel):
    from_stage: str | None
    to_stage: str
    reason: str | None
    at: datetime


class HistoryPublic(BaseModel):
    model_id: str
    stage: str
    transitions: list[TransitionPublic]


class ArtifactPublic(BaseModel):
    model_id: str
    model_size_bytes: int
    sha256: str
    format: str | None


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"rows": [{"hour_of_day": 12, "lag_24h": 44.8}]},
            {"asset_ids": ["meter-001"], "feature_set": "forecast_basic",
             "as_of": "2025-10-09T12:00:00Z"},
        ]},
    )
    rows: list[dict[str, FiniteFloat | None]] | None = Field(default=None, max_length=100_000)
    asset_ids: list[Name] | None = Field(default=None, min_length=1, max_length=1000)
    feature_set: Name | None = None
    lookback_hours: int = Field(default=168, ge=1)
    as_of: Timestamp | None = None
    horizons: list[int] | dict[str, int] | None = Field(
        default=None,
        description="With asset_ids: forecast every target as_of + h (the origin is as_of, "
        'default the current hour); a list or {"min": a, "max": b}, each in 0..168',
    )
    as_known: str | None = Field(
        default=None, max_length=64,
        description='"latest" (default), "origin" or an ISO time K: which versions of the '
        "data the features see",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PredictRequest:
        if (self.rows is None) == (self.asset_ids is None):
            raise ValueError("give either 'rows' or 'asset_ids' (with 'feature_set')")
        if self.asset_ids is not None and self.feature_set is None:
            raise ValueError("'asset_ids' needs 'feature_set'")
        if self.rows is not None and (self.horizons is not None or self.as_known is not None):
            raise ValueError("'horizons' and 'as_known' go with 'asset_ids'")
        return self


class HorizonPredictionRow(BaseModel):
    asset_id: str
    timestamp: datetime
    horizon: int
    prediction: float | None


class HorizonPredictionPublic(BaseModel):
    model_id: str
    version: str
    origin: datetime
    predictions: list[HorizonPredictionRow]


class PredictionPublic(BaseModel):
    model_id: str
    version: str
    predictions: list[float | None]
    asset_ids: list[str] | None = None
    timestamp: datetime | None = None
