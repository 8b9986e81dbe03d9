"""A realistic smart-meter generator: daily and weekly load shape, seasonal swing,
temperature dependence (heating and cooling), per-meter scale and noise.

Deterministic for a given seed, vectorised with NumPy: a year of 100 meters (876,000
hourly readings) takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from aihub.timeutil import HOUR_US, to_us


@dataclass(frozen=True, slots=True)
class DemoSpec:
    tenant_id: str = "tenant-123"
    assets: int = 10
    start: datetime | None = None
    hours: int = 24 * 60
    interval_minutes: int = 60
    location_id: str = "berlin"
    seed: int = 7

    def asset_ids(self) -> list[str]:
        return [f"meter-{i + 1:03d}" for i in range(self.assets)]


def temperature(hours_us: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hourly air temperature (deg C) with a seasonal and a daily cycle."""
    t = hours_us / 3.6e9  # hours since epoch
    day_of_year = (t / 24.0) % 365.25
    hour_of_day = t % 24.0
    seasonal = 10.0 - 10.0 * np.cos(2 * np.pi * (day_of_year - 15) / 365.25)
    daily = 4.0 * np.sin(2 * np.pi * (hour_of_day - 9) / 24.0)
    return seasonal + daily + rng.normal(0.0, 1.0, size=t.shape)


def weather_frame(spec: DemoSpec, start_us: int, hours: int) -> pl.DataFrame:
    rng = np.random.default_rng(spec.seed + 1)
    ts = start_us + np.arange(hours, dtype=np.int64) * HOUR_US
    temp = temperature(ts, rng)
    humidity = np.clip(70 - 1.2 * (temp - 10) + rng.normal(0, 5, hours), 15, 100)
    t = ts / 3.6e9
    sun = np.clip(np.sin(2 * np.pi * ((t % 24) - 6) / 24.0), 0, None)
    clouds = np.clip(rng.normal(55, 25, hours), 0, 100)
    return pl.DataFrame(
        {
            "location_id": [spec.location_id] * hours,
            "ts": ts,
            "temperature": temp,
            "humidity": humidity,
            "wind_speed": np.abs(rng.normal(4, 2, hours)),
            "solar_irradiance": 900 * sun * (1 - clouds / 130),
            "cloud_cover": clouds,
        }
    )


def readings_frame(spec: DemoSpec, start_us: int) -> pl.DataFrame:
    """Readings of every asset at ``interval_minutes`` from ``start_us`` for ``hours``."""
    rng = np.random.default_rng(spec.seed)
    step = spec.interval_minutes * 60_000_000
    n = spec.hours * 60 // spec.interval_minutes
    ts = start_us + np.arange(n, dtype=np.int64) * step
    hourly = weather_frame(spec, start_us, spec.hours + 1)
    temp = np.repeat(hourly["temperature"].to_numpy(), 60 // spec.interval_minutes)[:n]
    t = ts / 3.6e9
    hour = t % 24.0
    weekday = ((t // 24) + 3) % 7  # 1970-01-01 was a Thursday (3)
    frames = []
    for i, asset in enumerate(spec.asset_ids()):
        scale = 20 + 80 * rng.random()
        morning = np.exp(-((hour - 8) ** 2) / 4.0)
        evening = 1.4 * np.exp(-((hour - 19) ** 2) / 6.0)
        base = 0.45 + 0.35 * morning + 0.55 * evening
        weekend = np.where(weekday >= 5, 0.85 + 0.1 * (i % 3), 1.0)
        heating = 0.025 * np.clip(15 - temp, 0, None)
        cooling = 0.03 * np.clip(temp - 22, 0, None)
        value = scale * base * weekend * (1 + heating + cooling)
        value = value * (1 + rng.normal(0, 0.05, n))
        frames.append(pl.DataFrame({"asset_id": [asset] * n, "ts": ts, "value": np.abs(value)}))
    return pl.concat(frames)


def demo_start(spec: DemoSpec, end: datetime) -> int:
    """Start so that ``hours`` of data end at ``end`` (floored to the hour)."""
    if spec.start is not None:
        return to_us(spec.start)
    return (to_us(end) // HOUR_US - spec.hours) * HOUR_US
