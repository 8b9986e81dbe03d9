"""Tests that would catch a leak: anything known after O (a correction, a later forecast,
a reading of an hour not complete before O, a late reading) leaves the row at (O, T)
unchanged while ``"latest"`` rows follow it; online answers equal export rows for every
(O, T, as_known); ``as_known = K`` reproduces an export made at K after later
corrections. On every backend, seeded random changes."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aihub.services.container import Services
from aihub.timeutil import to_us
from tests.factories import iso
from tests.knowledge.scenario import DAYS, Scenario, build, ingest
from tests.knowledge.test_origin_reference import EVERYTHING, HORIZONS, export_rows
from tests.reference import LATEST, assert_features_match

pytestmark = pytest.mark.backends

T = "tenant-origins"
HOUR = timedelta(hours=1)


def features_of(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in EVERYTHING}


def keyed(rows: list[dict[str, Any]]) -> dict[tuple[str, datetime, datetime], dict[str, Any]]:
    return {(r["asset_id"], r["origin"], r["timestamp"]): r for r in rows}


@pytest.fixture
def scenario(services: Services) -> Scenario:
    sc = build(T)
    ingest(services, sc)
    services.features.create_set(T, name="everything", description="", features=EVERYTHING,
                                 use_cases=[])
    return sc


@pytest.mark.parametrize("seed", [1, 2])
def test_what_is_known_after_the_origin_changes_no_origin_row(
    services: Services, scenario: Scenario, seed: int
) -> None:
    rng = random.Random(seed)
    name = "sub"
    asset = scenario.assets[name]
    start = scenario.starts[name] + timedelta(days=2)
    end = start + timedelta(days=6)
    before = keyed(export_rows(services, start, end, "origin"))
    latest_before = keyed(export_rows(services, start, end, "latest"))
    cutoff = max(o for _, o, _ in before)  # every origin is at or before it
    after = cutoff + timedelta(minutes=rng.randint(1, 600))
    changes: list[tuple[str, datetime, float, datetime, str]] = []
    instants = sorted(ts for ts in asset.versions if ts < cutoff)
    for ts in rng.sample(instants, 40):  # corrections of the past
        changes.append((name, ts, round(rng.uniform(0, 5), 3), after, "edited"))
    for k in range(1, 30):  # readings of hours not complete before the last origins
        changes.append((name, cutoff - timedelta(minutes=30 * k - 15), 9.0, after, "actual"))
    gaps = [start + k * HOUR for k in range(150)
            if not asset.hour_values(start + k * HOUR, LATEST)]
    for hour in gaps[:10]:  # late readings of hours that had none
        changes.append((name, hour + timedelta(minutes=5), 7.5, after, "actual"))
    for ts, value, known, quality in [(c[1], c[2], c[3], c[4]) for c in changes]:
        scenario.send(name, ts, value, known, quality)
    ingest(services, scenario, sends=changes)
    forecast = [(start + k * HOUR, after, 99.0, 1.0) for k in range(0, 24 * 7)]
    for ts, known, temp, hum in forecast:  # a later forecast for every target
        scenario.send_weather(ts, known, temp, hum)
    from tests.knowledge.scenario import _weather
    _weather(services, scenario, forecast)

    again = keyed(export_rows(services, start, end, "origin"))
    assert set(again) >= set(before)
    for key, row in before.items():
        assert features_of(again[key]) == features_of(row), key
    latest_after = keyed(export_rows(services, start, end, "latest"))
    moved = [k for k in latest_before if k in latest_after
             and features_of(latest_after[k]) != features_of(latest_before[k])]
    assert len(moved) > len(latest_before) // 2  # the later forecast alone moves every row
    for (a, o, t), row in latest_after.items():
        if a == name:
            assert_features_match(features_of(row) | {"target": row["target"],
                                                      "target_quality": row["target_quality"]},
                                  asset.row(o, t, EVERYTHING, "latest"))


def test_as_known_k_reproduces_the_export_made_at_k(services: Services,
                                                    scenario: Scenario) -> None:
    name = "hourly"
    K = scenario.starts[name] + timedelta(days=8, hours=3, minutes=17)
    start, end = scenario.starts[name] + timedelta(days=2), scenario.starts[name] + \
        timedelta(days=DAYS)
    # The world as it stood at K, in a tenant of its own: only what was known by then.
    then = Scenario("tenant-at-k", {name: type(scenario.assets[name])(timezone="Europe/Berlin",
                                                                      country="DE")},
                    {name: scenario.starts[name]})
    for s in scenario.sends:
        if s[0] == name and s[3] <= K:
            then.send(*s)
    for w in scenario.weather:
        if w[1] <= K:
            then.send_weather(*w)
    ingest(services, then)
    services.features.create_set("tenant-at-k", name="everything", description="",
                                 features=EVERYTHING, use_cases=[])
    import tests.knowledge.test_origin_reference as ref

    made_at_k = keyed(_export(services, "tenant-at-k", start, end, "latest", ref))
    reproduced = keyed([r for r in export_rows(services, start, end, to_us(K))
                        if r["asset_id"] == name])
    assert len(made_at_k) > 20
    assert set(made_at_k) == {(a, o, t) for a, o, t in reproduced}
    for key, row in made_at_k.items():
        other = reproduced[key]
        assert {k: other[k] for k in row if k != "tenant_id"} == \
            {k: v for k, v in row.items() if k != "tenant_id"}, key
    # ... while "latest" today differs: the corrections after K are in it.
    latest = keyed([r for r in export_rows(services, start, end, "latest")
                    if r["asset_id"] == name])
    assert any(features_of(latest[k]) != features_of(made_at_k[k])
               for k in made_at_k if k in latest)


def _export(services: Services, tenant: str, start: datetime, end: datetime, as_known: Any,
            ref: Any) -> list[dict[str, Any]]:
    old = ref.T
    ref.T = tenant
    try:
        return export_rows(services, start, end, as_known)  # type: ignore[no-any-return]
    finally:
        ref.T = old


@pytest.mark.parametrize("as_known", ["latest", "origin", "K"])
def test_online_equals_export_for_every_origin_and_horizon(
    client: TestClient, services: Services, scenario: Scenario, as_known: str
) -> None:
    name = "sub"
    start = scenario.starts[name] + timedelta(days=3)
    end = start + timedelta(days=4)
    K = start + timedelta(days=3, hours=19)
    known: Any = to_us(K) if as_known == "K" else as_known
    rows = keyed(export_rows(services, start, end, known))
    origins = sorted({o for a, o, _ in rows if a == name})
    assert len(origins) >= 3
    compared = 0
    for o in origins:
        body = {"tenant_id": T, "asset_id": name, "feature_set": "everything",
                "as_of": iso(o), "horizons": list(HORIZONS),
                "as_known": iso(K) if as_known == "K" else as_known}
        r = client.post("/ai/features/get", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["origin"] == iso(o) and [x["horizon"] for x in answer["rows"]] == \
            list(HORIZONS)
        for x in answer["rows"]:
            t = datetime.fromisoformat(x["timestamp"].replace("Z", "+00:00"))
            if (name, o, t) in rows:
                want = features_of(rows[(name, o, t)])
                assert x["features"] == want, (o, t)
                compared += 1
    batch = client.post("/ai/features/get-batch", json={
        "tenant_id": T, "asset_ids": [name, "hourly"], "feature_set": "everything",
        "as_of": iso(origins[0]), "horizons": list(HORIZONS),
        "as_known": iso(K) if as_known == "K" else as_known})
    assert batch.status_code == 200
    assert batch.json()["results"][0]["rows"] == client.post("/ai/features/get", json={
        "tenant_id": T, "asset_id": name, "feature_set": "everything",
        "as_of": iso(origins[0]), "horizons": list(HORIZONS),
        "as_known": iso(K) if as_known == "K" else as_known}).json()["rows"]
    assert compared >= 10


def test_plain_requests_keep_their_shape_and_bad_options_are_422(
    client: TestClient, scenario: Scenario
) -> None:
    o = scenario.starts["sub"] + timedelta(days=5)
    base = {"tenant_id": T, "asset_id": "sub", "feature_set": "forecast_basic",
            "as_of": iso(o)}
    plain = client.post("/ai/features/get", json=base).json()
    assert "rows" not in plain and "origin" not in plain
    same = client.post("/ai/features/get", json=base | {"as_known": "latest",
                                                        "horizons": [0]}).json()
    assert same["rows"][0]["features"] == plain["features"]
    known = client.post("/ai/features/get", json=base | {"as_known": "origin"}).json()
    assert set(known) == set(plain) and known["timestamp"] == plain["timestamp"]
    rows = client.post("/ai/features/get", json=base | {"horizons": [0, 1]}).json()
    assert set(rows) == {"tenant_id", "asset_id", "feature_set", "origin", "as_known", "rows",
                         "feature_count", "computed_at"}
    assert set(rows["rows"][0]) == {"timestamp", "horizon", "features"}
    for bad in ({"horizons": [169]}, {"horizons": {"min": 5, "max": 2}}, {"as_known": "soon"},
                {"as_known": "2024-01-01T00:00:00"}, {"horizons": []}):
        r = client.post("/ai/features/get", json=base | bad)
        assert r.status_code == 422, (bad, r.text)
    r = client.post("/ai/features/get", json=base | {"feature_set": "anomaly_detection",
                                                     "horizons": [0, 24]})
    assert r.status_code == 422 and "horizon 0" in r.text
    r = client.post("/ai/features/export", json={
        "tenant_id": T, "start_time": iso(o), "end_time": iso(o + timedelta(days=1)),
        "origins": {"every_hours": 5, "at": "10:00"}})
    assert r.status_code == 422 and "every_hours" in r.text


def test_export_over_http_records_and_lists_its_options(client: TestClient,
                                                        scenario: Scenario) -> None:
    start = scenario.starts["sub"] + timedelta(days=3)
    r = client.post("/ai/features/export", json={
        "tenant_id": T, "feature_set": "everything", "start_time": iso(start),
        "end_time": iso(start + timedelta(days=2)), "horizons": [0, 24],
        "origins": {"every_hours": 12, "at": "10:00", "timezone": "Europe/Berlin"},
        "as_known": "origin"})
    assert r.status_code == 200, r.text
    assert r.json()["options"] == {
        "origins": {"every_hours": 12, "at": "10:00", "timezone": "Europe/Berlin"},
        "horizons": [0, 24], "as_known": "origin"}
    listed = client.get("/ai/features/exports", params={"tenant_id": T}).json()["exports"]
    assert listed[0]["options"]["horizons"] == [0, 24]
    plain = client.post("/ai/features/export", json={
        "tenant_id": T, "feature_set": "everything", "start_time": iso(start),
        "end_time": iso(start + timedelta(days=1))}).json()
    assert plain["options"] is None
    import pyarrow.parquet as pq

    assert pq.read_table(plain["storage_path"]).column_names[:3] == [
        "tenant_id", "asset_id", "timestamp"]
    assert "target_quality" not in pq.read_table(plain["storage_path"]).column_names
