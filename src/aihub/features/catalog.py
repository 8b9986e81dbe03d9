"""The feature catalog and the built-in feature sets.

A feature row is keyed by ``(asset, H)``, ``H`` an hour boundary, and describes what was
knowable at ``H``: load features read only hours before ``H``. ``judges_hour`` features
(the anomaly set) describe hour ``H`` itself from its own readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["calendar", "load", "weather", "judged"]


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    kind: Kind
    description: str
    # How many hours before H its inputs reach; a lookback shorter than this makes it null.
    horizon_hours: int = 0
    dtype: Literal["int", "float"] = "float"

    @property
    def judges_hour(self) -> bool:
        return self.kind == "judged"


def _lag(hours: int) -> Feature:
    return Feature(f"lag_{hours}h", "load", f"Hourly mean load {hours} h before H", hours)


CATALOG: dict[str, Feature] = {
    f.name: f
    for f in [
        Feature(
            "hour_of_day", "calendar", "Hour of H in the asset's local time (0-23)", dtype="int"
        ),
        Feature(
            "day_of_week", "calendar", "Weekday of H, local time (0=Monday..6=Sunday)", dtype="int"
        ),
        Feature(
            "is_weekend", "calendar", "1 if H falls on Saturday or Sunday locally", dtype="int"
        ),
        Feature("month", "calendar", "Month of H in local time (1-12)", dtype="int"),
        Feature(
            "is_holiday",
            "calendar",
            "1 if H's local date is a public holiday in the "
            "asset's country (null without a country)",
            dtype="int",
        ),
        _lag(1),
        _lag(24),
        _lag(48),
        _lag(168),
        Feature("rolling_24h_avg", "load", "Mean of hourly means in [H-24h, H)", 24),
        Feature("rolling_24h_std", "load", "Sample std of hourly means in [H-24h, H)", 24),
        Feature("rolling_168h_avg", "load", "Mean of hourly means in [H-168h, H)", 168),
        Feature("rolling_168h_std", "load", "Sample std of hourly means in [H-168h, H)", 168),
        Feature(
            "hourly_avg",
            "load",
            "Mean of the same hour on the 7 previous days (L(H-24h*k), k=1..7)",
            168,
        ),
        Feature("hourly_std", "load", "Sample std of the same hour on the 7 previous days", 168),
        Feature("temperature", "weather", "Air temperature valid at H (deg C)"),
        Feature("humidity", "weather", "Relative humidity valid at H (%)"),
        Feature("wind_speed", "weather", "Wind speed valid at H (m/s)"),
        Feature("solar_irradiance", "weather", "Solar irradiance valid at H (W/m2)"),
        Feature("cloud_cover", "weather", "Cloud cover valid at H (%)"),
        Feature("value", "judged", "Mean load of hour H itself (the hour being judged)"),
        Feature("hourly_min", "judged", "Smallest raw reading within hour H"),
        Feature("hourly_max", "judged", "Largest raw reading within hour H"),
        Feature("z_score_24h", "judged", "(value - rolling_24h_avg) / rolling_24h_std", 24),
        Feature("deviation_from_lag_168h", "judged", "value - lag_168h", 168),
    ]
}

# Weather observations older than this at H are not "valid at H".
WEATHER_MAX_AGE_HOURS = 3


@dataclass(frozen=True, slots=True)
class FeatureSet:
    name: str
    description: str
    features: tuple[str, ...]
    use_cases: tuple[str, ...] = ()
    builtin: bool = False

    @property
    def judges_hour(self) -> bool:
        """True for sets that judge hour H (anomaly detection) rather than forecast it."""
        return any(CATALOG[f].judges_hour for f in self.features)

    @property
    def has_target(self) -> bool:
        return not self.judges_hour

    @property
    def horizon_hours(self) -> int:
        return max((CATALOG[f].horizon_hours for f in self.features), default=0)


_FORECAST_BASIC = (
    "hour_of_day",
    "day_of_week",
    "is_weekend",
    "hourly_avg",
    "hourly_std",
    "lag_1h",
    "lag_24h",
    "lag_168h",
    "rolling_24h_avg",
    "rolling_24h_std",
)

BUILTIN_SETS: dict[str, FeatureSet] = {
    s.name: s
    for s in [
        FeatureSet(
            "forecast_basic",
            "Basic features for time series forecasting",
            _FORECAST_BASIC,
            ("Load forecasting", "Generation forecasting"),
            builtin=True,
        ),
        FeatureSet(
            "forecast_advanced",
            "Forecasting features with weather and holidays",
            (*_FORECAST_BASIC, "temperature", "humidity", "is_holiday"),
            ("Load forecasting with weather", "Day-ahead forecasting"),
            builtin=True,
        ),
        FeatureSet(
            "anomaly_detection",
            "Features that judge one hour against its recent history",
            (
                "value",
                "rolling_24h_avg",
                "rolling_24h_std",
                "z_score_24h",
                "deviation_from_lag_168h",
                "hourly_min",
                "hourly_max",
            ),
            ("Anomaly detection", "Meter fault detection"),
            builtin=True,
        ),
    ]
}
