"""Rows at (origin, target) cell for cell against the pure-Python reference, on every
backend: sub-hourly and hourly meters across both DST switches with origins at local
10:00, gaps, late readings, estimates and corrections, forecasts and observations;
``as_known`` latest, origin and a time K; horizons up to 168. And the ``h = 0``,
``"latest"`` rows are exactly the plain pipeline's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from aihub.features.catalog import CATALOG
from aihub.features.knowledge import Knowledge, parse_schedule
from aihub.services.container import Services
from aihub.services.exports import ExportRequest
from aihub.timeutil import HOUR_US, to_us
from tests.knowledge.scenario import DAYS, TZ, Scenario, build, ingest
from tests.reference import assert_features_match, local_origins

pytestmark = pytest.mark.backends

T = "tenant-origins"
EVERYTHING = [f for f, spec in CATALOG.items() if not spec.judges_hour]
HORIZONS = (0, 1, 14, 23, 37, 168)


@pytest.fixture
def scenario(services: Services) -> Scenario:
    sc = build(T)
    ingest(services, sc)
    services.features.create_set(T, name="everything", description="", features=EVERYTHING,
                                 use_cases=[])
    return sc


def export_rows(services: Services, start: datetime, end: datetime, as_known: Any,
                horizons: tuple[int, ...] = HORIZONS, feature_set: str = "everything",
                lookback: int = 168) -> list[dict[str, Any]]:
    record = services.exports.export(ExportRequest(
        tenant_id=T, feature_set=feature_set, start_time=start, end_time=end,
        lookback_hours=lookback,
        knowledge=Knowledge(horizons=horizons, as_known=as_known,
                            origins=parse_schedule(24, "10:00", TZ)),
    ))
    assert record.options is not None and record.options["horizons"] == list(horizons)
    return pq.read_table(record.storage_path).to_pylist()  # type: ignore[arg-type]


@pytest.mark.parametrize("as_known", ["latest", "origin", "K"])
def test_rows_match_the_reference_cell_for_cell(services: Services, scenario: Scenario,
                                                as_known: str) -> None:
    checked = 0
    for name, asset in scenario.assets.items():
        start = scenario.starts[name] + timedelta(days=2)
        end = scenario.starts[name] + timedelta(days=DAYS)
        K = scenario.starts[name] + timedelta(days=9, hours=5)
        known: Any = K if as_known == "K" else as_known
        rows = [r for r in export_rows(services, start, end, to_us(K) if as_known == "K"
                                       else as_known) if r["asset_id"] == name]
        origins = local_origins(start, end, 10, TZ)
        # Both switches: local 10:00 is 09:00 UTC before, 08:00 UTC after (or the reverse).
        assert {o.hour for o in origins} == {8, 9}
        expected = {
            (o, o + timedelta(hours=h)) for o in origins for h in HORIZONS
            if asset.L(o + timedelta(hours=h), K if as_known == "K" else
                       datetime(9999, 1, 1, tzinfo=UTC)) is not None
        }
        assert {(r["origin"], r["timestamp"]) for r in rows} == expected
        for r in rows:
            want = asset.row(r["origin"], r["timestamp"], EVERYTHING, known)
            assert r["horizon"] == int((r["timestamp"] - r["origin"]) / timedelta(hours=1))
            got = {k: r[k] for k in want}
            try:
                assert_features_match(got, want)
            except AssertionError as exc:
                raise AssertionError(f"{name} O={r['origin']} T={r['timestamp']}: {exc}") from exc
            checked += 1
    assert checked > 50


def test_h0_latest_rows_equal_the_plain_pipeline_exactly(services: Services,
                                                         scenario: Scenario) -> None:
    fs = services.features.feature_set(T, "everything")
    for name in scenario.assets:
        (asset,) = services.timeseries.get_assets(T, [name])
        start = to_us(scenario.starts[name]) + 48 * HOUR_US
        end = start + 7 * 24 * HOUR_US
        plain = services.features.frame([asset], fs, start=start, end=end, lookback_hours=168)
        known = services.features.knowledge_frame(
            [asset], fs, origins=list(range(start, end, HOUR_US)), horizons=[0],
            lookback_hours=168, as_known="latest", with_target_only=True,
        )
        assert plain.height > 100
        assert known.select(plain.columns).equals(plain)  # same values, same nulls, bitwise


def test_judged_sets_with_a_horizon_are_a_422(services: Services, scenario: Scenario) -> None:
    from aihub.errors import InvalidInput

    with pytest.raises(InvalidInput, match="horizon 0"):
        export_rows(services, scenario.starts["sub"], scenario.starts["sub"] + timedelta(days=3),
                    "origin", horizons=(0, 1), feature_set="anomaly_detection")


def test_lookback_nulls_what_reaches_before_it(services: Services, scenario: Scenario) -> None:
    start = scenario.starts["hourly"] + timedelta(days=8)
    rows = export_rows(services, start, start + timedelta(days=2), "origin", lookback=30)
    asset = scenario.assets["hourly"]
    for r in rows:
        if r["asset_id"] != "hourly":
            continue
        want = asset.row(r["origin"], r["timestamp"], EVERYTHING, "origin", lookback_hours=30)
        assert_features_match({k: r[k] for k in want}, want)
    assert any(r["lag_48h"] is not None and r["horizon"] >= 23 for r in rows)
    assert all(r["rolling_168h_avg"] is None for r in rows)


def test_export_listing_shows_the_options(services: Services, scenario: Scenario) -> None:
    start = scenario.starts["sub"] + timedelta(days=3)
    export_rows(services, start, start + timedelta(days=1), "origin", horizons=(14, 15))
    records, _ = services.exports.list(T, limit=10, offset=0)
    assert records[0].options == {
        "origins": {"every_hours": 24, "at": "10:00", "timezone": TZ},
        "horizons": [14, 15], "as_known": "origin",
    }
    assert pl.DataFrame(pq.read_table(records[0].storage_path).to_pylist()).columns[:5] == [
        "tenant_id", "asset_id", "origin", "timestamp", "horizon"]
