"""``touched_hour_runs`` (the hours an ingest must roll up) packs ``(asset, hour)`` into one
integer to save memory; it must give exactly what grouping by the pair gives."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from aihub.stores.timeseries.rollups import _touched_hour_runs_grouped, touched_hour_runs
from aihub.timeutil import HOUR_US

T0 = 1_704_067_200_000_000
SCHEMA = {"asset_key": pl.Int64, "ts": pl.Int64, "value": pl.Float64}


@pytest.mark.parametrize("seed", range(20))
def test_packed_runs_equal_grouped_runs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(20):
        m = int(rng.integers(0, 200))
        frame = pl.DataFrame(
            {
                "asset_key": rng.integers(1, 6, m),
                "ts": T0 + rng.integers(0, 30 * HOUR_US, m),
                "value": rng.random(m),
            },
            schema=SCHEMA,
        )
        if seed % 2:
            frame = frame.sort("asset_key", "ts")  # sorted input skips the sort
        expected = _touched_hour_runs_grouped(frame)
        got = touched_hour_runs(frame)
        assert got.schema == expected.schema
        assert got.rows() == expected.rows()


def test_hours_beyond_the_packed_range_still_work() -> None:
    frame = pl.DataFrame(
        {"asset_key": [1, 1], "ts": [-HOUR_US, (1 << 23) * HOUR_US], "value": [1.0, 2.0]},
        schema=SCHEMA,
    )
    assert touched_hour_runs(frame).rows() == _touched_hour_runs_grouped(frame).rows()
    assert touched_hour_runs(frame).height == 2
