"""Migration 0010 keeps the served features stored before it: the rows move into blocks
that drift reads the same, and back on a downgrade."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from aihub.config import Settings
from aihub.db import create_db_engine, downgrade, upgrade
from aihub.stores.metadata.served_features import ServedFeatureStore
from tests.production.test_migrations import fresh_settings

__all__ = ["fresh_settings"]

H = 3_600_000_000
T0 = 1_704_067_200_000_000


def test_0010_moves_served_features_into_blocks_and_back(fresh_settings: Settings) -> None:
    engine = create_db_engine(fresh_settings)
    upgrade(engine, "0009")
    rows = [{"v": v, "a": f"m{a}", "o": T0 + h * H, "t": T0 + (h + 1) * H,
             "f": orjson.dumps({"x": v * 1000 + a * 100 + h}).decode()}
            for v in (1, 2) for a in range(3) for h in range(50)]
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO served_features (version_id, asset_id, origin, target, features) "
            "VALUES (:v, :a, :o, :t, :f)"), rows)
    upgrade(engine)
    store = ServedFeatureStore(engine)
    for v in (1, 2):
        want = sorted(r["f"] for r in rows if r["v"] == v)
        assert sorted(store.read(v, 0, 2**62, 10**6)) == want
        window = store.read(v, T0 + 11 * H, T0 + 21 * H, 10**6)
        assert sorted(window) == sorted(r["f"] for r in rows if r["v"] == v
                                        and T0 + 11 * H <= r["t"] < T0 + 21 * H)
    downgrade(engine, "0009")
    with engine.connect() as conn:
        back = conn.execute(sa.text(
            "SELECT version_id, asset_id, origin, target, features FROM served_features "
            "ORDER BY version_id, asset_id, origin")).all()
    assert [tuple(r) for r in back] == [(r["v"], r["a"], r["o"], r["t"], r["f"])
                                        for r in sorted(rows, key=lambda r: (r["v"], r["a"],
                                                                             r["o"]))]
    engine.dispose()
