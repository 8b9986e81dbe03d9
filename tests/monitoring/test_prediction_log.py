"""The prediction log: what predict logs, external forecasts, idempotence, refresh by
ingest, retention. Every test runs on both configurations."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from aihub.db import write_transaction
from aihub.services.container import Services
from aihub.services.prediction_log import Forecasts
from aihub.services.validation import split_readings
from aihub.timeutil import HOUR_US, to_us
from tests.factories import at, ingest, iso, readings, readings_frame
from tests.monitoring.conftest import TENANT, Register, load, logged

pytestmark = pytest.mark.backends


def test_predict_by_assets_logs_h0_rows_with_actual_and_baselines(
    client: TestClient, services: Services, register: Register, meters: list[str]
) -> None:
    model_id = register()
    hour = at(24 * 8 + 5)
    r = client.post(f"/ai/models/{model_id}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "as_of": iso(hour)})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    rows = logged(services, model_id)
    assert rows.height == 2
    h = to_us(hour)
    for row, asset, scale, pred in zip(rows.to_dicts(), meters, (1.0, 2.0), preds, strict=True):
        assert row["asset_id"] == asset and row["origin"] == h and row["target"] == h
        assert row["horizon"] == 0 and row["source"] == "predict"
        assert row["prediction"] == pytest.approx(pred)
        assert row["actual"] == pytest.approx(load(24 * 8 + 5, scale))
        assert row["persistence"] == pytest.approx(load(24 * 8 + 4, scale))
        assert row["seasonal"] == pytest.approx(load(24 * 1 + 5, scale))


def test_log_false_logs_nothing(client: TestClient, services: Services, register: Register,
                                meters: list[str]) -> None:
    model_id = register()
    r = client.post(f"/ai/models/{model_id}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "as_of": iso(at(200)),
        "log": False})
    assert r.status_code == 200
    assert logged(services, model_id).height == 0


def test_rows_are_logged_with_keys_only(client: TestClient, services: Services,
                                        register: Register, meters: list[str]) -> None:
    model_id = register()
    row = {"hour_of_day": 5, "lag_24h": 41.0, "rolling_24h_avg": 40.0}
    assert client.post(f"/ai/models/{model_id}/predict", json={"rows": [row]}).status_code == 200
    assert logged(services, model_id).height == 0
    keys = [{"asset_id": "meter-a", "timestamp": iso(at(100)), "origin": iso(at(90))},
            {"asset_id": "meter-b", "timestamp": iso(at(101))}]
    r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [row, row], "keys": keys})
    assert r.status_code == 200, r.text
    rows = logged(services, model_id)
    assert rows.get_column("horizon").to_list() == [10, 0]
    assert rows.get_column("actual").to_list() == pytest.approx([load(100), load(101, 2.0)])
    assert rows.get_column("persistence").to_list() == pytest.approx([load(89), load(100, 2.0)])


@pytest.mark.parametrize("keys, where", [
    ([{"asset_id": "meter-a", "timestamp": "2024-01-05T00:30:00Z"}], "keys[0]"),
    ([{"asset_id": "meter-a", "timestamp": "2024-01-05T00:00:00Z",
       "origin": "2024-01-05T01:00:00Z"}], "keys[0]"),
    ([], "keys"),
])
def test_bad_keys_are_422_and_log_nothing(client: TestClient, services: Services,
                                          register: Register, keys: list[object],
                                          where: str) -> None:
    model_id = register()
    row = {"hour_of_day": 5, "lag_24h": 41.0, "rolling_24h_avg": 40.0}
    r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [row], "keys": keys})
    assert r.status_code == 422
    assert where in r.text
    assert logged(services, model_id).height == 0


def test_external_forecasts_need_no_artifact_and_relogging_replaces(
    client: TestClient, services: Services, register: Register, meters: list[str]
) -> None:
    model_id = register("v2.0.0", artifact=False)
    body = {"predictions": [
        {"asset_id": "meter-a", "origin": iso(at(100)), "timestamp": iso(at(100 + h)),
         "value": 40.0 + h} for h in range(24)]}
    r = client.post(f"/ai/models/{model_id}/predictions", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 24}
    first = logged(services, model_id)
    assert first.height == 24
    assert set(first.get_column("source")) == {"external"}
    assert first.get_column("horizon").to_list() == list(range(24))
    body["predictions"][3]["value"] = 99.0
    assert client.post(f"/ai/models/{model_id}/predictions", json=body).json()["accepted"] == 24
    again = logged(services, model_id)
    assert again.height == 24
    assert again.filter(again["horizon"] == 3).get_column("prediction").to_list() == [99.0]


def test_logged_values_and_asset_ids_are_stored_exactly(
    services: Services, register: Register
) -> None:
    """The writer hands rows to the database in bulk (SQLite: up to 1,000 rows per
    statement, the rest in smaller ones): every double and asset id comes back bit for bit."""
    model_id = register(artifact=False)
    version = services.registry.get(model_id)
    rng = np.random.default_rng(7)
    values = [*rng.normal(40, 5, 1100).tolist(), *(10.0 ** rng.uniform(-300, 300, 40)).tolist(),
              *rng.integers(0, 2**63, 40).view(np.float64).tolist(),
              0.1, 1 / 3, 5e-324, 1.7976931348623157e308, -2.5, 1e16, 123456789.0]
    values = [v for v in values if np.isfinite(v)]
    odd = ['quote"d', "back\\slash", "tab\tnew\nline", "ünï-çødé", "emoji-\U0001f600", "x" * 100]
    asset_ids = [odd[i % len(odd)] + f"-{i}" for i in range(len(values))]
    origin = to_us(at(100))
    targets = [origin + (i % 169) * HOUR_US for i in range(len(values))]
    n = services.prediction_log.log(
        version, Forecasts(asset_ids, [origin] * len(values), targets, values), source="external")
    assert n == len(values)
    rows = logged(services, model_id)
    stored = dict(zip(rows.get_column("asset_id"), rows.get_column("prediction"), strict=True))
    assert stored == dict(zip(asset_ids, values, strict=True))
    assert rows.get_column("horizon").to_list() == [
        (t - origin) // HOUR_US for t in rows.get_column("target")]


def test_external_forecasts_validation(client: TestClient, services: Services,
                                       register: Register) -> None:
    model_id = register(artifact=False)
    good = {"asset_id": "meter-a", "origin": iso(at(0)), "timestamp": iso(at(1)), "value": 1.0}
    unknown = client.post("/ai/models/t1:load:v9.9.9/predictions", json={"predictions": [good]})
    assert unknown.status_code == 404
    far = {**good, "timestamp": iso(at(169))}
    r = client.post(f"/ai/models/{model_id}/predictions", json={"predictions": [good, far]})
    assert r.status_code == 422 and "predictions[1]" in r.text
    text = {**good, "value": "1.0"}
    nan = client.post(f"/ai/models/{model_id}/predictions", json={"predictions": [text]})
    assert nan.status_code == 422
    assert logged(services, model_id).height == 0


def test_a_correction_refreshes_actual_and_baselines(
    client: TestClient, services: Services, register: Register, meters: list[str]
) -> None:
    model_id = register(artifact=False)
    body = {"predictions": [
        {"asset_id": "meter-a", "origin": iso(at(100)), "timestamp": iso(at(100 + h)),
         "value": 40.0} for h in (0, 168)]}
    # the second target (hour 268) has no readings yet; its seasonal hour (100) has
    client.post(f"/ai/models/{model_id}/predictions", json=body)
    before = logged(services, model_id).to_dicts()
    assert before[0]["actual"] == pytest.approx(load(100))
    assert before[1]["actual"] is None
    assert before[1]["seasonal"] == pytest.approx(load(100))
    ingest(client, TENANT, readings("meter-a", [99, 100, 268], lambda h: 7.0))
    after = logged(services, model_id).to_dicts()
    assert after[0]["actual"] == 7.0 and after[0]["persistence"] == 7.0
    assert after[1]["actual"] == 7.0 and after[1]["seasonal"] == 7.0
    assert after[1]["persistence"] == 7.0  # L(O - 1h) = L(99)


def test_forecasts_logged_before_their_asset_exists_get_actuals_later(
    client: TestClient, services: Services, register: Register
) -> None:
    model_id = register(artifact=False)
    client.post(f"/ai/models/{model_id}/predictions", json={"predictions": [
        {"asset_id": "new-meter", "origin": iso(at(5)), "timestamp": iso(at(6)), "value": 1.0}]})
    assert logged(services, model_id).get_column("actual").to_list() == [None]
    ingest(client, TENANT, readings("new-meter", range(10), lambda h: 3.0))
    row = logged(services, model_id).to_dicts()[0]
    assert (row["actual"], row["persistence"]) == (3.0, 3.0)


def test_retention_purge_keeps_recent_rows(client: TestClient, services: Services,
                                           register: Register) -> None:
    model_id = register(artifact=False)
    old, recent = at(0), at(24 * 300)
    client.post(f"/ai/models/{model_id}/predictions", json={"predictions": [
        {"asset_id": "m", "origin": iso(ts), "timestamp": iso(ts), "value": 1.0}
        for ts in (old, old + timedelta(days=40), recent)]})
    assert logged(services, model_id).height == 3
    services.score_compactor.run_once()  # the score sums of those days exist
    log = services.prediction_log
    assert log.retention_days == 400
    deleted = log.purge(now=recent + timedelta(days=390))
    assert deleted == 2
    left = logged(services, model_id)
    assert left.get_column("target").to_list() == [to_us(recent)]
    assert left.get_column("target")[0] % HOUR_US == 0
    coverage = client.get(f"/ai/models/{model_id}/performance").json()["coverage"]
    assert coverage["predicted"] == 1


def test_deleting_a_version_drops_its_log(client: TestClient, services: Services,
                                          register: Register) -> None:
    model_id = register(artifact=False)
    client.post(f"/ai/models/{model_id}/predictions", json={"predictions": [
        {"asset_id": "m", "origin": iso(at(0)), "timestamp": iso(at(0)), "value": 1.0}]})
    services.prediction_log.flush()
    assert services.prediction_log.store.count() == 1
    assert client.delete(f"/ai/models/{model_id}").status_code == 200
    assert services.prediction_log.store.count() == 0


def test_the_background_writer_writes_within_about_a_second(
    http: httpx.Client, services: Services
) -> None:
    """Over a real server: nobody flushes, the app's writer does (at least every second)."""
    r = http.post("/ai/models/register", json={"tenant_id": TENANT, "model_name": "vendor",
                                                "version": "v1.0.0"})
    model_id = r.json()["model_id"]
    r = http.post(f"/ai/models/{model_id}/predictions", json={"predictions": [
        {"asset_id": "m", "origin": iso(at(0)), "timestamp": iso(at(h)), "value": 1.0}
        for h in range(5)]})
    assert r.json() == {"accepted": 5}
    deadline = time.monotonic() + 5
    predicted = 0
    while time.monotonic() < deadline and predicted < 5:
        time.sleep(0.1)
        predicted = http.get(f"/ai/models/{model_id}/performance").json()[
            "coverage"]["predicted"]
    assert predicted == 5


