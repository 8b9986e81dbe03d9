"""Request and response bodies of forecast monitoring (DESIGN.md "Forecast monitoring")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aihub.api.schemas.common import FiniteFloat, Name, Timestamp

GroupBy = Literal["none", "horizon", "asset", "day"]


class ExternalForecast(BaseModel):
    model_config = ConfigDict(extra="forbid")
    asset_id: Name
    origin: Timestamp
    timestamp: Timestamp
    value: FiniteFloat


class ExternalForecasts(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"predictions": [
            {"asset_id": "meter-001", "origin": "2025-10-09T10:00:00Z",
             "timestamp": "2025-10-10T14:00:00Z", "value": 41.2}]}]},
    )
    predictions: list[ExternalForecast] = Field(min_length=1, max_length=100_000)


class Accepted(BaseModel):
    accepted: int


class LoggedForecast(BaseModel):
    origin: datetime
    timestamp: datetime = Field(description="the target hour T")
    horizon: int
    prediction: float | None
    actual: float | None = Field(description="L(T) as known now; null until it arrives")
    source: str = Field(description="predict, shadow or external")


class LoggedForecastPage(BaseModel):
    model_id: str
    asset_id: str
    predictions: list[LoggedForecast]
    total: int
    limit: int
    offset: int


class Skill(BaseModel):
    persistence: float | None
    seasonal_naive: float | None


class Coverage(BaseModel):
    predicted: int
    with_actual: int


class ScoreGroup(BaseModel):
    key: int | str | None
    n: int
    mae: float | None
    rmse: float | None
    bias: float | None
    nmae: float | None
    nrmse: float | None
    mape: float | None
    mape_n: int
    skill: Skill


class PerformancePublic(BaseModel):
    model_id: str
    start: datetime | None
    end: datetime | None
    group_by: GroupBy
    coverage: Coverage
    groups: list[ScoreGroup]


class VersionScore(BaseModel):
    model_id: str
    stage: str
    n: int
    mae: float | None
    rmse: float | None
    bias: float | None
    nmae: float | None
    skill: Skill


class ComparisonPublic(BaseModel):
    common_rows: int
    versions: list[VersionScore]


class ShadowSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class ShadowPublic(BaseModel):
    model_id: str
    stage: str
    shadow: bool


class FeatureDrift(BaseModel):
    psi: float | None
    null_rate_train: float
    null_rate_served: float | None
    drifted: bool


class DriftPublic(BaseModel):
    model_id: str
    export_id: str
    start: datetime | None
    end: datetime | None
    served_rows: int
    features: dict[str, FeatureDrift]
