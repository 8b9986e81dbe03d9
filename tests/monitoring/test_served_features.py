"""Served features in blocks: what drift reads is the features of the logged rows in the
window (the newest write of a key wins), the latest ``limit`` of them; retention and
deleting a version remove them. Every test runs on both configurations."""

from __future__ import annotations

import orjson
import polars as pl
import pytest

from aihub.db import write_transaction
from aihub.services.container import Services
from aihub.services.prediction_log import Forecasts
from aihub.services.registry import RegisterRequest
from aihub.stores.metadata.models import ModelVersion
from aihub.stores.metadata.served_features import ServedFeatureStore
from aihub.timeutil import HOUR_US

pytestmark = pytest.mark.backends

T0 = 1_704_067_200_000_000  # 2024-01-01


def _log(services: Services, version: ModelVersion, hours: range, x: float,
         assets: tuple[str, ...] = ("a", "b")) -> None:
    keys = [(a, T0 + h * HOUR_US) for h in hours for a in assets]
    services.prediction_log.log(version, Forecasts(
        [a for a, _ in keys], [t for _, t in keys], [t for _, t in keys], [1.0] * len(keys)),
        source="predict", features=[orjson.dumps({"x": x, "h": (t - T0) // HOUR_US}).decode()
                                    for _, t in keys])
    services.prediction_log.flush()


def _served(store: ServedFeatureStore, version_id: int, lo: int = 0, hi: int = 2**62,
            limit: int = 10**6) -> list[dict[str, float]]:
    return sorted((orjson.loads(r) for r in store.read(version_id, lo, hi, limit)),
                  key=lambda r: r["h"])


@pytest.fixture
def version(services: Services) -> ModelVersion:
    return services.registry.register(RegisterRequest("t1", "load", "v1.0.0", {}, {}))


def test_relogging_a_key_serves_its_newest_features(services: Services,
                                                    version: ModelVersion) -> None:
    store = services.prediction_log.features
    _log(services, version, range(0, 10), 1.0)
    _log(services, version, range(5, 15), 2.0)  # hours 5..9 again, newer
    got = _served(store, version.id)
    assert len(got) == 2 * 15
    assert [r["x"] for r in got] == [1.0] * 10 + [2.0] * 20
    window = _served(store, version.id, T0 + 3 * HOUR_US, T0 + 7 * HOUR_US)
    assert [(r["h"], r["x"]) for r in window] == [(3, 1.0), (3, 1.0), (4, 1.0), (4, 1.0),
                                                  (5, 2.0), (5, 2.0), (6, 2.0), (6, 2.0)]


def test_the_latest_limit_rows_across_blocks(services: Services, version: ModelVersion) -> None:
    store = services.prediction_log.features
    for start in (20, 0, 10, 30):  # blocks written out of target order
        _log(services, version, range(start, start + 10), float(start))
    _log(services, version, range(28, 32), 99.0)  # newer rows of keys in two blocks
    got = _served(store, version.id, limit=15)
    assert len(got) == 15
    assert [r["h"] for r in got] == [32, *(h for h in range(33, 40) for _ in "ab")]
    got = _served(store, version.id, limit=24)
    assert [r["h"] for r in got][:4] == [28, 28, 29, 29]
    assert {r["x"] for r in got if r["h"] < 32} == {99.0}
    assert {r["x"] for r in got if r["h"] >= 32} == {30.0}


def test_purge_and_delete_version_remove_served_features(services: Services,
                                                         version: ModelVersion) -> None:
    store = services.prediction_log.features
    _log(services, version, range(0, 10), 1.0)    # one block straddles the cutoff
    _log(services, version, range(0, 3), 2.0)     # one block lies wholly before it
    with write_transaction(services.engine) as conn:
        store.purge(conn, T0 + 4 * HOUR_US)
    assert [r["h"] for r in _served(store, version.id)] == [h for h in range(4, 10)
                                                             for _ in "ab"]
    with services.engine.connect() as conn:
        blocks = conn.exec_driver_sql(
            "SELECT first_target, last_target, n_rows FROM served_feature_blocks").all()
    assert [tuple(b) for b in blocks] == [(T0 + 4 * HOUR_US, T0 + 9 * HOUR_US, 12)]
    with write_transaction(services.engine) as conn:
        store.delete_version(conn, version.id)
    assert store.read(version.id, 0, 2**62, 100) == []


def test_rows_without_a_finite_prediction_keep_no_features(services: Services,
                                                           version: ModelVersion) -> None:
    services.prediction_log.log(version, Forecasts(["a", "b"], [T0, T0], [T0, T0],
                                                   [1.0, None]),
                                source="predict", features=['{"h": 0}', '{"h": 1}'])
    services.prediction_log.flush()
    assert services.prediction_log.features.read(version.id, 0, 2**62, 10) == ['{"h": 0}']
    rows = services.prediction_log.store.rows(version.id)
    assert rows.get_column("asset_id").to_list() == ["a"]
    assert isinstance(rows, pl.DataFrame)
