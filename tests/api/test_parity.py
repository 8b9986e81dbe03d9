"""Online/offline parity: ``POST /ai/features/get`` with ``as_of=H`` equals the export row
at H, feature by feature (exact equality, nulls included), for every built-in set, for
assets with gaps, sub-hourly readings, weather and different timezones. The Parquet file
is read back with pyarrow and its schema and compression checked."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from aihub.features.catalog import BUILTIN_SETS, CATALOG
from tests.factories import as_pairs, ingest, ingest_weather, iso, put_asset, readings, weather
from tests.reference import Asset

T = "tenant-par"
BASE = datetime(2024, 3, 25, tzinfo=UTC)  # spans the spring DST switch in Europe and the US
START, END = BASE + timedelta(days=2), BASE + timedelta(days=12)

ASSETS = {  # asset_id: (timezone, country, location, minutes between readings, gap hours)
    "utc-hourly": ("UTC", None, None, 60, {50, 51, 52, 100, 170}),
    "berlin-15min": ("Europe/Berlin", "DE", "berlin", 15, set(range(120, 150))),
    "ny-hourly": ("America/New_York", "US", "nyc", 60, {24 * 5 + h for h in range(0, 24, 2)}),
    "kolkata-30min": ("Asia/Kolkata", "IN", None, 30, set(range(200, 230))),
}


def load(x: float, seed: int) -> float:
    return 20.0 + seed + 9.0 * ((x * 0.37 + seed) % 1.0) + (x % 24) * 0.7


@pytest.fixture
def loaded(client: TestClient) -> dict[str, list[dict[str, Any]]]:
    sent: dict[str, list[dict[str, Any]]] = {}
    for i, (asset, (tz, country, location, minutes, gaps)) in enumerate(ASSETS.items()):
        fields: dict[str, Any] = {"timezone": tz}
        if country:
            fields["country"] = country
        if location:
            fields["location_id"] = location
        put_asset(client, T, asset, **fields)
        steps = [k * minutes / 60 for k in range(int(24 * 14 * 60 / minutes))]
        rows = readings(asset, [s for s in steps if int(s) not in gaps],
                        lambda x, i=i: load(x, i), base=BASE)
        ingest(client, T, rows)
        sent[asset] = rows
    for location, offset in (("berlin", 0.0), ("nyc", 10.0)):
        # Every 2 hours with a 10-hour hole: some hours have no valid weather.
        hours = [h for h in range(0, 24 * 14, 2) if not 60 <= h < 70]
        ingest_weather(client, T, weather(location, hours, base=BASE,
                                          temperature=lambda h, o=offset: o + (h % 24) / 2,
                                          humidity=lambda h: 40.0 + h % 50))
    return sent


def export(client: TestClient, feature_set: str, lookback: int) -> tuple[pa.Table, str]:
    r = client.post("/ai/features/export", json={
        "tenant_id": T, "feature_set": feature_set, "start_time": iso(START),
        "end_time": iso(END), "asset_ids": list(ASSETS), "lookback_hours": lookback,
    })
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed"
    path = body["storage_path"]
    table = pq.read_table(path)
    assert body["row_count"] == table.num_rows
    return table, path


@pytest.mark.parametrize(("feature_set", "lookback"), [
    ("forecast_basic", 168), ("forecast_advanced", 168), ("anomaly_detection", 168),
    ("forecast_basic", 24), ("anomaly_detection", 30),
])
def test_online_equals_export_row_feature_by_feature(
    client: TestClient, loaded: dict[str, list[dict[str, Any]]], feature_set: str, lookback: int
) -> None:
    table, _ = export(client, feature_set, lookback)
    rows = table.to_pylist()
    by_key = {(r["asset_id"], r["timestamp"]): r for r in rows}
    names = list(BUILTIN_SETS[feature_set].features)

    # One row per asset-hour with readings in [START, END), no more, no less.
    for asset, sent in loaded.items():
        ref = Asset(as_pairs(sent))
        want_hours = ref.hours_with_readings(START, END)
        got_hours = sorted(ts for a, ts in by_key if a == asset)
        assert got_hours == want_hours, asset
    assert len(by_key) == len(rows)

    rng = random.Random(f"{feature_set}-{lookback}")
    sampled = rng.sample(sorted({ts for _, ts in by_key}), 12)
    for H in sampled:
        r = client.post("/ai/features/get-batch", json={
            "tenant_id": T, "asset_ids": list(ASSETS), "feature_set": feature_set,
            "lookback_hours": lookback, "as_of": iso(H),
        })
        assert r.status_code == 200, r.text
        for result in r.json()["results"]:
            row = by_key.get((result["asset_id"], H))
            if row is None:
                continue  # that asset has no readings at H: no export row
            online = result["features"]
            assert list(online) == names
            for name in names:
                assert online[name] == row[name], (result["asset_id"], H, name)
                assert type(online[name]) is type(row[name]), (result["asset_id"], H, name)

    # And single /get calls for a few exact (asset, H) pairs.
    for asset, H in rng.sample(sorted(by_key), 8):
        r = client.post("/ai/features/get", json={
            "tenant_id": T, "asset_id": asset, "feature_set": feature_set,
            "lookback_hours": lookback, "as_of": iso(H + timedelta(minutes=rng.randint(0, 59))),
        })
        assert r.status_code == 200, r.text
        assert r.json()["timestamp"] == iso(H)
        online = r.json()["features"]
        assert {n: online[n] for n in names} == {n: by_key[(asset, H)][n] for n in names}


@pytest.mark.parametrize("feature_set", sorted(BUILTIN_SETS))
def test_export_file_schema_target_and_compression(
    client: TestClient, loaded: dict[str, list[dict[str, Any]]], feature_set: str
) -> None:
    table, path = export(client, feature_set, 168)
    fs = BUILTIN_SETS[feature_set]
    expected = ["tenant_id", "asset_id", "timestamp", *fs.features]
    if feature_set != "anomaly_detection":
        expected.append("target")
    assert table.column_names == expected
    schema = table.schema
    for col in ("tenant_id", "asset_id"):
        t = schema.field(col).type
        assert pa.types.is_string(t) or pa.types.is_large_string(t), (col, t)
    ts_type = schema.field("timestamp").type
    assert pa.types.is_timestamp(ts_type) and ts_type.tz in ("UTC", "+00:00")
    for f in fs.features:
        want = pa.int32() if CATALOG[f].dtype == "int" else pa.float64()
        assert schema.field(f).type == want, f
    assert set(table.column("tenant_id").to_pylist()) == {T}

    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups >= 1
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            assert meta.row_group(g).column(c).compression == "ZSTD"

    if fs.has_target:  # target = L(H), recomputed from the readings that were sent
        refs = {a: Asset(as_pairs(rows)) for a, rows in loaded.items()}
        for row in table.to_pylist():
            want = refs[row["asset_id"]].L(row["timestamp"])
            assert want is not None and row["target"] == pytest.approx(want, rel=1e-12)


def test_export_without_rows_is_a_valid_file_with_the_same_schema(
    client: TestClient, loaded: dict[str, list[dict[str, Any]]]
) -> None:
    full, _ = export(client, "forecast_advanced", 168)
    r = client.post("/ai/features/export", json={
        "tenant_id": T, "feature_set": "forecast_advanced",
        "start_time": "2030-01-01T00:00:00Z", "end_time": "2030-01-02T00:00:00Z",
    })
    assert r.status_code == 200, r.text
    assert r.json()["row_count"] == 0
    empty = pq.read_table(r.json()["storage_path"])
    assert empty.num_rows == 0
    assert empty.schema == full.schema


def test_export_in_many_chunks_equals_one_chunk(
    client: TestClient, loaded: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import aihub.services.exports as exports_module

    whole, _ = export(client, "forecast_advanced", 168)
    monkeypatch.setattr(exports_module, "CHUNK_GRID_ROWS", 1)  # one asset per chunk
    chunked, path = export(client, "forecast_advanced", 168)
    assert pq.ParquetFile(path).metadata.num_row_groups >= len(ASSETS)
    key = ["asset_id", "timestamp"]
    assert chunked.sort_by([(k, "ascending") for k in key]).to_pylist() == \
        whole.sort_by([(k, "ascending") for k in key]).to_pylist()
