"""Property tests (hypothesis): for random histories of versions (late readings,
corrections, estimates, backfills out of order) the row at (O, T) equals the reference
for every as_known, and whatever becomes known after O never changes the "origin" row."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aihub.features.catalog import CATALOG
from aihub.services.container import Services
from aihub.stores.timeseries.base import AssetChanges
from aihub.timeutil import from_us, to_us
from tests.reference import KnownAsset, assert_features_match

BASE = datetime(2024, 3, 29, tzinfo=UTC)  # the spring switch in Berlin is two days later
FEATURES = [f for f, spec in CATALOG.items() if spec.kind in ("load", "calendar")]
_tenants = itertools.count()

send = st.tuples(
    st.integers(0, 4 * 96 - 1),  # 15-minute slot in four days
    st.integers(0, 20),  # value
    st.integers(0, 60),  # hours after its hour ends that it became known
    st.sampled_from(["actual", "actual", "estimated", "edited"]),
)


def _ingest(services: Services, tenant: str, sends: list[tuple[datetime, float, datetime, str]]
            ) -> None:
    """Each send in order; a batch never repeats an instant (a later row of a batch
    replaces an earlier one, two sends are two versions)."""
    batch: list[tuple[datetime, float, datetime, str]] = []

    def flush() -> None:
        if batch:
            services.ingest.ingest_readings(tenant, pl.DataFrame({
                "asset_id": ["m"] * len(batch), "ts": [to_us(b[0]) for b in batch],
                "value": [b[1] for b in batch], "known_at": [to_us(b[2]) for b in batch],
                "quality": [b[3] for b in batch]}))
            batch.clear()

    for s in sends:
        if any(b[0] == s[0] for b in batch):
            flush()
        batch.append(s)
    flush()


def _decode(raw: list[tuple[int, int, int, str]]) -> list[tuple[datetime, float, datetime, str]]:
    out = []
    for slot, value, delay, quality in raw:
        ts = BASE + timedelta(minutes=15 * slot)
        hour_end = ts.replace(minute=0) + timedelta(hours=1)
        out.append((ts, float(value), hour_end + timedelta(hours=delay, minutes=slot % 7),
                    quality))
    return out


def _rows(services: Services, tenant: str, origin: datetime, horizons: list[int],
          as_known: Any) -> dict[int, dict[str, Any]]:
    fs = services.features.feature_set(tenant, "loadcal")
    (asset,) = services.timeseries.get_assets(tenant, ["m"])
    frame = services.features.knowledge_frame(
        [asset], fs, origins=[to_us(origin)], horizons=horizons, lookback_hours=168,
        as_known=to_us(as_known) if isinstance(as_known, datetime) else as_known,
        with_target_only=False)
    return {r["horizon"]: r for r in frame.iter_rows(named=True)}


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    history=st.lists(send, min_size=5, max_size=120),
    later=st.lists(send, min_size=1, max_size=30),
    origin_hour=st.integers(30, 90),
    horizons=st.lists(st.integers(0, 30), min_size=1, max_size=4, unique=True),
    k_hours=st.integers(20, 140),
)
def test_rows_follow_the_reference_and_nothing_after_the_origin_leaks(
    services: Services, history: list, later: list, origin_hour: int, horizons: list[int],
    k_hours: int,
) -> None:
    tenant = f"prop-{next(_tenants)}"
    services.assets.put(tenant, "m", AssetChanges(timezone="Europe/Berlin"))
    services.features.create_set(tenant, name="loadcal", description="", features=FEATURES,
                                 use_cases=[])
    ref = KnownAsset(timezone="Europe/Berlin")
    sends = _decode(history)
    for s in sends:
        ref.send(*s)
    _ingest(services, tenant, sends)
    origin = BASE + timedelta(hours=origin_hour)
    K = BASE + timedelta(hours=k_hours)
    for as_known in ("latest", "origin", K):
        rows = _rows(services, tenant, origin, horizons, as_known)
        assert sorted(rows) == sorted(horizons)
        for row in rows.values():
            want = ref.row(origin, from_us(row["hour"]), FEATURES, as_known)
            assert_features_match({k: row[k] for k in want}, want)
    before = _rows(services, tenant, origin, horizons, "origin")
    # Anything known after O: corrections, late readings, readings of hours after O.
    after = [(ts, v + 100.0, max(known, origin) + timedelta(minutes=1), q)
             for ts, v, known, q in _decode(later)]
    for s in after:
        ref.send(*s)
    _ingest(services, tenant, after)
    again = _rows(services, tenant, origin, horizons, "origin")
    for h in horizons:
        assert {k: again[h][k] for k in FEATURES} == {k: before[h][k] for k in FEATURES}
        latest = _rows(services, tenant, origin, [h], "latest")[h]
        want = ref.row(origin, origin + timedelta(hours=h), FEATURES, "latest")
        assert_features_match({k: latest[k] for k in want}, want)
