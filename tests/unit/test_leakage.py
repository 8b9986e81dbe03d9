"""No leakage: a feature row at H describes what was knowable at H. Property-based: for
random series with gaps and sub-hourly readings, changing or adding readings at or after H
never changes the load features of a forecast set at H (and, for the anomaly set, nothing
from the next hour on changes the row that judges H)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aihub.features.catalog import BUILTIN_SETS
from aihub.services.container import Services
from aihub.services.features import OnlineRequest
from tests.factories import T0, iso, readings_frame
from tests.reference import Asset, assert_features_match

SPAN_HOURS = 220
_tenants = itertools.count()

values = st.integers(-4000, 4000).map(lambda x: x / 4)  # exact in binary: sums stay exact
minutes = st.integers(0, SPAN_HOURS * 60 - 1)
series = st.lists(st.tuples(minutes, values), min_size=1, max_size=300)
lookbacks = st.sampled_from([1, 23, 24, 100, 168, 400])
PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def rows(points: list[tuple[int, float]]) -> list[dict[str, Any]]:
    return [{"asset_id": "m1", "ts": iso(T0 + timedelta(minutes=m)), "value": v}
            for m, v in points]


def features_at(services: Services, tenant: str, feature_set: str, H: datetime,
                lookback: int) -> dict[str, Any]:
    req = OnlineRequest(tenant, feature_set, lookback, H)
    _, [body] = services.features.get_online(req, ["m1"])
    return orjson.loads(body)["features"]  # type: ignore[no-any-return]


def later_points(data: st.DataObject, base: list[tuple[int, float]], from_minute: int,
                 ) -> list[tuple[int, float]]:
    """New readings at or after ``from_minute`` plus corrections of existing ones there."""
    new = data.draw(st.lists(st.tuples(st.integers(from_minute, from_minute + 200 * 60), values),
                             min_size=1, max_size=40))
    existing = sorted({m for m, _ in base if m >= from_minute})
    if existing:
        fixed = data.draw(st.lists(st.sampled_from(existing), max_size=10))
        new += [(m, data.draw(values)) for m in fixed]
    return new


@PROPERTY
@given(base=series, hour=st.integers(1, SPAN_HOURS), lookback=lookbacks, data=st.data(),
       feature_set=st.sampled_from(["forecast_basic", "forecast_advanced"]))
def test_readings_at_or_after_h_never_change_forecast_features(
    services: Services, base: list[tuple[int, float]], hour: int, lookback: int,
    data: st.DataObject, feature_set: str,
) -> None:
    tenant = f"leak-{next(_tenants)}"
    H = T0 + timedelta(hours=hour)
    services.ingest.ingest_readings(tenant, readings_frame(rows(base)))
    before = features_at(services, tenant, feature_set, H, lookback)

    services.ingest.ingest_readings(tenant, readings_frame(rows(later_points(data, base,
                                                                             hour * 60))))
    after = features_at(services, tenant, feature_set, H, lookback)

    assert after == before
    knowable = [(T0 + timedelta(minutes=m), v) for m, v in base if m < hour * 60]
    names = list(BUILTIN_SETS[feature_set].features)
    assert_features_match(after, Asset(knowable).features(H, names, lookback), abs_tol=1e-9)


@PROPERTY
@given(base=series, hour=st.integers(1, SPAN_HOURS), lookback=lookbacks, data=st.data())
def test_anomaly_row_for_h_ignores_everything_after_its_hour(
    services: Services, base: list[tuple[int, float]], hour: int, lookback: int,
    data: st.DataObject,
) -> None:
    tenant = f"leak-a-{next(_tenants)}"
    H = T0 + timedelta(hours=hour)
    services.ingest.ingest_readings(tenant, readings_frame(rows(base)))
    before = features_at(services, tenant, "anomaly_detection", H, lookback)

    services.ingest.ingest_readings(
        tenant, readings_frame(rows(later_points(data, base, (hour + 1) * 60))))
    after = features_at(services, tenant, "anomaly_detection", H, lookback)

    assert after == before
    knowable = [(T0 + timedelta(minutes=m), v) for m, v in base if m < (hour + 1) * 60]
    names = list(BUILTIN_SETS["anomaly_detection"].features)
    assert_features_match(after, Asset(knowable).features(H, names, lookback), abs_tol=1e-9)
