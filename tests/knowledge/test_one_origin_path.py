"""The one-asset path (``origin_one``: one asset, one origin, as known at the origin, the
online ``get`` with horizons) gives exactly the general path's rows, cell for cell and
bitwise: several assets' histories with gaps, both DST switches, late readings,
estimates and corrections, sub-hourly meters whose hours hold three readings or more,
weather forecasts and observations, an asset without location or country; forecast
and judged sets, short lookbacks, the rows of an export (target present only)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import polars as pl
import pytest

import aihub.features.origin_one as origin_one
import aihub.services.features as features_module
from aihub.features.catalog import CATALOG
from aihub.services.container import Services
from aihub.stores.timeseries.base import AssetChanges
from aihub.timeutil import HOUR_US, to_us
from tests.knowledge.scenario import AUTUMN, DAYS, SPRING, TZ, build, ingest

pytestmark = pytest.mark.backends

T = "tenant-one-origin"
EVERYTHING = [f for f, spec in CATALOG.items() if not spec.judges_hour]
HORIZONS = [*range(0, 38), 100, 168]


def _meter(services: Services, asset: str, start: Any, step_minutes: int, seed: int,
           changes: AssetChanges) -> None:
    """Readings every ``step_minutes`` for ten days: most known minutes after their hour,
    some hours or days late, a tenth corrected later (some as estimates first)."""
    rng = random.Random(seed)
    services.assets.put(T, asset, changes)
    first: list[tuple[int, float, int, str]] = []
    t = start
    while t < start + timedelta(days=10):
        if rng.random() < 0.04:
            t += timedelta(hours=rng.randint(1, 6))  # a gap
            continue
        hour_end = t.replace(minute=0) + timedelta(hours=1)
        lag = (timedelta(minutes=rng.randint(1, 30)) if rng.random() < 0.75
               else timedelta(hours=rng.randint(1, 60), minutes=rng.randint(0, 59)))
        quality = "estimated" if rng.random() < 0.05 else "actual"
        first.append((to_us(t), round(rng.uniform(0.5, 3.0), 4), to_us(hour_end + lag), quality))
        t += timedelta(minutes=step_minutes)
    fixes = [(ts, round(v * rng.uniform(0.8, 1.2), 4),
              known + rng.randint(1, 100) * HOUR_US, rng.choice(["actual", "edited"]))
             for ts, v, known, q in first if q == "estimated" or rng.random() < 0.1]
    for batch in (first, fixes):
        services.ingest.ingest_readings(T, pl.DataFrame({
            "asset_id": [asset] * len(batch), "ts": [b[0] for b in batch],
            "value": [b[1] for b in batch], "known_at": [b[2] for b in batch],
            "quality": [b[3] for b in batch],
        }), max_rows=10**7)


@pytest.fixture
def histories(services: Services) -> dict[str, Any]:
    sc = build(T)
    ingest(services, sc)  # "sub" (30 min) and "hourly", at location l1, around both switches
    _meter(services, "quarter", SPRING, 15, 11,
           AssetChanges(timezone=TZ, country="DE", location_id="l1"))
    _meter(services, "nowhere", AUTUMN, 60, 12, AssetChanges(timezone="America/New_York"))
    services.features.create_set(T, name="everything", description="", features=EVERYTHING,
                                 use_cases=[])
    return {**sc.starts, "quarter": SPRING, "nowhere": AUTUMN}


def _frame(services: Services, asset: Any, fs: Any, origin: int, horizons: list[int],
           lookback: int, target_only: bool, one_asset_path: bool) -> pl.DataFrame:
    return services.features.knowledge_frame(
        [asset], fs, origins=[origin], horizons=horizons, lookback_hours=lookback,
        as_known="origin", with_target_only=target_only, one_asset_path=one_asset_path,
    )


def test_one_asset_path_equals_the_general_path_cell_for_cell(
    services: Services, histories: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"general": 0, "three_or_more": 0}
    general = features_module.compute_origin_features
    of_many = origin_one.as_of_levels

    def counted_general(**kwargs: Any) -> pl.DataFrame:
        calls["general"] += 1
        return general(**kwargs)

    def counted_many(*args: Any) -> pl.DataFrame:
        calls["three_or_more"] += 1
        return of_many(*args)

    monkeypatch.setattr(features_module, "compute_origin_features", counted_general)
    monkeypatch.setattr(origin_one, "as_of_levels", counted_many)
    sets = {name: services.features.feature_set(T, name)
            for name in ("everything", "forecast_advanced", "anomaly_detection")}
    compared = non_null = 0
    for name, start in histories.items():
        (asset,) = services.timeseries.get_assets(T, [name])
        first = to_us(start) + 24 * HOUR_US
        last = to_us(start) + (min(DAYS, 10) - 1) * 24 * HOUR_US
        for i, origin in enumerate(range(first, last, 5 * HOUR_US)):
            fs_name = ("everything", "forecast_advanced", "anomaly_detection")[i % 3]
            horizons = [0] if fs_name == "anomaly_detection" else HORIZONS
            lookback = (168, 30, 168, 100)[i % 4]
            target_only = i % 5 == 0
            before = calls["general"]
            fast = _frame(services, asset, sets[fs_name], origin, horizons, lookback,
                          target_only, one_asset_path=True)
            assert calls["general"] == before, "the one-asset path was not taken"
            slow = _frame(services, asset, sets[fs_name], origin, horizons, lookback,
                          target_only, one_asset_path=False)
            assert calls["general"] == before + 1
            assert fast.schema == slow.schema, (name, origin)
            if not fast.equals(slow):
                diff = [c for c in fast.columns if not fast[c].equals(slow[c])]
                detail = {c: (fast[c].to_list(), slow[c].to_list()) for c in diff}
                raise AssertionError(f"{name} O={origin} {fs_name}: {diff} differ: {detail}")
            compared += fast.height
            non_null += sum(fast[c].null_count() < fast.height for c in fast.columns)
    assert compared > 3000
    assert non_null > 500
    assert calls["three_or_more"] > 0  # hours of 3+ readings as known: as_of_levels's mean


def test_online_get_with_horizons_equals_the_general_path(
    services: Services, histories: dict[str, Any]
) -> None:
    from aihub.services.features import OnlineRequest

    origin = histories["quarter"] + timedelta(days=5, hours=9)
    _, answers = services.features.get_known(
        OnlineRequest(T, "forecast_advanced", 168, origin), ["quarter"],
        horizons=list(range(24)), as_known="origin",
    )
    (asset,) = services.timeseries.get_assets(T, ["quarter"])
    fs = services.features.feature_set(T, "forecast_advanced")
    slow = _frame(services, asset, fs, to_us(origin), list(range(24)), 168, False,
                  one_asset_path=False)
    import orjson

    rows = orjson.loads(answers[0])["rows"]
    assert [r["horizon"] for r in rows] == list(range(24))
    for r, want in zip(rows, slow.iter_rows(named=True), strict=True):
        assert r["features"] == {f: want[f] for f in fs.features}


def test_output_columns_are_the_same_for_few_rows_and_many(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """``feature_frame`` names qualities from a list for a few rows and with a Polars
    expression for many: the same column either way."""
    import numpy as np

    import aihub.features.origin_compute as oc

    n = 12
    horizon = np.arange(n, dtype=np.int64)
    values = {"hour_of_day": np.array([-1, 0, 5, 23] * 3, dtype=np.int32),
              "lag_1h": np.array([np.nan, 1.5] * 6)}
    target = (np.array([np.nan, 1.0, 2.0, 3.0] * 3), np.array([0, 0, 1, 0] * 3),
              np.array([0, 1, 1, 0] * 3))
    args = (np.full(n, 7), np.zeros(n, np.int64), horizon * HOUR_US, horizon, values,
            ["hour_of_day", "lag_1h"], 168, target)
    few = oc.feature_frame(*args)
    monkeypatch.setattr(oc, "_FEW_ROWS", 0)
    many = oc.feature_frame(*args)
    assert few.equals(many) and few.schema == many.schema
    assert few["target_quality"].to_list()[:4] == [None, "edited", "estimated", "actual"]
    assert few["hour_of_day"].to_list()[:4] == [None, 0, 5, 23]
