"""Ingest bodies parsed straight into columns: JSON (in pieces, with per-row type errors
naming row and field), Arrow IPC streams and Parquet files with the same rules and the
same answers; bad bytes are a clean 422 and a rejected batch stores nothing."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

import aihub.services.json_body as json_body
from aihub.services.container import Services
from tests.factories import T0, readings

T = "tenant-bodies"
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


def stored(services: Services, asset_id: str, tenant: str = T) -> list[tuple[int, float]]:
    found = services.timeseries.get_assets(tenant, [asset_id])
    if not found:
        return []
    return services.timeseries.load_readings(found[0].key, 0, 2**62).rows()  # type: ignore[return-value]


def us(ts: datetime) -> int:
    return int((ts - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def arrow_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def readings_table(n: int = 5, asset: str = "m1", **overrides: Any) -> pa.Table:
    cols: dict[str, Any] = {
        "asset_id": pa.array([asset] * n),
        "ts": pa.array([T0 + timedelta(hours=h) for h in range(n)],
                       type=pa.timestamp("us", tz="UTC")),
        "value": pa.array([1.0 + h for h in range(n)]),
    }
    cols.update(overrides)
    return pa.table({k: v for k, v in cols.items() if v is not None})


def post(client: TestClient, body: bytes, media: str, tenant: str | None = T,
         path: str = "/ai/features/ingest") -> httpx.Response:
    params = {"tenant_id": tenant} if tenant is not None else {}
    return client.post(path, content=body, params=params, headers={"Content-Type": media})


def assert_422_row(r: httpx.Response, row: int, field: str) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert f"row {row}" in body["detail"] and field in body["detail"], body
    assert body["details"][0]["row"] == row and body["details"][0]["field"] == field, body
    return body  # type: ignore[no-any-return]


# -- JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "value", "needle"), [
    ("value", True, "not true"),
    ("value", "1.5", "not a string"),
    ("value", {"v": 1}, "not an object"),
    ("value", [1.0], "not an array"),
    ("asset_id", 7, "must be a string"),
    ("ts", 1704067200, "ISO 8601"),
    ("ts", "2024-01-01T05:00:00", "no timezone"),
    ("ts", "2024-02-30T00:00:00Z", "not an ISO 8601"),
])
def test_json_type_errors_name_row_and_field(client: TestClient, services: Services, cell: str,
                                             value: Any, needle: str) -> None:
    rows = readings("m1", range(6))
    rows[4][cell] = value
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    body = assert_422_row(r, 4, cell)
    assert needle in body["detail"], body
    assert stored(services, "m1") == []


def test_json_row_shape_errors(client: TestClient, services: Services) -> None:
    rows: list[Any] = readings("m1", range(4))
    rows[1] = {**rows[1], "unit": "kWh"}
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    assert_422_row(r, 1, "unit")
    rows[1] = "m1,2024-01-01,1"
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    assert r.status_code == 422 and "row 1" in r.json()["detail"], r.text
    assert "JSON object" in r.json()["detail"]
    rows[1] = {"asset_id": "m1", "value": 1.0}
    assert_422_row(client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows}),
                   1, "ts")
    assert stored(services, "m1") == []


def test_the_first_bad_row_is_named_and_all_are_counted(client: TestClient) -> None:
    rows = readings("m1", range(10))
    rows[7]["value"] = "x"
    rows[3]["asset_id"] = "../etc"
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    body = assert_422_row(r, 3, "asset_id")
    assert "2 bad row(s)" in body["detail"]
    assert [d["row"] for d in body["details"]] == [3, 7]


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut bodies into ~2 KiB pieces, so a small test body spans many of them."""
    monkeypatch.setattr(json_body, "PIECE_BYTES", 2048)


