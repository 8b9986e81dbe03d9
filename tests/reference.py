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
        elif isinstance(want, int | str):
            assert got == want, f"{name}: expected {want!r}, got {got!r}"
        else:
            assert got is not None, f"{name}: expected {want!r}, got null"
            assert math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol), \
                f"{name}: expected {want!r}, got {got!r}"


# -- "What was known when": origins, horizons, knowledge time --------------------------------

QUALITIES = ("actual", "estimated", "edited")
TARGET_RELATIVE = ("lag_", "hourly_avg", "hourly_std")
JUDGED = ("value", "hourly_min", "hourly_max", "z_score_24h", "deviation_from_lag_168h")
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass
class Version:
    value: float
    known_at: datetime
    quality: str = "actual"


@dataclass
class KnownAsset:
    """Readings and weather with knowledge times, sent in order: ``send`` and
    ``send_weather`` follow DESIGN.md ("a changed value adds a version, the same value
    adds nothing; the current value is the version with the latest known_at")."""

    timezone: str = "UTC"
    country: str | None = None
    versions: dict[datetime, list[Version]] = field(default_factory=dict)
    weather: dict[datetime, list[dict[str, Any]]] = field(default_factory=dict)
    _by_hour: dict[datetime, list[datetime]] | None = None

    def send(self, ts: datetime, value: float, known_at: datetime,
             quality: str = "actual") -> None:
        ts = ts.astimezone(UTC)
        self._by_hour = None
        vs = self.versions.setdefault(ts, [])
        current = max(vs, key=lambda v: v.known_at) if vs else None
        if current is not None and (current.value, current.quality) == (value, quality):
            return
        vs[:] = [v for v in vs if v.known_at != known_at]  # a tie replaces
        vs.append(Version(value, known_at, quality))

    def send_weather(self, ts: datetime, known_at: datetime, **fields: float | None) -> None:
        vs = self.weather.setdefault(ts.astimezone(UTC), [])
        current = max(vs, key=lambda w: w["known_at"]) if vs else None
        row = {f: fields.get(f) for f in WEATHER_FIELDS}
        if current is not None and all(current[f] == row[f] for f in WEATHER_FIELDS):
            return
        vs[:] = [w for w in vs if w["known_at"] != known_at]
        vs.append({"known_at": known_at, **row})

    # -- as known at K ------------------------------------------------------------------------
    def known(self, ts: datetime, K: datetime) -> Version | None:
        seen = [v for v in self.versions[ts] if v.known_at <= K]
        return max(seen, key=lambda v: v.known_at) if seen else None

    def hour_values(self, hour: datetime, K: datetime) -> list[Version]:
        if self._by_hour is None:
            self._by_hour = {}
            for ts in self.versions:
                self._by_hour.setdefault(floor(ts), []).append(ts)
        return [v for ts in self._by_hour.get(hour, []) if (v := self.known(ts, K)) is not None]

    def L(self, hour: datetime, K: datetime = LATEST) -> float | None:
        return _mean([v.value for v in self.hour_values(hour, K)])

    def target_quality(self, hour: datetime, K: datetime = LATEST) -> str | None:
        qs = {v.quality for v in self.hour_values(hour, K)}
        if not qs:
            return None
        if qs == {"actual"}:
            return "actual"
        return "estimated" if "estimated" in qs else "edited"

    # -- rows ---------------------------------------------------------------------------------
    def row(self, O: datetime, T: datetime, names: Iterable[str],  # noqa: E741
            as_known: Any, lookback_hours: int = 168) -> dict[str, Any]:
        """Features, target and target_quality of the row (O, T) per DESIGN.md."""
        h = int((T - O) / HOUR)
        K = LATEST if as_known == "latest" else O if as_known == "origin" else as_known
        KT = as_known if isinstance(as_known, datetime) else LATEST
        out: dict[str, Any] = {}
        for name in names:
            reach = HORIZON.get(name, 0) - (h if name.startswith(TARGET_RELATIVE) else 0)
            out[name] = None if reach > lookback_hours else self._feature(O, T, name, K, KT)
        out["target"] = self.L(T, KT)
        out["target_quality"] = self.target_quality(T, KT)
        return out

    def _feature(self, O: datetime, T: datetime, name: str, K: datetime,  # noqa: E741
                 KT: datetime) -> Any:
        def before(t: datetime) -> float | None:  # L(t) if complete before O, as known at K
            return self.L(t, K) if t + HOUR <= O else None

        def present(ts: Iterable[datetime]) -> list[float]:
            return [v for t in ts if (v := before(t)) is not None]

        if name.startswith("lag_"):
            return before(T - int(name[4:-1]) * HOUR)
        if name.startswith("rolling_"):
            w = int(name.split("_")[1][:-1])
            xs = present(O - k * HOUR for k in range(1, w + 1))
            return _mean(xs) if name.endswith("avg") else _std(xs)
        if name in ("hourly_avg", "hourly_std"):
            xs = present(T - 24 * j * HOUR for j in range(1, 8))
            return _mean(xs) if name == "hourly_avg" else _std(xs)
        if name == "value":
            return self.L(T, KT)
        if name in ("hourly_min", "hourly_max"):
            xs = [v.value for v in self.hour_values(T, KT)]
            return (min(xs) if name == "hourly_min" else max(xs)) if xs else None
        if name == "z_score_24h":
            value = self.L(T, KT)
            avg, std = self._feature(O, T, "rolling_24h_avg", K, KT), \
                self._feature(O, T, "rolling_24h_std", K, KT)
            if value is None or avg is None or not std:
                return None
            return (value - avg) / std
        if name == "deviation_from_lag_168h":
            value, lag = self.L(T, KT), before(T - 168 * HOUR)
            return None if value is None or lag is None else value - lag
        local = T.astimezone(ZoneInfo(self.timezone))
        if name == "hour_of_day":
            return local.hour
        if name == "day_of_week":
            return local.weekday()
        if name == "is_weekend":
            return int(local.weekday() >= 5)
        if name == "month":
            return local.month
        if name == "is_holiday":
            return None if self.country is None else int(is_holiday(self.country, local.date()))
        if name in WEATHER_FIELDS:
            valid = [
                (ts, max(seen, key=lambda w: w["known_at"]))
                for ts, vs in self.weather.items()
                if T - WEATHER_MAX_AGE <= ts <= T
                and (seen := [w for w in vs if w["known_at"] <= K])
            ]
            if not valid:
                return None
            return max(valid, key=lambda p: p[0])[1][name]
        raise KeyError(name)


def local_origins(start: datetime, end: datetime, at_hour: int, timezone: str,
                  every_hours: int = 24) -> list[datetime]:
    """Origins at local ``at_hour`` (and every ``every_hours`` after) in [start, end):
    local wall-clock times, skipped when the DST switch skips them."""
    tz = ZoneInfo(timezone)
    out = []
    day = (start - timedelta(days=2)).astimezone(tz).date()
    while datetime(day.year, day.month, day.day, tzinfo=tz) < end + timedelta(days=2):
        for i in range(24 // every_hours):
            hour = (at_hour + i * every_hours) % 24
            local = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
            utc = local.astimezone(UTC)
            if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
                continue  # a local time the spring switch skips
            if start <= utc < end and utc.minute == 0:
                out.append(utc)
        day += timedelta(days=1)
    return sorted(set(out))
