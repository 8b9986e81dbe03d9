"""Parsed JSON items into typed columns (``aihub.services.columns`` and the helpers streams
use): strict types, one problem per unreadable row, the rules applied once afterwards."""

from __future__ import annotations

import math

import polars as pl
import pytest

from aihub.errors import InvalidInput
from aihub.services.columns import parse_iso_times
from aihub.services.json_body import readings_frame_from_json, weather_frame_from_json
from aihub.services.validation import RowProblem, split_readings, split_weather

T0 = 1_704_067_200_000_000
H = 3_600_000_000


def test_stream_items_with_the_asset_from_the_topic() -> None:
    items = [
        {"ts": "2024-01-01T00:00:00Z", "value": 1.5},
        {"ts": "2024-01-01T01:00:00+01:00", "value": 2},  # = 00:00Z: replaces the first
        {"ts": "2024-01-01T02:00:00Z", "value": True},
        {"ts": "2024-01-01T03:00:00", "value": 1.0},
        {"ts": "2024-01-01T04:00:00Z", "value": 1.0, "asset_id": "other"},
        ["2024-01-01T05:00:00Z", 1.0],
        {"ts": "2024-01-01T06:00:00Z"},
        {"ts": "2024-01-01T07:00:00.25Z", "value": -3},
    ]
    valid, problems = split_readings(readings_frame_from_json(items, asset_id="m7"))
    assert valid.rows() == [("m7", T0, 2.0), ("m7", T0 + 7 * H + 250_000, -3.0)]
    assert [(p.row, p.field) for p in problems] == [
        (2, "value"), (3, "ts"), (4, "asset_id"), (5, ""), (6, "value")]
    assert "true" in problems[0].reason and "timezone" in problems[1].reason
    assert "unknown field" in problems[2].reason and "JSON object" in problems[3].reason
    assert problems[4].reason == "missing value"


def test_raw_bytes_one_object_or_an_array() -> None:
    one = readings_frame_from_json(b'{"asset_id": "m1", "ts": "2024-01-01T00:00:00Z", '
                                   b'"value": 1}')
    assert one.rows() == [("m1", T0, 1.0)]
    many = readings_frame_from_json(b'[{"asset_id": "m1", "ts": "2024-01-01T00:00:00Z", '
                                    b'"value": NaN}, {"asset_id": "m1", '
                                    b'"ts": "2024-01-01T01:00:00Z", "value": 2}]')
    valid, problems = split_readings(many)
    assert valid.rows() == [("m1", T0 + H, 2.0)]
    assert problems == [RowProblem(0, "value", "must be a finite number")]
    for bad in (b"[1, 2", b'"text"', b"5"):
        with pytest.raises(InvalidInput):
            readings_frame_from_json(bad)
    assert readings_frame_from_json([]).height == 0


def test_weather_items() -> None:
    frame = weather_frame_from_json(
        [{"ts": "2024-01-01T00:00:00Z", "temperature": 4.5},
         {"ts": "2024-01-01T01:00:00Z", "humidity": "80"},
         {"ts": "2024-01-01T02:00:00Z", "cloud_cover": 12, "wind_speed": None}],
        location_id="berlin",
    )
    valid, problems = split_weather(frame)
    assert valid.select("location_id", "ts", "temperature", "cloud_cover").rows() == [
        ("berlin", T0, 4.5, None), ("berlin", T0 + 2 * H, None, 12.0)]
    assert problems == [RowProblem(1, "humidity", "must be a number, not a string")]


def test_huge_integers_are_a_row_problem_not_a_crash() -> None:
    valid, problems = split_readings(readings_frame_from_json(
        [{"asset_id": "m1", "ts": "2024-01-01T00:00:00Z", "value": 10**400},
         {"asset_id": "m1", "ts": "2024-01-01T01:00:00Z", "value": 10**20}]))
    assert problems == [RowProblem(0, "value", "number out of range")]
    assert valid.rows() == [("m1", T0 + H, 1e20)]


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-01T00:00:00Z", T0),
    ("2024-01-01T00:00:00.5Z", T0 + 500_000),
    ("2024-01-01T01:30:00+01:30", T0),
    ("2024-01-01 00:00:00+00:00", T0),
    ("2023-12-31T19:00:00-05:00", T0),
    ("2024-01-01T00:00Z", T0),
    ("20240101T000000Z", T0),
    ("2024-01-01T00:00:00", None),
    ("2024-01-01", None),
    ("noon", None),
    ("", None),
])
def test_iso_times(text: str, expected: int | None) -> None:
    out, problems = parse_iso_times(pl.Series("ts", ["2024-01-01T00:00:00Z", text, None]))
    assert out.to_list() == [T0, expected, None]
    assert (problems == []) == (expected is not None), problems
    if expected is None:
        assert problems[0][0] == 1


def test_value_series_keeps_non_finite_for_the_rules() -> None:
    frame = readings_frame_from_json(
        [{"asset_id": "m1", "ts": "2024-01-01T00:00:00Z", "value": math.inf}])
    assert math.isinf(frame.get_column("value")[0])
