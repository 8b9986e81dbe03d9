"""PostgreSQL's ingest prepares the rollups of hours new to the store from the batch alone
(``batch_rollups``), projecting rather than grouping where every hour of a run holds one
reading; both must give what ``compute_rollups(..., with_marks=True)`` defines, and the
COPY tuples must not depend on which path built them."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from aihub.stores.timeseries.postgres import (
    _ROLLUP_LAYOUTS,
    batch_rollups,
    binary_tuples,
    rollup_tuples,
)
from aihub.stores.timeseries.rollups import compute_rollups, touched_hour_runs
from aihub.timeutil import HOUR_US

T0 = 1_704_067_200_000_000
MIN = 60_000_000


def batch(rng: np.random.Generator, *, one_per_hour: bool, ordered: bool) -> pl.DataFrame:
    """A keyed batch (``asset_key, ts, value, known_at, quality``) of a few assets around
    T0 (some hours before 1970 too: negative ``ts``), each ``(asset, ts)`` once."""
    m = int(rng.integers(1, 80))
    frame = pl.DataFrame(
        {
            "asset_key": rng.integers(1, 4, m),
            "ts": np.where(rng.random(m) < 0.1, -T0, T0) + rng.integers(-30, 60, m) * 15 * MIN,
            "value": rng.normal(50, 10, m).round(3),
            "known_at": T0 + rng.integers(0, 5, m) * HOUR_US,
            "quality": rng.integers(0, 3, m),
        }
    ).unique(["asset_key", "ts"], keep="last", maintain_order=True)
    if one_per_hour:
        hour = pl.col("ts") // HOUR_US
        frame = frame.unique(["asset_key", hour], keep="first", maintain_order=True)
    return frame.sort("asset_key", "ts") if ordered else frame


def assert_same_rollups(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Equal, with mean and std to the last bits (a sum's order may differ)."""
    assert got.schema == want.schema
    assert got.drop("mean", "std").rows() == want.drop("mean", "std").rows()
    for column in ("mean", "std"):
        g, w = got.get_column(column).to_list(), want.get_column(column).to_list()
        assert [x is None for x in g] == [x is None for x in w], column
        assert [x for x in g if x is not None] == pytest.approx(
            [x for x in w if x is not None], rel=1e-12, abs=1e-12
        ), column


@pytest.mark.parametrize("seed", range(30))
def test_batch_rollups_equal_their_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = batch(rng, one_per_hour=seed % 3 == 0, ordered=seed % 2 == 0)
    got = batch_rollups(frame, touched_hour_runs(frame))
    want = compute_rollups(frame, with_marks=True)
    if seed % 3 == 0:  # hours of one reading only: exactly the definition, bit for bit
        assert got.equals(want)
    assert_same_rollups(got, want)


def test_hourly_batch_is_projected_with_its_marks() -> None:
    """One reading per hour, out of order, of each quality: n 1, no std, the reading's
    knowledge time, no separate first knowledge, the quality's bit."""
    frame = pl.DataFrame(
        {
            "asset_key": [2, 1, 1, 2],
            "ts": [T0, T0 + HOUR_US + 5 * MIN, T0, T0 + 3 * HOUR_US],
            "value": [4.0, 2.0, 1.0, 8.0],
            "known_at": [T0 + 9, T0 + 7, T0 + 5, T0 + 11],
            "quality": [0, 1, 2, 1],
        }
    )
    got = batch_rollups(frame, touched_hour_runs(frame))
    assert got.rows() == [
        (1, T0, 1, 1.0, None, 1.0, 1.0, T0 + 5, None, 2),
        (1, T0 + HOUR_US, 1, 2.0, None, 2.0, 2.0, T0 + 7, None, 1),
        (2, T0, 1, 4.0, None, 4.0, 4.0, T0 + 9, None, 0),
        (2, T0 + 3 * HOUR_US, 1, 8.0, None, 8.0, 8.0, T0 + 11, None, 1),
    ]
    assert got.equals(compute_rollups(frame, with_marks=True))


@pytest.mark.parametrize("seed", range(10))
def test_copy_tuples_of_one_layout_equal_those_partitioned(seed: int) -> None:
    """Rollups that all share one layout skip the partitioning: the same tuples."""
    rng = np.random.default_rng(100 + seed)
    frame = batch(rng, one_per_hour=seed % 2 == 0, ordered=True)
    rollups = compute_rollups(frame, with_marks=True)
    got = sorted(t.tobytes() for part in rollup_tuples(rollups) for t in part)
    layouts = rollups.with_columns(
        pl.col("std").is_not_null().alias("_s"), pl.col("first_known").is_not_null().alias("_f")
    ).partition_by("_s", "_f", as_dict=True)
    want = sorted(
        t.tobytes()
        for (s, f), part in layouts.items()
        for t in binary_tuples(part, _ROLLUP_LAYOUTS[(bool(s), bool(f))])
    )
    assert got == want
    assert rollup_tuples(rollups.clear()) == []
