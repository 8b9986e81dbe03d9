"""The one set of row rules (``aihub.services.validation``): all-or-nothing for batches,
row by row for streams, the same first problem per row in both."""

from __future__ import annotations

import math

import polars as pl
import pytest

from aihub.errors import InvalidInput, PayloadTooLarge
from aihub.features.frames import READINGS_SCHEMA, WEATHER_SCHEMA
from aihub.services.validation import (
    RowProblem,
    split_readings,
    split_weather,
    validate_readings,
    validate_weather,
    with_problems,
)

H = 3_600_000_000
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def frame(rows: list[tuple[str | None, int | None, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=READINGS_SCHEMA, orient="row")


def test_a_valid_batch_comes_back_deduplicated_later_row_wins() -> None:
    f = frame([("m1", T0, 1.0), ("m2", T0, 2.0), ("m1", T0, 3.0), ("m1", T0 + H, 4.0)])
    out = validate_readings(f, max_rows=10)
    assert sorted(out.rows()) == [("m1", T0, 3.0), ("m1", T0 + H, 4.0), ("m2", T0, 2.0)]
    valid, problems = split_readings(f)
    assert problems == [] and sorted(valid.rows()) == sorted(out.rows())


@pytest.mark.parametrize(
    ("row", "field", "needle"),
    [
        ((None, T0, 1.0), "asset_id", "missing"),
        (("../x", T0, 1.0), "asset_id", "not a valid name"),
        (("a" * 129, T0, 1.0), "asset_id", "not a valid name"),
        (("m1", None, 1.0), "ts", "missing timestamp"),
        (("m1", -H, 1.0), "ts", "1970..2200"),
        (("m1", T0 * 10, 1.0), "ts", "1970..2200"),
        (("m1", T0, None), "value", "missing value"),
        (("m1", T0, math.nan), "value", "finite"),
        (("m1", T0, math.inf), "value", "finite"),
    ],
)
def test_each_rule_names_row_and_field(
    row: tuple[str | None, int | None, float | None], field: str, needle: str
) -> None:
    f = frame([("m1", T0, 1.0), ("m1", T0 + H, 2.0), row])
    with pytest.raises(InvalidInput) as err:
        validate_readings(f, max_rows=10)
    assert err.value.message.startswith(f"row 2, field '{field}'"), err.value.message
    assert needle in err.value.message and "nothing was stored" in err.value.message
    assert err.value.details[0] == {
        "row": 2,
        "field": field,
        "message": err.value.details[0]["message"],
    }
    valid, problems = split_readings(f)
    assert valid.height == 2 and len(problems) == 1
    assert problems[0].row == 2 and problems[0].field == field and needle in problems[0].reason


def test_the_first_bad_row_is_named_whatever_rule_it_breaks() -> None:
    # Row 1 breaks a value rule, row 3 an id rule: the message names row 1.
    f = frame([("m1", T0, 1.0), ("m1", T0 + H, math.nan), ("m1", T0 + 2 * H, 3.0), (None, T0, 1.0)])
    with pytest.raises(InvalidInput) as err:
        validate_readings(f, max_rows=10)
    assert err.value.message.startswith("row 1, field 'value'")
    assert "2 bad row(s)" in err.value.message
    assert [d["row"] for d in err.value.details] == [1, 3]


def test_a_row_reports_its_first_problem_in_column_order() -> None:
    f = frame([("../x", None, math.nan)])
    _, problems = split_readings(f)
    assert problems == [RowProblem(0, "asset_id", problems[0].reason)]


def test_parser_problems_are_reported_in_row_order_with_the_rules() -> None:
    f = frame([("m1", T0, 1.0), ("m1", None, 2.0), ("m1", T0 + H, None), (None, T0, 3.0)])
    f = with_problems(
        f,
        [
            RowProblem(1, "ts", "timestamp has no timezone"),
            RowProblem(2, "value", "true is not a number"),
            RowProblem(3, "", "not a JSON object"),
        ],
    )
    with pytest.raises(InvalidInput) as err:
        validate_readings(f, max_rows=10)
    assert err.value.message.startswith("row 1, field 'ts': timestamp has no timezone")
    valid, problems = split_readings(f)
    assert valid.rows() == [("m1", T0, 1.0)]
    assert problems == [
        RowProblem(1, "ts", "timestamp has no timezone"),
        RowProblem(2, "value", "true is not a number"),
        RowProblem(3, "", "not a JSON object"),
    ]
    assert problems[2].describe() == "row 3: not a JSON object"


def test_a_rule_on_an_earlier_field_comes_before_a_parser_problem_on_a_later_one() -> None:
    f = with_problems(frame([("../x", T0, None)]), [RowProblem(0, "value", "a string")])
    _, problems = split_readings(f)
    assert problems[0].field == "asset_id"


def test_too_many_rows_is_payload_too_large() -> None:
    f = frame([("m1", T0 + i * H, 1.0) for i in range(11)])
    with pytest.raises(PayloadTooLarge) as err:
        validate_readings(f, max_rows=10)
    assert "10" in err.value.message and "AIHUB_MAX_INGEST_ROWS" in err.value.message


def test_labels_rename_fields_in_the_message() -> None:
    f = frame([("m1", T0, None)])
    with pytest.raises(InvalidInput) as err:
        validate_readings(f, max_rows=10, labels={"value": "column 'kwh'"})
    assert err.value.message.startswith("row 0, column 'kwh': missing value")


def test_castable_types_are_accepted_and_others_are_a_clear_error() -> None:
    f = pl.DataFrame(
        {
            "asset_id": ["m1"],
            "ts": pl.Series([T0], dtype=pl.Int64),
            "value": pl.Series([2], dtype=pl.Int32),
        }
    )
    assert validate_readings(f, max_rows=10).schema == pl.Schema(READINGS_SCHEMA)
    with pytest.raises(InvalidInput):
        validate_readings(f.drop("value"), max_rows=10)
    with pytest.raises(InvalidInput):
        validate_readings(f.with_columns(pl.lit("x").alias("value")), max_rows=10)


def test_weather_fields_are_optional_but_finite() -> None:
    f = pl.DataFrame(
        {
            "location_id": ["l1", "l1", "l2"],
            "ts": [T0, T0 + H, T0],
            "temperature": [1.0, math.inf, None],
        }
    )
    with pytest.raises(InvalidInput) as err:
        validate_weather(f, max_rows=10)
    assert err.value.message.startswith("row 1, field 'temperature'")
    valid, problems = split_weather(f)
    assert problems == [RowProblem(1, "temperature", "must be a finite number or null")]
    assert valid.columns == list(WEATHER_SCHEMA) and valid.height == 2
    ok = validate_weather(
        f.filter(pl.col("temperature").is_finite() | pl.col("temperature").is_null()), max_rows=10
    )
    assert ok.get_column("humidity").to_list() == [None, None]


def test_an_empty_batch_is_valid_and_empty() -> None:
    out = validate_readings(frame([]), max_rows=10)
    assert out.height == 0
    valid, problems = split_readings(frame([]))
    assert valid.height == 0 and problems == []