def test_pieces_number_rows_across_the_whole_body(client: TestClient, services: Services,
                                                  small_pieces: None) -> None:
    rows = readings("m1", range(300), lambda h: h / 2)
    rows[250]["value"] = None
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    assert_422_row(r, 250, "value")
    rows[250]["value"] = 125.0
    text = json.dumps({"readings": rows, "tenant_id": T}, indent=2)  # pretty, tenant last
    r = client.post("/ai/features/ingest", content=text,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 300
    assert stored(services, "m1") == [(us(T0 + timedelta(hours=h)), h / 2) for h in range(300)]


@pytest.mark.parametrize("trap", ['},{"asset_id": "m9"', "}, {", '\\"},{\\"'])
def test_a_boundary_inside_a_string_is_not_a_cut(client: TestClient, services: Services,
                                                 small_pieces: None, trap: str) -> None:
    # An unknown field whose text looks like the boundary between two readings: the
    # whole-body parse decides, and names the row.
    rows: list[dict[str, Any]] = readings("m1", range(200))
    rows[120]["note"] = trap * 300
    r = client.post("/ai/features/ingest", json={"tenant_id": T, "readings": rows})
    assert_422_row(r, 120, "note")
    assert stored(services, "m1") == []


def test_non_finite_literals_in_a_later_piece(client: TestClient, small_pieces: None) -> None:
    rows = readings("m1", range(200))
    text = json.dumps({"tenant_id": T, "readings": rows})
    marker = json.dumps(rows[150])
    assert text.count(marker) == 1
    text = text.replace(marker, marker.replace('"value": 150.0', '"value": NaN'))
    r = client.post("/ai/features/ingest", content=text,
                    headers={"Content-Type": "application/json"})
    assert_422_row(r, 150, "value")


@pytest.mark.parametrize("text", [
    '{"tenant_id": "t", "readings": [{"asset_id": "m1", "ts": "2024-01-01T00:00:00Z", "value": 1}',
    '{"tenant_id": "t", "readings": {"asset_id": "m1"}}',
    '{"tenant_id": "t", "readings": 5}',
    '{"tenant_id": "t"}',
    '{"tenant_id": "t", "readings": []}',
    '[{"tenant_id": "t"}]',
    '{"tenant_id": 5, "readings": [{"asset_id": "m1", "ts": "2024-01-01T00:00:00Z", "value": 1}]}',
    '{"tenant_id": "t", "readings": [], "readings": [{"asset_id": "m1", '
    '"ts": "2024-01-01T00:00:00Z", "value": 1}], "re\\u0061dings": []}',
    "",
    "\x00\x01",
])
def test_malformed_json_bodies_are_422(client: TestClient, services: Services,
                                       text: str) -> None:
    r = client.post("/ai/features/ingest", content=text,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "Traceback" not in r.text and r.json()["detail"]
    assert not services.timeseries.tenant_exists("t")


def test_row_limit_is_found_while_parsing(client: TestClient, services: Services,
                                          small_pieces: None) -> None:
    services.ingest.max_rows = 100
    r = client.post("/ai/features/ingest",
                    json={"tenant_id": T, "readings": readings("m1", range(300))})
    assert r.status_code == 413 and "100" in r.json()["detail"], r.text
    assert stored(services, "m1") == []


def test_query_tenant_must_agree_with_a_json_body(client: TestClient) -> None:
    body = {"tenant_id": T, "readings": readings("m1", range(2))}
    r = client.post("/ai/features/ingest", params={"tenant_id": "other"}, json=body)
    assert r.status_code == 422 and "tenant_id" in r.json()["detail"], r.text
    r = client.post("/ai/features/ingest", params={"tenant_id": T}, json=body)
    assert r.status_code == 200, r.text


# -- Arrow IPC and Parquet ------------------------------------------------------------------


@pytest.mark.parametrize("media", [ARROW, PARQUET, "application/x-parquet"])
def test_binary_bodies_store_what_json_stores(client: TestClient, services: Services,
                                              media: str) -> None:
    table = readings_table(48, "bin")
    body = arrow_bytes(table) if media == ARROW else parquet_bytes(table)
    r = post(client, body, media)
    assert r.status_code == 200, r.text
    assert r.json() == {"tenant_id": T, "accepted": 48, "assets": ["bin"],
                        "first_ts": "2024-01-01T00:00:00Z", "last_ts": "2024-01-02T23:00:00Z"}
    via_json = client.post("/ai/features/ingest", json={
        "tenant_id": T, "readings": readings("js", range(48), lambda h: 1.0 + h)})
    assert via_json.status_code == 200
    assert stored(services, "bin") == stored(services, "js") != []


def test_arrow_zones_units_strings_ints_and_dictionaries(client: TestClient,
                                                         services: Services) -> None:
    berlin = pa.array([us(T0) * 1000 + h * 3_600_000_000_000 for h in range(3)],
                      type=pa.timestamp("ns", tz="Europe/Berlin"))
    t1 = readings_table(3, "a1", ts=berlin, value=pa.array([1, 2, 3], type=pa.int32()))
    t2 = readings_table(3, "a2", ts=pa.array(["2024-01-01T01:00:00+01:00",
                                              "2024-01-01T01:00:00Z",
                                              "2024-01-01T02:00:00.5Z"]),
                        asset_id=pa.array(["a2"] * 3).dictionary_encode())
    for t in (t1, t2):
        r = post(client, arrow_bytes(t), ARROW)
        assert r.status_code == 200, r.text
    h = 3_600_000_000
    assert stored(services, "a1") == [(us(T0), 1.0), (us(T0) + h, 2.0), (us(T0) + 2 * h, 3.0)]
    assert stored(services, "a2") == [(us(T0), 1.0), (us(T0) + h, 2.0),
                                      (us(T0) + 2 * h + 500_000, 3.0)]


@pytest.mark.parametrize(("change", "status", "needle"), [
    ({"ts": pa.array([datetime(2024, 1, 1, h) for h in range(5)],
                     type=pa.timestamp("us"))}, 422, "time zone"),
    ({"ts": pa.array([us(T0)] * 5, type=pa.int64())}, 422, "ts"),
    ({"value": pa.array([True] * 5)}, 422, "value"),
    ({"value": pa.array(["1.5"] * 5)}, 422, "value"),
    ({"asset_id": pa.array([1] * 5)}, 422, "asset_id"),
    ({"value": None}, 422, "value"),
    ({"extra": pa.array([1] * 5)}, 422, "extra"),
])
def test_arrow_column_errors(client: TestClient, services: Services, change: dict[str, Any],
                             status: int, needle: str) -> None:
    for body, media in ((arrow_bytes(readings_table(**change)), ARROW),
                        (parquet_bytes(readings_table(**change)), PARQUET)):
        r = post(client, body, media)
        assert r.status_code == status, r.text
        assert needle in r.json()["detail"] and "Traceback" not in r.text
    assert stored(services, "m1") == []


@pytest.mark.parametrize(("column", "values", "row", "field"), [
    ("value", [1.0, 2.0, None, 4.0, 5.0], 2, "value"),
    ("value", [1.0, 2.0, 3.0, float("nan"), 5.0], 3, "value"),
    ("asset_id", ["m1", "m1", "m1", "m1", "../x"], 4, "asset_id"),
    ("ts", ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00", None, None, None], 1, "ts"),
])
def test_arrow_row_errors_name_row_and_field(client: TestClient, services: Services,
                                             column: str, values: list[Any], row: int,
                                             field: str) -> None:
    table = readings_table(**{column: pa.array(values)})
    assert_422_row(post(client, arrow_bytes(table), ARROW), row, field)
    assert_422_row(post(client, parquet_bytes(table), PARQUET), row, field)
    assert stored(services, "m1") == []


@pytest.mark.parametrize("media", [ARROW, PARQUET])
def test_bad_or_truncated_bytes_are_a_clean_422(client: TestClient, services: Services,
                                                media: str) -> None:
    good = arrow_bytes(readings_table(50)) if media == ARROW else parquet_bytes(
        readings_table(50))
    for body in (good[: len(good) // 2], good[:-9], good[:7], b"", b"not arrow at all",
                 b"PAR1" + b"\x00" * 64 + b"PAR1", json.dumps({"tenant_id": T}).encode()):
        r = post(client, body, media)
        assert r.status_code == 422, (len(body), r.status_code, r.text)
        assert "Traceback" not in r.text and r.json()["detail"]
    assert stored(services, "m1") == []


def test_binary_bodies_need_the_tenant_in_the_query(client: TestClient,
                                                    services: Services) -> None:
    r = post(client, arrow_bytes(readings_table()), ARROW, tenant=None)
    assert r.status_code == 422 and "tenant_id" in r.json()["detail"], r.text
    r = post(client, arrow_bytes(readings_table()), ARROW, tenant="../x")
    assert r.status_code == 422, r.text
    assert stored(services, "m1") == []


def test_binary_row_limit(client: TestClient, services: Services) -> None:
    services.ingest.max_rows = 10
    for body, media in ((arrow_bytes(readings_table(11)), ARROW),
                        (parquet_bytes(readings_table(11)), PARQUET)):
        r = post(client, body, media)
        assert r.status_code == 413 and "10" in r.json()["detail"], r.text
    assert stored(services, "m1") == []


def test_unsupported_content_type(client: TestClient) -> None:
    r = post(client, b"asset_id,ts,value\n", "text/csv")
    assert r.status_code == 422 and "Content-Type" in r.json()["detail"], r.text


def test_weather_as_arrow_and_parquet(client: TestClient, services: Services) -> None:
    ts = pa.array([T0 + timedelta(hours=h) for h in range(3)], type=pa.timestamp("us", tz="UTC"))
    table = pa.table({"location_id": ["l1"] * 3, "ts": ts,
                      "temperature": [1.5, None, -2.0], "humidity": pa.array([80, 81, 82])})
    for body, media in ((arrow_bytes(table), ARROW), (parquet_bytes(table), PARQUET)):
        r = post(client, body, media, path="/ai/features/weather")
        assert r.status_code == 200, r.text
        assert r.json() == {"tenant_id": T, "accepted": 3}
    w = services.timeseries.load_weather(T, ["l1"], 0, 2**62)
    assert w.select("ts", "temperature", "humidity", "wind_speed").rows() == [
        (us(T0), 1.5, 80.0, None), (us(T0) + 3_600_000_000, None, 81.0, None),
        (us(T0) + 7_200_000_000, -2.0, 82.0, None)]
    bad = table.set_column(2, "temperature", pa.array([1.0, float("inf"), 2.0]))
    assert_422_row(post(client, arrow_bytes(bad), ARROW, path="/ai/features/weather"),
                   1, "temperature")
    r = post(client, arrow_bytes(table.append_column("pressure", pa.array([1, 2, 3]))),
             ARROW, path="/ai/features/weather")
    assert r.status_code == 422 and "pressure" in r.json()["detail"]


def test_openapi_documents_every_body_and_the_tenant_query(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, rows in (("/ai/features/ingest", "readings"),
                       ("/ai/features/weather", "observations")):
        op = spec["paths"][path]["post"]
        content = op["requestBody"]["content"]
        schema = content["application/json"]["schema"]
        assert {"tenant_id", rows} <= set(schema["properties"]), schema
        assert schema.get("examples"), schema
        for media in (ARROW, PARQUET, "application/x-parquet"):
            assert content[media]["schema"]["format"] == "binary"
        params = {p["name"]: p for p in op["parameters"]}
        assert params["tenant_id"]["in"] == "query" and not params["tenant_id"]["required"]


def test_a_polars_ipc_stream_with_string_views(client: TestClient, services: Services) -> None:
    import polars as pl

    frame = pl.DataFrame({"asset_id": ["pv", "pv"], "ts": [T0, T0 + timedelta(hours=1)],
                          "value": [1.0, 2]})
    sink = io.BytesIO()
    frame.write_ipc_stream(sink)
    assert "string_view" in str(pa.ipc.open_stream(sink.getvalue()).schema)
    r = post(client, sink.getvalue(), ARROW)
    assert r.status_code == 200, r.text
    assert stored(services, "pv") == [(us(T0), 1.0), (us(T0) + 3_600_000_000, 2.0)]


@pytest.mark.parametrize("separator", ["", " ", "\n"])
def test_rows_without_a_comma_are_invalid_json(client: TestClient, services: Services,
                                               separator: str) -> None:
    rows = readings("m1", range(3))
    text = json.dumps({"tenant_id": T, "readings": rows}, separators=(",", ":"))
    first, second = json.dumps(rows[0], separators=(",", ":")), json.dumps(
        rows[1], separators=(",", ":"))
    text = text.replace(first + "," + second, first + separator + second)
    r = client.post("/ai/features/ingest", content=text,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert stored(services, "m1") == []


@pytest.mark.parametrize("layout", [{"separators": (",", ":")}, {}, {"indent": 1}])
def test_every_layout_stores_the_same(client: TestClient, services: Services,
                                      layout: dict[str, Any], small_pieces: None) -> None:
    rows = readings("m1", range(120), lambda h: h / 4)
    rows[7]["value"] = 3  # an integer
    text = json.dumps({"tenant_id": T, "readings": rows}, **layout)
    r = client.post("/ai/features/ingest", content=text,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    expected = [(us(T0 + timedelta(hours=h)), 3.0 if h == 7 else h / 4) for h in range(120)]
    assert stored(services, "m1") == expected
