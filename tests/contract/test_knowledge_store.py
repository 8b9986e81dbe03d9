"""Knowledge time in the time-series store, on every backend: ``known_at`` and ``quality``
stored with readings, versions kept only when a value changes, the current value always
the latest ``known_at``; weather keeping every issued version."""

from __future__ import annotations

import polars as pl

from aihub.features.frames import WEATHER_FIELDS
from aihub.stores.timeseries.base import TimeSeriesStore
from aihub.timeutil import HOUR_US
from tests.contract.test_timeseries_store import H0, MIN, ingest, ingest_weather, store

__all__ = ["store"]

DAY = 24 * HOUR_US


def readings(rows: list[tuple[str, int, float, int | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "asset_id": pl.String,
            "ts": pl.Int64,
            "value": pl.Float64,
            "known_at": pl.Int64,
            "quality": pl.String,
        },
        orient="row",
    )


def weather(rows: list[tuple[str, int, float | None, int]]) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows,
        schema={
            "location_id": pl.String,
            "ts": pl.Int64,
            "temperature": pl.Float64,
            "issued_at": pl.Int64,
        },
        orient="row",
    )
    return frame.with_columns(
        pl.lit(None, pl.Float64).alias(f) for f in WEATHER_FIELDS if f != "temperature"
    )


def versions(store: TimeSeriesStore, key: int) -> list[tuple[int, int, float, int]]:
    v = store.load_reading_versions([key], H0 - DAY, H0 + DAY)
    return [(r[1], r[2], r[3], r[4]) for r in v.iter_rows()]


def test_changed_value_adds_a_version_same_value_adds_none(store: TimeSeriesStore) -> None:
    ingest(store, "t1", readings([("m1", H0, 1.0, H0 + HOUR_US, "estimated")]))
    key = store.get_assets("t1", ["m1"])[0].key
    ingest(store, "t1", readings([("m1", H0, 1.0, H0 + 2 * HOUR_US, "estimated")]))
    assert versions(store, key) == [(H0, H0 + HOUR_US, 1.0, 1)]
    ingest(store, "t1", readings([("m1", H0, 2.0, H0 + DAY // 2, "actual")]))
    assert versions(store, key) == [(H0, H0 + HOUR_US, 1.0, 1), (H0, H0 + DAY // 2, 2.0, 0)]
    # The current value (rollups, readings) is the latest version.
    assert store.load_readings(key, H0, H0 + HOUR_US).get_column("value").to_list() == [2.0]
    assert store.load_rollups([key], H0, H0 + HOUR_US).get_column("mean").to_list() == [2.0]


def test_an_older_version_backfilled_later_goes_to_history(store: TimeSeriesStore) -> None:
    ingest(store, "t1", readings([("m1", H0, 5.0, H0 + DAY, None)]))
    ingest(store, "t1", readings([("m1", H0, 4.0, H0 + HOUR_US, "estimated")]))
    key = store.get_assets("t1", ["m1"])[0].key
    assert versions(store, key) == [(H0, H0 + HOUR_US, 4.0, 1), (H0, H0 + DAY, 5.0, 0)]
    assert store.load_rollups([key], H0, H0 + HOUR_US).get_column("mean").to_list() == [5.0]


def test_default_knowledge_time_is_the_write_and_late_or_flagged_hours_are_marked(
    store: TimeSeriesStore,
) -> None:
    ingest(store, "t1", readings([("m1", H0 + 15 * MIN, 1.0, None, None),
                                  ("m1", H0 + HOUR_US, 2.0, H0 + 2 * HOUR_US + MIN, None),
                                  ("m1", H0 + 2 * HOUR_US, 3.0, H0 + 2 * HOUR_US, None)]))
    key = store.get_assets("t1", ["m1"])[0].key
    v = store.load_reading_versions([key], H0, H0 + DAY)
    assert v.get_column("known_at").to_list()[0] > H0 + 365 * DAY  # written now, not in 2024
    late = store.load_hour_marks([key], H0, H0 + DAY)
    assert late.select("hour").to_series().to_list() == [H0, H0 + HOUR_US]
    by = store.load_hour_marks([key], H0, H0 + DAY, known_after=H0 + 2 * HOUR_US + MIN)
    assert by.get_column("hour").to_list() == [H0]
    ingest(store, "t1", readings([("m1", H0 + 3 * HOUR_US, 1.0, H0, "edited")]))
    marks = store.load_hour_marks([key], H0 + 3 * HOUR_US, H0 + DAY)
    assert marks.rows() == [(key, H0 + 3 * HOUR_US, H0, 0, 1)]


def test_weather_keeps_every_issued_version(store: TimeSeriesStore) -> None:
    first = [("l1", H0, 1.0, H0 - DAY), ("l1", H0 + HOUR_US, 2.0, H0 - DAY)]
    ingest_weather(store, "t1", weather(first))
    ingest_weather(store, "t1", weather([("l1", H0, 1.5, H0 - DAY // 2)]))
    ingest_weather(store, "t1", weather([("l1", H0, 1.5, H0 - DAY // 4)]))  # same: nothing
    ingest_weather(store, "t1", weather([("l1", H0, 1.2, H0 + MIN)]))  # the observation
    current = store.load_weather("t1", ["l1"], H0, H0 + DAY)
    assert current.get_column("temperature").to_list() == [1.2, 2.0]
    v = store.load_weather_versions("t1", ["l1"], H0, H0 + HOUR_US)
    assert v.select("known_at", "temperature").rows() == [
        (H0 - DAY, 1.0), (H0 - DAY // 2, 1.5), (H0 + MIN, 1.2)
    ]
    # An older forecast arriving late joins the history without replacing the observation.
    ingest_weather(store, "t1", weather([("l1", H0, 0.5, H0 - 2 * DAY)]))
    v = store.load_weather_versions("t1", ["l1"], H0, H0 + HOUR_US)
    assert v.get_column("known_at").to_list()[0] == H0 - 2 * DAY
    assert store.load_weather("t1", ["l1"], H0, H0 + HOUR_US).get_column("temperature")[0] == 1.2
