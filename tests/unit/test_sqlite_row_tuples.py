"""The SQLite store binds rows made column by column: they must equal ``frame.rows()``."""

from __future__ import annotations

import math

import polars as pl

from aihub.stores.timeseries.sqlite import _tuples


def test_rows_made_column_by_column_equal_the_frames_rows() -> None:
    frame = pl.DataFrame(
        {
            "asset_key": [1, 2, None, 2**62],
            "ts": [0, -1, 1_700_000_000_000_000, 3],
            "value": [0.1, None, math.inf, 5e-324],
            "name": ["a", None, "ü", ""],
        }
    )
    assert list(_tuples(frame)) == frame.rows()
    assert list(_tuples(frame.clear())) == []
