"""How a dataset export splits its assets: contiguous ranges in the export's order, big
enough for >= ~100 ms of work per task, small enough for one writer chunk, about four per
worker when there are assets enough; an export without assets is one (empty) part."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aihub.services.export_parts import (
    MAX_PART_GRID_ROWS,
    MIN_PART_GRID_ROWS,
    part_name,
    partition,
)
from aihub.stores.timeseries.base import Asset

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def assets(n: int) -> list[Asset]:
    return [Asset("t", f"a{i:05d}", "UTC", None, None, "load", i, NOW, NOW, None, 0)
            for i in range(n)]


@pytest.mark.parametrize(("n", "span", "workers"), [
    (10_000, 8760 + 168, 2), (1_000, 8760 + 168, 8), (50, 8760 + 168, 2), (3, 24 + 168, 2),
    (5_000, 24 * 30 + 168, 4),
])
def test_partitions_cover_every_asset_once_in_order_and_are_sized_for_the_work(
    n: int, span: int, workers: int
) -> None:
    everything = assets(n)
    parts = partition(everything, span_hours=span, workers=workers)
    assert [a for p in parts for a in p] == everything
    sizes = [len(p) for p in parts]
    for size in sizes[:-1]:  # the last one takes the rest
        assert size * span <= max(MAX_PART_GRID_ROWS, span)
        assert size * span >= MIN_PART_GRID_ROWS or size == n
    if n * span >= MIN_PART_GRID_ROWS * workers * 4:  # work enough for every worker
        assert len(parts) >= workers


def test_a_fixed_size_and_an_empty_export() -> None:
    assert [len(p) for p in partition(assets(7), span_hours=100, workers=2, per_part=3)] == [
        3, 3, 1]
    assert partition([], span_hours=100, workers=2) == [[]]
    assert part_name(12) == "part-00012.parquet"
