"""A tiny pure-Python model of DESIGN.md's "Feature semantics", written independently of
the Polars pipeline: expected values in tests come from here, computed from raw readings.

Deliberately naive: dicts of datetimes, the ``statistics`` module, ``zoneinfo`` and the
``holidays`` package. Readings are ``(ts, value)`` pairs in the order they were sent; a
later pair for the same instant replaces an earlier one (corrections).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

HOUR = timedelta(hours=1)
WEATHER_MAX_AGE = timedelta(hours=3)
WEATHER_FIELDS = ("temperature", "humidity", "wind_speed", "solar_irradiance", "cloud_cover")

HORIZON = {  # hours before H that a feature's inputs reach (lookback masking)
    "lag_1h": 1, "lag_24h": 24, "lag_48h": 48, "lag_168h": 168,
    "rolling_24h_avg": 24, "rolling_24h_std": 24, "rolling_168h_avg": 168,
    "rolling_168h_std": 168, "hourly_avg": 168, "hourly_std": 168,
    "z_score_24h": 24, "deviation_from_lag_168h": 168,
}


def floor(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(minute=0, second=0, microsecond=0)


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _std(xs: list[float]) -> float | None:
    return statistics.stdev(xs) if len(xs) >= 2 else None


@dataclass
class Asset:
    readings: Sequence[tuple[datetime, float]]
    timezone: str = "UTC"
    country: str | None = None
    weather: Sequence[dict[str, Any]] = field(default_factory=list)  # rows with ts + fields

    def __post_init__(self) -> None:
        latest: dict[datetime, float] = {}
        for ts, value in self.readings:
            latest[ts.astimezone(UTC)] = value  # a later reading replaces an earlier one
        self.raw: dict[datetime, list[float]] = {}
        for ts, value in latest.items():
            self.raw.setdefault(floor(ts), []).append(value)

    # -- the hourly grid --------------------------------------------------------------------
    def L(self, hour: datetime) -> float | None:
        values = self.raw.get(hour)
        return _mean(values) if values else None

    def rollup(self, hour: datetime) -> dict[str, Any] | None:
        values = self.raw.get(hour)
        if not values:
            return None
        return {"n": len(values), "mean": _mean(values), "std": _std(values),
                "min": min(values), "max": max(values)}

    def hours_with_readings(self, start: datetime, end: datetime) -> list[datetime]:
        return sorted(h for h in self.raw if start <= h < end)

    # -- features at H ----------------------------------------------------------------------
    def features(self, H: datetime, names: Iterable[str], lookback_hours: int = 168,
                 ) -> dict[str, Any]:
        out = {}
        for name in names:
            if HORIZON.get(name, 0) > lookback_hours:
                out[name] = None
            else:
                out[name] = self.feature(H, name)
        return out

    def feature(self, H: datetime, name: str) -> Any:
        def lags(ks: Iterable[int]) -> list[float]:
            return [v for k in ks if (v := self.L(H - k * HOUR)) is not None]

        if name.startswith("lag_"):
            return self.L(H - int(name[4:-1]) * HOUR)
        if name == "rolling_24h_avg":
            return _mean(lags(range(1, 25)))
        if name == "rolling_24h_std":
            return _std(lags(range(1, 25)))
        if name == "rolling_168h_avg":
            return _mean(lags(range(1, 169)))
        if name == "rolling_168h_std":
            return _std(lags(range(1, 169)))
        if name == "hourly_avg":
            return _mean(lags(24 * k for k in range(1, 8)))
        if name == "hourly_std":
            return _std(lags(24 * k for k in range(1, 8)))
        if name == "value":
            return self.L(H)
        if name == "hourly_min":
            return min(self.raw[H]) if H in self.raw else None
        if name == "hourly_max":
            return max(self.raw[H]) if H in self.raw else None
        if name == "z_score_24h":
            value, avg, std = self.L(H), self.feature(H, "rolling_24h_avg"), \
                self.feature(H, "rolling_24h_std")
            if value is None or avg is None or not std:
                return None
            return (value - avg) / std
        if name == "deviation_from_lag_168h":
            value, lag = self.L(H), self.L(H - 168 * HOUR)
            return None if value is None or lag is None else value - lag
        local = H.astimezone(ZoneInfo(self.timezone))
        if name == "hour_of_day":
            return local.hour
        if name == "day_of_week":
            return local.weekday()
        if name == "is_weekend":
            return int(local.weekday() >= 5)
        if name == "month":
            return local.month
        if name == "is_holiday":
            if self.country is None:
                return None
            return int(is_holiday(self.country, local.date()))
        if name in WEATHER_FIELDS:
            valid = [w for w in self.weather if H - WEATHER_MAX_AGE <= w["ts"] <= H]
            if not valid:
                return None
            return max(valid, key=lambda w: w["ts"]).get(name)
        raise KeyError(name)


def is_holiday(country: str, day: date) -> bool:
    return day in holidays.country_holidays(country, years=day.year)


def assert_features_match(actual: dict[str, Any], expected: dict[str, Any],
                          *, rel: float = 1e-9, abs_tol: float = 1e-12) -> None:
    """Feature by feature: nulls must be nulls, ints exact, floats to ``rel``."""
    import math

    assert set(actual) == set(expected), (sorted(actual), sorted(expected))
    for name, want in expected.items():
        got = actual[name]
        if want is None:
            assert got is None, f"{name}: expected null, got {got!r}"
        elif isinstance(want, int):
            assert got == want, f"{name}: expected {want}, got {got!r}"
        else:
            assert got is not None, f"{name}: expected {want!r}, got null"
            assert math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol), \
                f"{name}: expected {want!r}, got {got!r}"
