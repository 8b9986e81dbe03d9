"""Cumulative registers into intervals, as a pure function: baselines, drops, late and
repeated totals, several assets in one batch, and rows in any order."""

from __future__ import annotations

import polars as pl

from aihub.streams.registers import RegisterState, to_intervals

H = 3_600_000_000


def totals(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"asset_id": pl.String, "ts": pl.Int64,
                                      "value": pl.Float64}, orient="row")


def test_first_total_is_a_baseline_then_differences() -> None:
    out, state, flags = to_intervals(
        totals([("a", 2 * H, 12.0), ("a", 0, 10.0), ("a", H, 10.5)]), {})
    assert out.rows() == [("a", H, 0.5), ("a", 2 * H, 1.5)]
    assert state == {"a": RegisterState(2 * H, 12.0)} and flags == []


def test_stored_state_continues_and_old_totals_are_ignored() -> None:
    before = {"a": RegisterState(H, 100.0), "b": RegisterState(H, 5.0)}
    out, state, flags = to_intervals(
        totals([("a", H, 100.0), ("a", 0, 90.0), ("a", 2 * H, 101.0), ("c", H, 7.0)]), before)
    assert out.rows() == [("a", 2 * H, 1.0)]
    assert state == {"a": RegisterState(2 * H, 101.0), "c": RegisterState(H, 7.0)}
    assert flags == []
    assert before["a"] == RegisterState(H, 100.0)  # the caller's state is not changed


def test_a_reset_is_a_new_baseline_and_a_rollover_the_wrapped_difference() -> None:
    rows = totals([("a", H, 50.0), ("a", 2 * H, 1.0), ("a", 3 * H, 3.0)])
    out, state, flags = to_intervals(rows, {"a": RegisterState(0, 49.0)})
    assert out.rows() == [("a", H, 1.0), ("a", 3 * H, 2.0)]
    assert [(f.row, f.ts) for f in flags] == [(1, 2 * H)]
    assert "reset" in flags[0].reason and "from 50 to 1" in flags[0].reason
    out, state, flags = to_intervals(rows, {"a": RegisterState(0, 49.0)}, register_max=100.0)
    assert out.rows() == [("a", H, 1.0), ("a", 2 * H, 51.0), ("a", 3 * H, 2.0)]
    assert "rollover" in flags[0].reason and "stored 51" in flags[0].reason
    assert state == {"a": RegisterState(3 * H, 3.0)}
