"""DESIGN.md "Feature semantics", checked against a pure-Python reference (tests/reference.py)
computed from the raw readings, never against numbers copied from the implementation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from aihub.features.catalog import BUILTIN_SETS
from aihub.services.container import Services
from tests.factories import (
    as_pairs,
    at,
    get_features,
    ingest,
    ingest_weather,
    iso,
    put_asset,
    readings,
    weather,
)
from tests.reference import Asset, assert_features_match

BASIC = list(BUILTIN_SETS["forecast_basic"].features)
ADVANCED = list(BUILTIN_SETS["forecast_advanced"].features)
ANOMALY = list(BUILTIN_SETS["anomaly_detection"].features)
T = "tenant-sem"
BERLIN = ZoneInfo("Europe/Berlin")


def wave(h: float) -> float:
    """A load that differs from hour to hour, so a shifted lag is always visible."""
    return 100.0 + 7.0 * (h % 13) + 0.5 * h


def check(client: TestClient, asset: str, ref: Asset, hours: list[datetime], *,
          feature_set: str = "forecast_basic", lookback_hours: int = 168) -> None:
    names = list(BUILTIN_SETS[feature_set].features) if feature_set in BUILTIN_SETS else None
    for H in hours:
        got = get_features(client, T, asset, H, feature_set=feature_set,
                           lookback_hours=lookback_hours)
        want = ref.features(H, names or list(got), lookback_hours)
        assert_features_match(got, want)


# -- lags over gaps -------------------------------------------------------------------------


def test_missing_hour_makes_lag_null_not_the_neighbours_value(client: TestClient) -> None:
    hours = [h for h in range(0, 60) if h not in (23, 40, 41)]
    rows = readings("m1", hours, wave)
    ingest(client, T, rows)

    after_gap = get_features(client, T, "m1", at(24))
    assert after_gap["lag_1h"] is None  # hour 23 has no readings
    assert get_features(client, T, "m1", at(47))["lag_24h"] is None  # L(23)
    assert get_features(client, T, "m1", at(42))["lag_1h"] is None  # L(41), then L(40)
    # Elapsed time, not rows: hour 30's lag_24h is hour 6 although 1 row is missing between.
    assert get_features(client, T, "m1", at(30))["lag_24h"] == wave(6)
    check(client, "m1", Asset(as_pairs(rows)), [at(h) for h in range(20, 61)])


def test_hour_without_readings_still_has_features_online(client: TestClient) -> None:
    rows = readings("m1", range(0, 30), wave)
    ingest(client, T, rows)
    # H = hour 40: no reading at H or in the 10 hours before; lag_24h is hour 16.
    got = get_features(client, T, "m1", at(40))
    assert got["lag_1h"] is None
    assert got["lag_24h"] == wave(16)
    assert_features_match(got, Asset(as_pairs(rows)).features(at(40), BASIC))


# -- corrections ----------------------------------------------------------------------------


def test_resent_readings_replace_values_and_never_duplicate(client: TestClient,
                                                            services: Services) -> None:
    rows = [r for h in range(0, 30) for r in readings("m1", [h, h + 0.5], wave)]
    ingest(client, T, rows)
    before_status = client.get("/ai/features/status", params={"tenant_id": T}).json()
    before = get_features(client, T, "m1", at(26))

    fixes = readings("m1", [25, 25.5, 2], lambda h: 1000.0 + h)
    ingest(client, T, fixes)

    after = get_features(client, T, "m1", at(26))
    assert after["lag_1h"] == pytest.approx((1025.0 + 1025.5) / 2)
    assert after["lag_1h"] != before["lag_1h"]
    assert_features_match(after, Asset(as_pairs(rows + fixes)).features(at(26), BASIC))

    status = client.get("/ai/features/status", params={"tenant_id": T}).json()
    assert status["readings"] == before_status["readings"] == 60
    assert status["rollup_hours"] == before_status["rollup_hours"] == 30
    asset = services.timeseries.get_assets(T, ["m1"])[0]
    raw = services.timeseries.load_readings(asset.key, 0, 2**62)
    assert raw.height == 60
    rollups = services.timeseries.load_rollups([asset.key], 0, 2**62)
    assert rollups.height == 30
    assert rollups.get_column("n").to_list() == [2] * 30


def test_later_row_in_the_same_batch_wins(client: TestClient) -> None:
    rows = readings("m1", range(0, 5), wave)
    dup = readings("m1", [3], lambda h: -50.0)
    result = ingest(client, T, rows + dup)
    assert result["accepted"] in (5, 6)
    got = get_features(client, T, "m1", at(4))
    assert got["lag_1h"] == -50.0
    status = client.get("/ai/features/status", params={"tenant_id": T}).json()
    assert status["readings"] == 5


# -- DST, local calendar, elapsed-time lags -------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [datetime(2024, 3, 29, tzinfo=UTC), datetime(2024, 10, 25, tzinfo=UTC)],
    ids=["spring-forward", "fall-back"],
)
def test_dst_calendar_in_local_time_and_lags_in_elapsed_time(client: TestClient,
                                                             start: datetime) -> None:
    put_asset(client, T, "berlin-1", timezone="Europe/Berlin", country="DE")
    rows = readings("berlin-1", range(0, 24 * 5), wave, base=start)
    # Send them with local offsets (+01:00 / +02:00), as a German meter would.
    local_rows = [{**r, "ts": ts.astimezone(BERLIN).isoformat()}
                  for r, (ts, _) in zip(rows, as_pairs(rows), strict=True)]
    assert {r["ts"][-6:] for r in local_rows} == {"+01:00", "+02:00"}
    ingest(client, T, local_rows)
    ref = Asset(as_pairs(rows), timezone="Europe/Berlin", country="DE")
    hours = [start + timedelta(hours=h) for h in range(24, 24 * 5, 3)]
    check(client, "berlin-1", ref, hours, feature_set="forecast_advanced")

    # Across the switch a local day has 23 or 25 hours; hour_of_day follows the wall clock.
    switch_date = start + timedelta(days=2)  # the last Sunday of March / October
    switch_day = datetime(2024, switch_date.month, switch_date.day, tzinfo=BERLIN).astimezone(UTC)
    seen = [get_features(client, T, "berlin-1", switch_day + timedelta(hours=h))["hour_of_day"]
            for h in range(0, 5)]
    if start.month == 3:
        assert seen == [0, 1, 3, 4, 5]  # 02:00 local does not exist
    else:
        assert seen == [0, 1, 2, 2, 3]  # 02:00 local happens twice
    # lag_24h is 24 elapsed hours even when the wall clock moved by 23 or 25.
    H = switch_day + timedelta(hours=12)
    got = get_features(client, T, "berlin-1", H)
    assert got["lag_24h"] == wave((H - start).total_seconds() / 3600 - 24)


# -- sub-hourly inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [15, 1])
def test_sub_hourly_readings_roll_up_to_hourly_mean_std_min_max(
    client: TestClient, services: Services, minutes: int
) -> None:
    def noisy(h: float) -> float:
        return 50.0 + 30.0 * ((h * 7.3) % 1.0) + (h // 1) * 0.25

    steps = [i * minutes / 60 for i in range(int(30 * 60 / minutes))]
    rows = readings("m1", steps, noisy)
    ingest(client, T, rows)
    ref = Asset(as_pairs(rows))

    asset = services.timeseries.get_assets(T, ["m1"])[0]
    rollups = services.timeseries.load_rollups([asset.key], 0, 2**62)
    assert rollups.height == 30
    for row in rollups.iter_rows(named=True):
        hour = datetime.fromtimestamp(row["hour"] / 1e6, UTC)
        want = ref.rollup(hour)
        assert want is not None and row["n"] == want["n"] == 60 // minutes
        assert row["mean"] == pytest.approx(want["mean"], rel=1e-12)
        assert row["std"] == pytest.approx(want["std"], rel=1e-9)
        assert (row["min"], row["max"]) == (want["min"], want["max"])

    check(client, "m1", ref, [at(h) for h in (1, 12, 25, 29)])
    check(client, "m1", ref, [at(h) for h in (0, 5, 29)], feature_set="anomaly_detection")
    judged = get_features(client, T, "m1", at(5), feature_set="anomaly_detection")
    assert judged["hourly_min"] == min(v for ts, v in as_pairs(rows) if ts.hour == 5
                                       and ts.day == 1)


def test_uneven_readings_weight_each_hour_equally(client: TestClient) -> None:
    # Hour 0: four readings; hour 1: one. The window mean is the mean of hourly means.
    rows = readings("m1", [0, 0.25, 0.5, 0.75], lambda h: 10.0)
    rows += readings("m1", [1], lambda h: 40.0)
    ingest(client, T, rows)
    got = get_features(client, T, "m1", at(2))
    assert got["rolling_24h_avg"] == pytest.approx(25.0)
    assert_features_match(got, Asset(as_pairs(rows)).features(at(2), BASIC))


# -- windows ----------------------------------------------------------------------------------


def test_window_mean_needs_one_value_and_std_two(client: TestClient) -> None:
    rows = readings("m1", [0], lambda h: 5.0)
    ingest(client, T, rows)
    one = get_features(client, T, "m1", at(24))  # window [0, 24): one hourly value
    assert one["rolling_24h_avg"] == 5.0 and one["rolling_24h_std"] is None
    assert one["hourly_avg"] == 5.0 and one["hourly_std"] is None
    assert get_features(client, T, "m1", at(25))["rolling_24h_avg"] is None  # out of window

    more = readings("m1", [24, 48], lambda h: 5.0 + h)
    ingest(client, T, more)
    two = get_features(client, T, "m1", at(72))  # same hour on 3 previous days: 0, 24, 48
    ref = Asset(as_pairs(rows + more))
    assert two["hourly_avg"] == pytest.approx((5.0 + 29.0 + 53.0) / 3)
    assert_features_match(two, ref.features(at(72), BASIC))
    check(client, "m1", ref, [at(h) for h in range(20, 80, 3)])


def test_hourly_avg_spans_seven_days_by_elapsed_time(client: TestClient) -> None:
    rows = readings("m1", range(0, 24 * 9), wave)
    ingest(client, T, rows)
    H = at(24 * 8 + 5)
    got = get_features(client, T, "m1", H)
    same_hour = [wave(24 * 8 + 5 - 24 * k) for k in range(1, 8)]
    assert got["hourly_avg"] == pytest.approx(sum(same_hour) / 7)
    check(client, "m1", Asset(as_pairs(rows)), [at(h) for h in range(24 * 7, 24 * 9, 5)])


# -- lookback masking -----------------------------------------------------------------------


@pytest.mark.parametrize("lookback", [1, 12, 24, 48, 100, 168, 500])
def test_features_reaching_past_lookback_are_null(client: TestClient, lookback: int) -> None:
    rows = readings("m1", range(0, 24 * 10), wave)
    ingest(client, T, rows)
    ref = Asset(as_pairs(rows))
    H = at(24 * 9)
    got = get_features(client, T, "m1", H, lookback_hours=lookback)
    assert_features_match(got, ref.features(H, BASIC, lookback))
    assert (got["lag_24h"] is None) == (lookback < 24)
    assert (got["hourly_avg"] is None) == (lookback < 168)
    assert got["lag_1h"] == wave(24 * 9 - 1)
    check(client, "m1", ref, [at(24 * 9 + 3)], feature_set="anomaly_detection",
          lookback_hours=lookback)


# -- anomaly set and z-score ------------------------------------------------------------------


def test_z_score_is_null_when_the_window_std_is_zero(client: TestClient) -> None:
    rows = readings("m1", range(0, 30), lambda h: 42.0)
    ingest(client, T, rows)
    got = get_features(client, T, "m1", at(29), feature_set="anomaly_detection")
    assert got["rolling_24h_std"] == 0.0
    assert got["z_score_24h"] is None
    assert got["value"] == 42.0


def test_anomaly_set_judges_hour_h_from_its_own_readings(client: TestClient) -> None:
    rows = readings("m1", [h + q for h in range(0, 24 * 8) for q in (0, 0.5)], wave)
    spike = readings("m1", [24 * 8 + 0.1, 24 * 8 + 0.6], lambda h: 900.0 + h)
    ingest(client, T, rows + spike)
    H = at(24 * 8)
    ref = Asset(as_pairs(rows + spike))
    judged = get_features(client, T, "m1", H, feature_set="anomaly_detection")
    assert judged["value"] == pytest.approx(900.0 + 24 * 8 + 0.35)
    assert judged["hourly_min"] == spike[0]["value"]
    assert judged["hourly_max"] == spike[1]["value"]
    assert judged["z_score_24h"] > 3
    assert_features_match(judged, ref.features(H, ANOMALY))
    # The same hour's forecast features do not see the spike (it is at or after H).
    assert_features_match(get_features(client, T, "m1", H),
                          Asset(as_pairs(rows)).features(H, BASIC))
    # An hour with no readings has nothing to judge.
    empty = get_features(client, T, "m1", at(24 * 8 + 3), feature_set="anomaly_detection")
    assert empty["value"] is None and empty["z_score_24h"] is None
    assert empty["hourly_min"] is None and empty["deviation_from_lag_168h"] is None


# -- weather and holidays -------------------------------------------------------------------


def test_weather_is_the_latest_observation_at_or_before_h_at_most_3h_old(
    client: TestClient,
) -> None:
    put_asset(client, T, "m1", location_id="loc-1")
    ingest(client, T, readings("m1", range(0, 30), wave))
    obs = weather("loc-1", [0, 5, 6, 12], temperature=lambda h: float(h), humidity=lambda h: 50 + h)
    ingest_weather(client, T, obs)
    # Another tenant's and another location's weather must not leak in.
    ingest_weather(client, "other-tenant", weather("loc-1", range(0, 30),
                                                   temperature=lambda h: -99.0))
    ingest_weather(client, T, weather("loc-2", range(0, 30), temperature=lambda h: -98.0))
    ref = Asset([], weather=[{**o, "ts": at(h)} for o, h in zip(obs, [0, 5, 6, 12], strict=True)])

    def temp(h: float) -> Any:
        return get_features(client, T, "m1", at(h), feature_set="forecast_advanced")["temperature"]

    assert temp(5) == 5.0  # exactly at H
    assert temp(7) == 6.0  # latest before H, not the one after
    assert temp(9) == 6.0  # 3 hours old: still valid
    assert temp(10) is None  # 4 hours old: not valid at H
    assert temp(11) is None  # the next observation (12) is after H
    for h in range(0, 16):
        got = get_features(client, T, "m1", at(h), feature_set="forecast_advanced")
        assert got["temperature"] == ref.feature(at(h), "temperature")
        assert got["humidity"] == ref.feature(at(h), "humidity")


def test_is_holiday_from_the_assets_country_in_local_time(client: TestClient) -> None:
    base = datetime(2024, 12, 20, tzinfo=UTC)
    ingest(client, T, readings("de", range(0, 24 * 10), wave, base=base)
           + readings("none", range(0, 24 * 10), wave, base=base))
    put_asset(client, T, "de", timezone="Europe/Berlin", country="DE")
    put_asset(client, T, "none", timezone="Europe/Berlin")

    def hol(asset: str, when: datetime) -> Any:
        return get_features(client, T, asset, when, feature_set="forecast_advanced")["is_holiday"]

    assert hol("de", datetime(2024, 12, 25, 12, tzinfo=UTC)) == 1
    assert hol("de", datetime(2024, 12, 27, 12, tzinfo=UTC)) == 0
    # 23:00 UTC on the 24th is already Christmas Day in Berlin.
    assert hol("de", datetime(2024, 12, 24, 23, tzinfo=UTC)) == 1
    assert hol("de", datetime(2024, 12, 24, 22, tzinfo=UTC)) == 0
    assert hol("none", datetime(2024, 12, 25, 12, tzinfo=UTC)) is None
    ref = Asset([], timezone="Europe/Berlin", country="DE")
    for h in range(0, 24 * 10, 7):
        when = base + timedelta(hours=h)
        assert hol("de", when) == ref.feature(when, "is_holiday")


# -- user-defined sets ----------------------------------------------------------------------


def test_user_defined_set_computes_its_catalog_features(client: TestClient) -> None:
    rows = readings("m1", [h for h in range(0, 24 * 9) if h % 11], wave)
    ingest(client, T, rows)
    features = ["month", "lag_48h", "rolling_168h_avg", "rolling_168h_std", "hour_of_day"]
    r = client.post("/ai/features/sets", json={
        "tenant_id": T, "name": "my_set", "description": "mine", "features": features,
        "use_cases": ["testing"],
    })
    assert r.status_code == 201, r.text
    assert r.json()["features"] == features

    listed = client.get("/ai/features/sets", params={"tenant_id": T}).json()["feature_sets"]
    assert listed["my_set"]["features"] == features
    assert "my_set" not in client.get("/ai/features/sets").json()["feature_sets"]

    ref = Asset(as_pairs(rows))
    for h in (24 * 7, 24 * 7 + 11, 24 * 9 - 1):
        got = get_features(client, T, "m1", at(h), feature_set="my_set")
        assert list(got) == features
        assert_features_match(got, ref.features(at(h), features))


def test_user_defined_set_with_unknown_feature_is_rejected(client: TestClient) -> None:
    ingest(client, T, readings("m1", range(3), wave))
    r = client.post("/ai/features/sets", json={
        "tenant_id": T, "name": "bad_set", "features": ["lag_1h", "lag_2h"],
    })
    assert r.status_code == 422
    assert "lag_2h" in r.json()["detail"]
    listed = client.get("/ai/features/sets", params={"tenant_id": T}).json()["feature_sets"]
    assert "bad_set" not in listed
    r = client.post("/ai/features/get", json={
        "tenant_id": T, "asset_id": "m1", "feature_set": "bad_set",
        "as_of": "2024-01-01T02:00:00Z"})
    assert r.status_code == 404
    assert "bad_set" in r.json()["detail"]


def test_weather_observed_between_hours(client: TestClient) -> None:
    put_asset(client, T, "m1", location_id="loc-1")
    ingest(client, T, readings("m1", range(0, 12), wave))
    times = [0.5, 2.75, 3.0 + 1 / 60, 8.0]
    obs = weather("loc-1", times, temperature=lambda h: h * 10, cloud_cover=lambda h: None)
    ingest_weather(client, T, obs)
    ref = Asset([], weather=[{**o, "ts": at(h)} for o, h in zip(obs, times, strict=True)])
    for h in range(0, 12):
        got = get_features(client, T, "m1", at(h), feature_set="forecast_advanced")
        assert got["temperature"] == ref.feature(at(h), "temperature"), h
    assert get_features(client, T, "m1", at(3), feature_set="forecast_advanced")[
        "temperature"] == 27.5  # 02:45, not 03:01


def test_default_hour_is_now_for_forecasts_and_the_last_complete_hour_for_anomalies(
    client: TestClient,
) -> None:
    ingest(client, T, readings("m1", [0], wave))

    def hour() -> datetime:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    for _ in range(3):  # retry if the wall clock crossed an hour mid-test
        before, stamps = hour(), {}
        for fs in ("forecast_basic", "anomaly_detection"):
            r = client.post("/ai/features/get", json={"tenant_id": T, "asset_id": "m1",
                                                      "feature_set": fs})
            assert r.status_code == 200, r.text
            stamps[fs] = datetime.fromisoformat(r.json()["timestamp"].replace("Z", "+00:00"))
        if hour() == before:
            break
    assert stamps["forecast_basic"] == before
    assert stamps["anomaly_detection"] == before - timedelta(hours=1)


def test_user_defined_sets_belong_to_their_tenant(client: TestClient) -> None:
    ingest(client, T, readings("m1", range(30), wave))
    ingest(client, "tenant-b", readings("m1", range(30), wave))
    r = client.post("/ai/features/sets", json={"tenant_id": T, "name": "mine",
                                               "features": ["lag_48h"]})
    assert r.status_code == 201, r.text
    assert get_features(client, T, "m1", at(29), feature_set="mine") == {"lag_48h": None}
    r = client.post("/ai/features/get", json={"tenant_id": "tenant-b", "asset_id": "m1",
                                              "feature_set": "mine", "as_of": iso(at(29))})
    assert r.status_code == 404 and "mine" in r.json()["detail"]
    r = client.post("/ai/features/sets", json={"tenant_id": T, "name": "mine",
                                               "features": ["lag_1h"]})
    assert r.status_code == 409


def test_batch_answers_in_the_order_asked(client: TestClient) -> None:
    rows = readings("a", range(30), wave) + readings("b", range(30), lambda h: -wave(h))
    ingest(client, T, rows)
    r = client.post("/ai/features/get-batch", json={
        "tenant_id": T, "asset_ids": ["b", "a", "b"], "as_of": iso(at(29))})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["asset_id"] for x in results] == ["b", "a", "b"]
    assert results[0]["features"]["lag_1h"] == -wave(28)
    assert results[1]["features"]["lag_1h"] == wave(28)
    assert results[2] == results[0]


def test_status_reports_first_and_last_reading(client: TestClient) -> None:
    ingest(client, T, readings("a", [5.25, 7.5], wave) + readings("b", [3.75, 9.1], wave))
    status = client.get("/ai/features/status", params={"tenant_id": T}).json()
    assert status["assets"] == 2 and status["readings"] == 4 and status["rollup_hours"] == 4
    assert status["first_reading"].replace("+00:00", "Z") == iso(at(3.75))
    assert status["last_reading"].replace("+00:00", "Z").replace(".000", "") == iso(at(9.1))