def test_a_failed_write_keeps_the_rows_for_the_next_round(
    client: TestClient, services: Services, register: Register
) -> None:
    """PostgreSQL: a month's partition dropped by another process (its purge) after this
    one created it: the write fails, the rows stay queued, the next round recreates it."""
    if services.engine.dialect.name != "postgresql":
        pytest.skip("partitions exist on PostgreSQL only")
    model_id = register(artifact=False)
    body = {"predictions": [
        {"asset_id": "m", "origin": iso(at(0)), "timestamp": iso(at(0)), "value": 1.0}]}
    client.post(f"/ai/models/{model_id}/predictions", json=body)
    assert logged(services, model_id).height == 1
    with services.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE prediction_log_p2024_01")
    client.post(f"/ai/models/{model_id}/predictions", json=body)
    with pytest.raises(Exception, match="partition"):
        services.prediction_log.flush()
    assert services.prediction_log.pending == 1
    assert logged(services, model_id).height == 1


def test_predict_with_horizons_logs_each_target_from_its_origin(
    client: TestClient, services: Services, register: Register, meters: list[str]
) -> None:
    model_id = register()
    origin = at(24 * 8 + 5)
    r = client.post(f"/ai/models/{model_id}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "as_of": iso(origin),
        "horizons": [1, 24]})
    assert r.status_code == 200, r.text
    answer = {(p["asset_id"], p["horizon"]): p["prediction"] for p in r.json()["predictions"]}
    assert len(answer) == 4
    rows = logged(services, model_id).to_dicts()
    assert len(rows) == 4
    o = to_us(origin)
    for row in rows:
        h = row["horizon"]
        assert row["origin"] == o and row["target"] == o + h * HOUR_US
        assert row["prediction"] == pytest.approx(answer[(row["asset_id"], h)])
        assert row["persistence"] == pytest.approx(
            load(24 * 8 + 4, 1.0 if row["asset_id"] == "meter-a" else 2.0))
    # "log": false logs nothing, with horizons too
    r = client.post(f"/ai/models/{model_id}/predict", json={
        "asset_ids": meters, "feature_set": "forecast_basic", "as_of": iso(origin + timedelta(
            hours=1)), "horizons": [1], "log": False})
    assert r.status_code == 200, r.text
    assert logged(services, model_id).height == 4


