"""Knowledge time on ingest, through HTTP, the CLI's file reader and the one validation:
``known_at``/``quality`` per batch or per row, ``issued_at`` for weather, a knowledge time
in the future is a 422 that stores nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from aihub.cli.files import readings_from_file, weather_from_file
from aihub.services.container import Services
from aihub.timeutil import to_us, utcnow
from tests.factories import T0, at, iso, readings

pytestmark = pytest.mark.backends

T = "tenant-known"


def versions(services: Services, asset_id: str) -> list[tuple[int, int, float, int]]:
    key = services.timeseries.get_assets(T, [asset_id])[0].key
    frame = services.timeseries.load_reading_versions([key], 0, 2**62)
    return [(r[1], r[2], r[3], r[4]) for r in frame.iter_rows()]


def test_batch_and_row_knowledge_times_and_quality(client: TestClient, services: Services) -> None:
    rows = readings("m1", [0, 1])
    rows[1] |= {"known_at": iso(at(30)), "quality": "estimated"}
    body = {"tenant_id": T, "known_at": iso(at(2)), "readings": rows}
    assert client.post("/ai/features/ingest", json=body).status_code == 200
    assert versions(services, "m1") == [
        (to_us(at(0)), to_us(at(2)), 0.0, 0),
        (to_us(at(1)), to_us(at(30)), 1.0, 1),
    ]
    # The actual read replaces the estimate; the estimate stays as a version.
    fix = {"tenant_id": T, "known_at": iso(at(48)),
           "readings": [{"asset_id": "m1", "ts": rows[1]["ts"], "value": 1.5}]}
    assert client.post("/ai/features/ingest", json=fix).status_code == 200
    assert versions(services, "m1")[1:] == [
        (to_us(at(1)), to_us(at(30)), 1.0, 1),
        (to_us(at(1)), to_us(at(48)), 1.5, 0),
    ]


def test_future_knowledge_time_or_bad_quality_is_a_422_and_stores_nothing(
    client: TestClient, services: Services
) -> None:
    future = iso(utcnow() + timedelta(minutes=10))
    r = client.post("/ai/features/ingest",
                    json={"tenant_id": T, "known_at": future, "readings": readings("m2", [0])})
    assert r.status_code == 422 and "future" in r.text
    rows = readings("m2", [0, 1, 2])
    rows[2]["known_at"] = future
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    assert r.status_code == 422 and "row 2" in r.json()["detail"] and "known_at" in r.text
    rows = readings("m2", [0, 1])
    rows[1]["quality"] = "guessed"
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    assert r.status_code == 422 and "row 1" in r.json()["detail"] and "quality" in r.text
    r = client.post("/ai/features/weather", json={
        "tenant_id": T, "issued_at": future,
        "observations": [{"location_id": "l1", "ts": iso(T0), "temperature": 1.0}],
    })
    assert r.status_code == 422
    assert services.timeseries.get_assets(T, ["m2"]) == []
    assert services.timeseries.load_weather(T, ["l1"], 0, 2**62).is_empty()


def test_weather_issue_times_per_batch_and_row(client: TestClient, services: Services) -> None:
    forecast = [{"location_id": "l1", "ts": iso(at(24)), "temperature": 3.0}]
    assert client.post("/ai/features/weather", json={
        "tenant_id": T, "issued_at": iso(at(0)), "observations": forecast}).status_code == 200
    observed = [{"location_id": "l1", "ts": iso(at(24)), "temperature": 2.0,
                 "issued_at": iso(at(24.5))}]
    assert client.post("/ai/features/weather", json={
        "tenant_id": T, "observations": observed}).status_code == 200
    v = services.timeseries.load_weather_versions(T, ["l1"], 0, 2**62)
    assert v.select("known_at", "temperature").rows() == [
        (to_us(at(0)), 3.0), (to_us(at(24.5)), 2.0)
    ]


def test_files_map_knowledge_and_quality_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    pl.DataFrame({
        "meter": ["a", "a"], "time": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"],
        "kwh": [1.0, 2.0], "arrived": ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00+01:00"],
        "flag": ["actual", "Estimated"],
    }).write_csv(path)
    batch = readings_from_file(path, fmt=None, asset_col="meter", ts_col="time",
                               value_col="kwh", asset_id=None, timezone=None,
                               known_at_col="arrived", quality_col="flag")
    assert batch.frame.get_column("known_at").to_list() == [
        to_us(at(24)), to_us(at(47))
    ]
    assert batch.frame.get_column("quality").to_list() == ["actual", "estimated"]
    assert batch.labels["known_at"] == "column 'arrived'"
    wpath = tmp_path / "w.csv"
    pl.DataFrame({"location_id": ["l"], "ts": ["2024-01-02T00:00:00Z"], "temperature": [1.0],
                  "issued": ["2024-01-01T00:00:00Z"]}).write_csv(wpath)
    wb = weather_from_file(wpath, fmt=None, location_col="location_id", ts_col="ts",
                           location_id=None, timezone=None, issued_at_col="issued")
    assert wb.frame.get_column("issued_at").to_list() == [to_us(T0)]
