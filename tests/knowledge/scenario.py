"""A seeded scenario with everything that makes "what was known when" hard: sub-hourly and
hourly meters in Europe/Berlin across both DST switches, gaps, readings that arrive late,
estimates replaced by actual reads and corrections days later, weather forecasts issued
twice a day and the observations after them. The same sends go to aihub and to the
pure-Python reference (``tests.reference.KnownAsset``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from aihub.services.container import Services
from aihub.stores.timeseries.base import AssetChanges
from aihub.timeutil import to_us
from tests.reference import KnownAsset

HOUR = timedelta(hours=1)
TZ = "Europe/Berlin"
# Around the spring and the autumn switch of 2024.
SPRING = datetime(2024, 3, 24, tzinfo=UTC)
AUTUMN = datetime(2024, 10, 20, tzinfo=UTC)
DAYS = 13


@dataclass
class Scenario:
    tenant: str
    assets: dict[str, KnownAsset] = field(default_factory=dict)
    starts: dict[str, datetime] = field(default_factory=dict)
    sends: list[tuple[str, datetime, float, datetime, str]] = field(default_factory=list)
    weather: list[tuple[datetime, datetime, float, float]] = field(default_factory=list)

    def send(self, asset: str, ts: datetime, value: float, known: datetime,
             quality: str = "actual") -> None:
        self.sends.append((asset, ts, value, known, quality))
        self.assets[asset].send(ts, value, known, quality)

    def send_weather(self, ts: datetime, known: datetime, temp: float, hum: float) -> None:
        self.weather.append((ts, known, temp, hum))
        for a in self.assets.values():
            a.send_weather(ts, known, temperature=temp, humidity=hum)


def load(hour: datetime, rng: random.Random) -> float:
    return round(1.0 + 0.5 * ((hour.hour + 6) % 24 > 12) + rng.random(), 3)


def build(tenant: str, seed: int = 7) -> Scenario:
    rng = random.Random(seed)
    sc = Scenario(tenant)
    for name, start, step in (("sub", SPRING, 30), ("hourly", AUTUMN, 60)):
        sc.assets[name] = KnownAsset(timezone=TZ, country="DE")
        sc.starts[name] = start
        t = start
        end = start + timedelta(days=DAYS)
        while t < end:
            if rng.random() < 0.05:  # a gap of a few hours
                t += timedelta(hours=rng.randint(1, 5))
                continue
            hour_end = t.replace(minute=0) + HOUR
            late = rng.random()
            lag = (timedelta(minutes=rng.randint(1, 20)) if late < 0.8
                   else timedelta(hours=rng.randint(2, 40)))
            quality = "estimated" if rng.random() < 0.05 else "actual"
            sc.send(name, t, load(t, rng), hour_end + lag, quality)
            t += timedelta(minutes=step)
    # Corrections known later: the estimate's actual read, or an edit, days afterwards.
    first = list(sc.sends)
    for asset, ts, value, known, quality in first:
        if quality == "estimated" or rng.random() < 0.05:
            later = known + timedelta(hours=rng.randint(3, 120))
            sc.send(asset, ts, round(value + rng.uniform(-0.5, 0.5), 3), later,
                    "actual" if quality == "estimated" else rng.choice(["actual", "edited"]))
    # Forecasts issued at 00:00 and 12:00 UTC for the next 48 h, then the observation.
    for start in (SPRING, AUTUMN):
        issue = start - timedelta(days=2)
        while issue < start + timedelta(days=DAYS + 2):
            for lead in range(1, 49):
                ts = issue + lead * HOUR
                truth = 10 + 5 * ((ts.hour - 14) / 12) ** 2
                sc.send_weather(ts, issue, round(truth + rng.gauss(0, 0.1 * lead), 2), 70.0)
            issue += 12 * HOUR
        ts = start - timedelta(days=2)
        while ts < start + timedelta(days=DAYS + 2):
            if rng.random() < 0.9:
                truth = 10 + 5 * ((ts.hour - 14) / 12) ** 2
                sc.send_weather(ts, ts + timedelta(minutes=30), round(truth, 2), 65.0)
            ts += HOUR
    return sc


def ingest(services: Services, sc: Scenario, sends: list | None = None) -> None:
    """The sends in order, in batches of distinct (asset, ts) (a later row of a batch would
    replace an earlier one, unlike two sends)."""
    for a in sc.assets:
        services.assets.put(sc.tenant, a, AssetChanges(timezone=TZ, country="DE",
                                                       location_id="l1"))
    pending: list[tuple[str, datetime, float, datetime, str]] = []
    seen: set[tuple[str, datetime]] = set()

    def flush() -> None:
        if pending:
            services.ingest.ingest_readings(sc.tenant, pl.DataFrame(
                {
                    "asset_id": [p[0] for p in pending],
                    "ts": [to_us(p[1]) for p in pending],
                    "value": [p[2] for p in pending],
                    "known_at": [to_us(p[3]) for p in pending],
                    "quality": [p[4] for p in pending],
                },
            ), max_rows=10**7)
            pending.clear()
            seen.clear()

    for s in (sc.sends if sends is None else sends):
        if (s[0], s[1]) in seen:
            flush()
        pending.append(s)
        seen.add((s[0], s[1]))
    flush()
    if sends is None:
        _weather(services, sc, sc.weather)


def _weather(services: Services, sc: Scenario, rows: list) -> None:
    batch: list[tuple[datetime, datetime, float, float]] = []
    seen: set[datetime] = set()

    def flush() -> None:
        if batch:
            services.ingest.ingest_weather(sc.tenant, pl.DataFrame({
                "location_id": ["l1"] * len(batch),
                "ts": [to_us(b[0]) for b in batch],
                "temperature": [b[2] for b in batch],
                "humidity": [b[3] for b in batch],
                "issued_at": [to_us(b[1]) for b in batch],
            }), max_rows=10**7)
            batch.clear()
            seen.clear()

    for row in rows:
        if row[0] in seen:
            flush()
        batch.append(row)
        seen.add(row[0])
    flush()