def test_a_batch_stored_by_a_stream_refreshes_actuals(
    client: TestClient, services: Services, register: Register, meters: list[str]
) -> None:
    # The stream stores validated batches in its own transaction (store_readings): the
    # logged actuals follow it exactly as they follow an HTTP ingest.

    model_id = register(artifact=False)
    client.post(f"/ai/models/{model_id}/predictions", json={"predictions": [
        {"asset_id": "meter-a", "origin": iso(at(100)), "timestamp": iso(at(100)),
         "value": 40.0}]})
    assert logged(services, model_id).to_dicts()[0]["actual"] == pytest.approx(load(100))
    batch, problems = split_readings(readings_frame(readings("meter-a", [100], lambda h: 9.5)))
    assert not problems
    with write_transaction(services.engine) as conn:
        result = services.ingest.store_readings(conn, TENANT, batch)
    services.ingest.committed(TENANT, "readings", result)
    assert logged(services, model_id).to_dicts()[0]["actual"] == 9.5


def test_an_assets_logged_forecasts_are_listed_by_target_in_pages(
    client: TestClient, services: Services, register: Register, meters: list[str]
) -> None:
    model_id = register(artifact=False)
    rows = [{"asset_id": a, "origin": iso(at(100)), "timestamp": iso(at(100 + h)),
             "value": float(h)} for a in meters for h in (1, 2, 3)]
    rows.append({"asset_id": "meter-a", "origin": iso(at(101)), "timestamp": iso(at(102)),
                 "value": 99.0})
    assert client.post(f"/ai/models/{model_id}/predictions",
                       json={"predictions": rows}).json() == {"accepted": 7}
    services.prediction_log.flush()
    url = f"/ai/models/{model_id}/predictions"
    body = client.get(url, params={"asset_id": "meter-a"}).json()
    assert body["total"] == 4 and body["model_id"] == model_id
    got = [(p["timestamp"], p["origin"], p["horizon"], p["prediction"])
           for p in body["predictions"]]
    assert got == [(iso(at(101)), iso(at(100)), 1, 1.0), (iso(at(102)), iso(at(100)), 2, 2.0),
                   (iso(at(102)), iso(at(101)), 1, 99.0), (iso(at(103)), iso(at(100)), 3, 3.0)]
    assert body["predictions"][0]["actual"] == pytest.approx(load(101))
    assert body["predictions"][0]["source"] == "external"
    page = client.get(url, params={"asset_id": "meter-a", "start": iso(at(102)),
                                   "end": iso(at(103)), "limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [p["prediction"] for p in page["predictions"]] == [99.0]
    assert client.get(url, params={"asset_id": "meter-c"}).json()["total"] == 0
    for bad in ({}, {"asset_id": "meter-a", "limit": 0},
                {"asset_id": "meter-a", "start": iso(at(5)), "end": iso(at(5))},
                {"asset_id": "meter-a", "start": "yesterday"}):
        assert client.get(url, params=bad).status_code == 422, bad
    assert client.get("/ai/models/t1:load:v9.9.9/predictions",
                      params={"asset_id": "meter-a"}).status_code == 404
