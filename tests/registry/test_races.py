"""Concurrency: racing promotions leave exactly one production version; racing
registrations of one version give one 201 and one 409."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from aihub.client import Client
from tests.registry.conftest import MODEL
from tests.registry.models import lightgbm_text, register_body


def test_parallel_promotions_leave_exactly_one_production(http: httpx.Client, hub: Client
                                                          ) -> None:
    n = 12
    ids = []
    for i in range(n):
        body = register_body(f"v1.{i}.0")
        ids.append(hub.register(**{k: body[k] for k in ("tenant_id", "model_name", "version",
                                                         "metadata", "metrics")},
                                artifact=lightgbm_text())["model_id"])
    barrier = threading.Barrier(n)

    def promote(model_id: str) -> int:
        barrier.wait()
        r = http.put(f"/ai/models/{model_id}/promote",
                     json={"target_stage": "production", "reason": "race"})
        return r.status_code

    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(promote, ids))
    assert set(codes) <= {200, 409}
    assert codes.count(200) >= 1
    prod = http.get("/ai/models/", params={"stage": "production"}).json()
    assert prod["total"] == 1
    winner = prod["models"][0]["model_id"]
    assert http.get(f"/ai/models/{MODEL}:production").json()["model_id"] == winner
    # every successful promotion archived the one before it: the chain is consistent
    archived = http.get("/ai/models/", params={"stage": "archived"}).json()["total"]
    assert archived == codes.count(200) - 1


def test_parallel_registration_of_one_version(http: httpx.Client) -> None:
    for attempt in range(5):
        version = f"v2.0.{attempt}"
        barrier = threading.Barrier(2)

        def register(_: int, version: str = version,
                     barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return http.post("/ai/models/register", json=register_body(version)).status_code

        with ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(register, range(2)))
        assert codes == [201, 409]
    assert http.get("/ai/models/").json()["total"] == 5
