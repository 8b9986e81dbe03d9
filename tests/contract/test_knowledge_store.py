"""Knowledge time in the time-series store, on every backend: ``known_at`` and ``quality``
stored with readings, versions kept only when a value changes, the current value always
the latest ``known_at``; weather keeping every issued version."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from aihub.features.frames import WEATHER_FIELDS
from aihub.stores.timeseries.base import TimeSeriesStore
from aihub.stores.timeseries.rollups import compute_rollups
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
    assert marks.rows() == [(key, H0 + 3 * HOUR_US, H0, H0, 0, 1)]


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


# -- the knowledge marks kept with the rollups (migration 0011) ------------------------------


def marks_by_definition(store: TimeSeriesStore, key: int) -> list[tuple[int, ...]]:
    """Each hour's marks from the versions themselves: the latest knowledge time of its
    current readings, the earliest of any version, the quality bits of its current ones."""
    v = store.load_reading_versions([key], 0, 2**62).with_columns(
        (pl.col("ts") // HOUR_US * HOUR_US).alias("hour")
    )
    current = v.sort("known_at").group_by("ts").last()
    per_hour = current.group_by("hour").agg(
        pl.col("known_at").max(),
        ((pl.col("quality") == 1).any().cast(pl.Int64)
         + 2 * (pl.col("quality") == 2).any().cast(pl.Int64)).alias("quality"),
    )
    first = v.group_by("hour").agg(pl.col("known_at").min().alias("first_known"))
    return (
        per_hour.join(first, on="hour")
        .select(pl.lit(key, pl.Int64).alias("asset_key"), "hour", "known_at", "first_known",
                "quality")
        .sort("hour")
        .rows()
    )


def stored_marks(store: TimeSeriesStore, key: int) -> list[tuple[int, ...]]:
    return store.load_rollups(
        [key], 0, 2**62, columns=("known_at", "first_known", "quality")
    ).rows()


def test_marks_follow_late_readings_corrections_and_backfills(store: TimeSeriesStore) -> None:
    ingest(store, "t1", readings([("m1", H0, 1.0, H0 + HOUR_US + MIN, None),
                                  ("m1", H0 + HOUR_US, 2.0, H0 + 3 * HOUR_US, "estimated")]))
    key = store.get_assets("t1", ["m1"])[0].key
    assert stored_marks(store, key) == [
        (key, H0, H0 + HOUR_US + MIN, H0 + HOUR_US + MIN, 0),
        (key, H0 + HOUR_US, H0 + 3 * HOUR_US, H0 + 3 * HOUR_US, 1),
    ]
    # A late reading of the same hour: known later, first knowledge unchanged.
    ingest(store, "t1", readings([("m1", H0 + 30 * MIN, 3.0, H0 + 5 * HOUR_US, "edited")]))
    # The estimate's actual read, a day later: the estimate stays as a version.
    ingest(store, "t1", readings([("m1", H0 + HOUR_US, 2.5, H0 + DAY, "actual")]))
    assert stored_marks(store, key) == [
        (key, H0, H0 + 5 * HOUR_US, H0 + HOUR_US + MIN, 2),
        (key, H0 + HOUR_US, H0 + DAY, H0 + 3 * HOUR_US, 0),
    ]
    # An older version backfilled later goes to history and moves first knowledge earlier;
    # re-sending the current value with an earlier time changes nothing.
    ingest(store, "t1", readings([("m1", H0 + HOUR_US, 9.0, H0 + 2 * HOUR_US, "estimated"),
                                  ("m1", H0, 1.0, H0 + HOUR_US, None)]))
    assert stored_marks(store, key) == [
        (key, H0, H0 + 5 * HOUR_US, H0 + HOUR_US + MIN, 2),
        (key, H0 + HOUR_US, H0 + DAY, H0 + 2 * HOUR_US, 0),
    ]
    assert stored_marks(store, key) == marks_by_definition(store, key)


def test_marks_equal_their_definition_after_random_histories(store: TimeSeriesStore) -> None:
    rng = np.random.default_rng(11)
    for batch in range(12):
        n = int(rng.integers(1, 20))
        slots = rng.choice(4 * 6, size=n, replace=False)  # 15-minute slots in six hours
        rows = [("m1", H0 + int(s) * 15 * MIN, float(rng.integers(0, 3)),
                 H0 + int(rng.integers(0, 48)) * HOUR_US + int(rng.integers(0, 60)) * MIN,
                 str(rng.choice(["actual", "actual", "estimated", "edited"])))
                for s in slots]
        ingest(store, "t1", readings(rows))
        key = store.get_assets("t1", ["m1"])[0].key
        assert stored_marks(store, key) == marks_by_definition(store, key), batch


def test_marks_of_hourly_batches_equal_their_definition(store: TimeSeriesStore) -> None:
    """Batches of one reading per hour (PostgreSQL takes their rollups from the readings
    without grouping), out of order, of every quality and knowledge time, over two assets;
    later ones add hours, extend hours to several readings and correct readings."""
    rng = np.random.default_rng(17)
    for batch in range(5):
        rows = []
        for asset in ("m1", "m2"):
            for h in rng.choice(30, size=int(rng.integers(5, 20)), replace=False):
                minute = 0 if batch < 2 else int(rng.choice([0, 0, 20]))
                ts = H0 + int(h) * HOUR_US + minute * MIN
                value = float(rng.integers(0, 4))
                rows.append((asset, ts, value,
                             H0 + int(rng.integers(0, 96)) * HOUR_US + batch,
                             str(rng.choice(["actual", "actual", "estimated", "edited"]))))
        ingest(store, "t1", readings(rows))
        for asset in ("m1", "m2"):
            key = store.get_assets("t1", [asset])[0].key
            assert stored_marks(store, key) == marks_by_definition(store, key), (batch, asset)
            current = store.load_readings(key, 0, 2**62)
            want = compute_rollups(current.with_columns(pl.lit(key, pl.Int64).alias("asset_key")))
            got = store.load_rollups([key], 0, 2**62)
            assert got.select("hour", "n", "min", "max").rows() == want.select(
                "hour", "n", "min", "max").rows(), (batch, asset)
            assert got.get_column("mean").to_list() == pytest.approx(
                want.get_column("mean").to_list(), rel=1e-12), (batch, asset)


def test_versions_of_given_hours(store: TimeSeriesStore) -> None:
    ingest(store, "t1", readings([("m1", H0 + k * 20 * MIN, float(k), H0 + DAY, None)
                                  for k in range(9)]))
    ingest(store, "t1", readings([("m1", H0 + 20 * MIN, 7.0, H0 + 2 * DAY, None),
                                  ("m1", H0 + 2 * HOUR_US, 8.0, H0 + 2 * DAY, None)]))
    ingest(store, "t1", readings([("m2", H0 + 20 * MIN, 1.0, H0 + DAY, None)]))
    k1, k2 = (a.key for a in sorted(store.get_assets("t1", ["m1", "m2"]),
                                   key=lambda a: a.asset_id))
    hours = pl.DataFrame({"asset_key": [k1, k1, k2], "hour": [H0, H0 + 2 * HOUR_US, H0]})
    got = store.load_hour_versions(hours)
    everything = store.load_reading_versions([k1, k2], 0, 2**62)
    want = everything.filter(pl.col("ts") // HOUR_US * HOUR_US != H0 + HOUR_US)
    assert got.rows() == want.rows()
    assert got.filter(pl.col("ts") == H0 + 20 * MIN).height == 3  # two versions and m2's
    assert store.load_hour_versions(hours.clear()).is_empty()


def test_marks_of_hours_late_for_given_origins(store: TimeSeriesStore) -> None:
    """With origins, the hours some origin reads (t + 1h <= O <= t + reach) before the hour
    was known, and every hour not actual: exactly what a pass over the marks finds."""
    rng = np.random.default_rng(3)
    rows = [("m1", H0 + h * HOUR_US + int(rng.integers(0, 4)) * 15 * MIN,
             float(h), H0 + (h + 1) * HOUR_US + int(rng.choice([0, 5, 90, 600, 3000])) * MIN,
             str(rng.choice(["actual"] * 8 + ["estimated", "edited"])))
            for h in range(0, 24 * 9)]
    ingest(store, "t1", readings(rows))
    key = store.get_assets("t1", ["m1"])[0].key
    origins = [H0 + h * HOUR_US for h in range(10, 24 * 9, 24)] + [H0 + 100 * HOUR_US]
    origins.sort()
    start, end, reach = H0 + 5 * HOUR_US, H0 + 24 * 8 * HOUR_US, 30
    got = store.load_hour_marks([key], start, end, origins=origins, reach_hours=reach)
    every = store.load_rollups([key], start, end, columns=("known_at", "first_known", "quality"))
    want = [
        (k, t, known, first, q & 1, q >> 1)
        for k, t, known, first, q in every.rows()
        if q or any(t + HOUR_US <= o <= t + reach * HOUR_US and o < known for o in origins)
    ]
    assert got.rows() == want
    assert 20 < len(want) < every.height  # some hours are late for an origin, most not
