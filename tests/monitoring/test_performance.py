"""Scores of logged forecasts, checked against numpy on hand-made data: zeros among the
actuals, targets without readings, missing baselines; comparison on common rows only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aihub.services.container import Services
from tests.factories import T0, at, ingest, iso
from tests.monitoring.conftest import TENANT, Register

pytestmark = pytest.mark.backends

DAY8 = 24 * 8
# Hours without readings: targets without actual, an origin without persistence, targets
# whose seasonal-naive hour (T - 168h) is missing.
GAPS = set(range(DAY8 + 10, DAY8 + 13)) | {DAY8 + 1} | set(range(24 + 20, 24 + 23))
HOURS = [h for h in range(24 * 10) if h not in GAPS]


def value(h: int) -> float:
    return 0.0 if h % 17 == 0 else 20 + 10 * np.sin(h / 5) + (h % 7)


def hourly_readings(asset: str, scale: float) -> list[dict[str, Any]]:
    """Two readings per hour (at :00 and :30) whose mean is ``scale * value(h)``."""
    out = []
    for h in HOURS:
        v = scale * value(h)
        for minute, x in ((0, v - 1.0), (30, v + 1.0)):
            out.append({"asset_id": asset, "ts": iso(at(h) + timedelta(minutes=minute)),
                        "value": x})
    return out


def forecasts(seed: int, assets: list[str]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for asset in assets:
        for o in range(DAY8, DAY8 + 4):
            for h in range(0, 30):
                out.append({"asset_id": asset, "origin": iso(at(o)), "timestamp": iso(at(o + h)),
                            "value": float(rng.normal(20, 8))})
    return out


def L(asset: str, h: int) -> float | None:
    if h not in set(HOURS):
        return None
    return {"a": 1.0, "b": 3.0}[asset[-1]] * value(h)


def expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of DESIGN.md, computed with numpy from the raw forecasts."""
    def hour(ts: str) -> int:
        from datetime import datetime

        return int((datetime.fromisoformat(ts.replace("Z", "+00:00")) - T0).total_seconds()
                   // 3600)

    p, a, pers, seas = [], [], [], []
    for r in rows:
        o, t = hour(r["origin"]), hour(r["timestamp"])
        actual = L(r["asset_id"], t)
        if actual is None:
            continue
        p.append(r["value"])
        a.append(actual)
        pers.append(L(r["asset_id"], o - 1))
        seas.append(L(r["asset_id"], t - 168))
    pv, av = np.array(p), np.array(a)
    e = pv - av
    mae, rmse = np.mean(np.abs(e)), np.sqrt(np.mean(e ** 2))
    nz = np.abs(av) > 1e-9

    def skill(base: list[float | None]) -> float | None:
        has = np.array([b is not None for b in base])
        if not has.any():
            return None
        b = np.array([x for x in base if x is not None])
        mb = np.mean(np.abs(b - av[has]))
        return None if mb == 0 else float(1 - np.mean(np.abs(e[has])) / mb)

    return {"n": len(p), "mae": mae, "rmse": rmse, "bias": np.mean(e),
            "nmae": mae / np.mean(np.abs(av)), "nrmse": rmse / np.mean(np.abs(av)),
            "mape": 100 * np.mean(np.abs(e[nz]) / np.abs(av[nz])), "mape_n": int(nz.sum()),
            "skill": {"persistence": skill(pers), "seasonal_naive": skill(seas)}}


def assert_group(group: dict[str, Any], want: dict[str, Any]) -> None:
    assert group["n"] == want["n"]
    assert group["mape_n"] == want["mape_n"]
    for k in ("mae", "rmse", "bias", "nmae", "nrmse", "mape"):
        assert group[k] == pytest.approx(want[k], rel=1e-9, abs=1e-9), k
    for k in ("persistence", "seasonal_naive"):
        assert group["skill"][k] == pytest.approx(want["skill"][k], rel=1e-9, abs=1e-9), k


@pytest.fixture
def scored(client: TestClient, services: Services, register: Register) -> tuple[str, list]:
    for asset, scale in (("m-a", 1.0), ("m-b", 3.0)):
        ingest(client, TENANT, hourly_readings(asset, scale))
    model_id = register("v5.0.0", artifact=False)
    rows = forecasts(1, ["m-a", "m-b"])
    r = client.post(f"/ai/models/{model_id}/predictions", json={"predictions": rows})
    assert r.status_code == 200, r.text
    services.prediction_log.flush()
    return model_id, rows


def test_overall_scores_match_numpy(client: TestClient, scored: tuple[str, list]) -> None:
    model_id, rows = scored
    r = client.get(f"/ai/models/{model_id}/performance")
    assert r.status_code == 200, r.text
    body = r.json()
    want = expected(rows)
    assert body["model_id"] == model_id and body["group_by"] == "none"
    assert body["coverage"] == {"predicted": len(rows), "with_actual": want["n"]}
    assert want["n"] < len(rows) and want["mape_n"] < want["n"]  # the data has both cases
    assert [g["key"] for g in body["groups"]] == [None]
    assert_group(body["groups"][0], want)


@pytest.mark.parametrize("group_by", ["horizon", "asset", "day"])
def test_grouped_scores_match_numpy(client: TestClient, scored: tuple[str, list],
                                    group_by: str) -> None:
    model_id, rows = scored

    def key(r: dict[str, Any]) -> Any:
        from datetime import datetime

        o = datetime.fromisoformat(r["origin"].replace("Z", "+00:00"))
        t = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
        return {"horizon": int((t - o).total_seconds() // 3600), "asset": r["asset_id"],
                "day": t.strftime("%Y-%m-%d")}[group_by]

    body = client.get(f"/ai/models/{model_id}/performance",
                      params={"group_by": group_by}).json()
    keys = sorted({key(r) for r in rows})
    got = {g["key"]: g for g in body["groups"]}
    for k in keys:  # a group whose targets all lack an actual is left out
        subset = [r for r in rows if key(r) == k]
        if all(L(r["asset_id"], _h(r["timestamp"])) is None for r in subset):
            assert k not in got
            continue
        assert_group(got[k], expected(subset))
    assert got


def _h(ts: str) -> int:
    from datetime import datetime

    return int((datetime.fromisoformat(ts.replace("Z", "+00:00")) - T0).total_seconds() // 3600)


def test_window_and_correction_rescore(client: TestClient, scored: tuple[str, list]) -> None:
    model_id, rows = scored
    start, end = at(DAY8 + 5), at(DAY8 + 9)
    inside = [r for r in rows if DAY8 + 5 <= _h(r["timestamp"]) < DAY8 + 9]
    body = client.get(f"/ai/models/{model_id}/performance",
                      params={"start": iso(start), "end": iso(end)}).json()
    assert body["coverage"]["predicted"] == len(inside)
    assert_group(body["groups"][0], expected(inside))
    # A correction of hour DAY8+6 (both readings) changes the score.
    before = body["groups"][0]["mae"]
    ingest(client, TENANT, [{"asset_id": "m-a", "ts": iso(at(DAY8 + 6) + timedelta(minutes=m)),
                             "value": 500.0} for m in (0, 30)])
    after = client.get(f"/ai/models/{model_id}/performance",
                       params={"start": iso(start), "end": iso(end)}).json()["groups"][0]
    assert after["mae"] > before


def test_bad_parameters_are_422(client: TestClient, scored: tuple[str, list]) -> None:
    model_id, _ = scored
    for params in ({"group_by": "week"}, {"start": "2024-01-02T00:00:00"},
                   {"start": iso(at(10)), "end": iso(at(5))}):
        r = client.get(f"/ai/models/{model_id}/performance", params=params)
        assert r.status_code == 422, (params, r.text)
    assert client.get("/ai/models/t1:load:v9.0.0/performance").status_code == 404


def test_versions_are_compared_on_common_rows_only(
    client: TestClient, services: Services, register: Register, scored: tuple[str, list]
) -> None:
    first, rows = scored
    second = register("v6.0.0", artifact=False)
    # The second version forecasts only meter m-a and only horizons below 10, differently.
    mine = [{**r, "value": r["value"] + 1.0} for r in rows
            if r["asset_id"] == "m-a" and _h(r["timestamp"]) - _h(r["origin"]) < 10]
    client.post(f"/ai/models/{second}/predictions", json={"predictions": mine})
    services.prediction_log.flush()
    r = client.get("/ai/models/performance",
                   params={"tenant_id": TENANT, "model_name": "load"})
    assert r.status_code == 200, r.text
    body = r.json()
    common_first = [r for r in rows if r["asset_id"] == "m-a"
                    and _h(r["timestamp"]) - _h(r["origin"]) < 10]
    want_first, want_second = expected(common_first), expected(mine)
    assert body["common_rows"] == want_first["n"] == want_second["n"]
    by_id = {v["model_id"]: v for v in body["versions"]}
    assert set(by_id) == {first, second}
    for mid, want in ((first, want_first), (second, want_second)):
        v = by_id[mid]
        assert v["stage"] == "staging" and v["n"] == want["n"]
        for k in ("mae", "rmse", "bias", "nmae"):
            assert v[k] == pytest.approx(want[k], rel=1e-9), k
        assert v["skill"]["persistence"] == pytest.approx(want["skill"]["persistence"])
    unknown = client.get("/ai/models/performance", params={"tenant_id": TENANT,
                                                           "model_name": "nope"})
    assert unknown.status_code == 404


@pytest.mark.parametrize("group_by", ["none", "horizon", "day"])
def test_stored_sums_score_exactly_like_the_log(
    client: TestClient, services: Services, scored: tuple[str, list], group_by: str
) -> None:
    """Scores read the sums of clean days and the log rows of changed ones: the same
    answer before the sums are rebuilt, after, and after a correction made them stale."""
    model_id, rows = scored
    params = {"group_by": group_by, "start": iso(at(DAY8 + 3)), "end": iso(at(DAY8 + 40))}

    def groups() -> list[dict[str, Any]]:
        r = client.get(f"/ai/models/{model_id}/performance", params=params)
        assert r.status_code == 200, r.text
        return r.json()["groups"]  # type: ignore[no-any-return]

    def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
        assert [g["key"] for g in a] == [g["key"] for g in b]
        for x, y in zip(a, b, strict=True):
            assert x["n"] == y["n"] and x["mape_n"] == y["mape_n"]
            for k in ("mae", "rmse", "bias", "nmae", "nrmse", "mape"):
                assert x[k] == pytest.approx(y[k], rel=1e-9, abs=1e-12), k
            assert x["skill"] == pytest.approx(y["skill"], rel=1e-9, abs=1e-12)

    version = services.registry.get(model_id)
    with services.engine.connect() as conn:
        assert services.performance.scores.dirty_days(conn, version.id)
    from_log = groups()
    services.score_compactor.run_once()
    with services.engine.connect() as conn:
        assert services.performance.scores.dirty_days(conn, version.id) == []
    same(groups(), from_log)
    # A correction of one target hour makes its days stale: still exact, before and after
    # the rebuild.
    ingest(client, TENANT, [{"asset_id": "m-b", "ts": iso(at(DAY8 + 20) + timedelta(minutes=m)),
                             "value": 900.0} for m in (0, 30)])
    with services.engine.connect() as conn:
        assert services.performance.scores.dirty_days(conn, version.id)
    changed = groups()
    inside = [r for r in rows if DAY8 + 3 <= _h(r["timestamp"]) < DAY8 + 40]
    if group_by == "none":
        assert changed[0]["mae"] != pytest.approx(from_log[0]["mae"])
        assert changed[0]["n"] == expected(inside)["n"]
    services.score_compactor.run_once()
    same(groups(), changed)
    # Logging again (idempotent) and purging keep the sums right too.
    client.post(f"/ai/models/{model_id}/predictions", json={"predictions": rows})
    services.prediction_log.flush()
    same(groups(), changed)
    services.score_compactor.run_once()
    same(groups(), changed)
