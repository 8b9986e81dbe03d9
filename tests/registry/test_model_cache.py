"""The digest-keyed LRU model cache: hit, eviction by size, expiry by TTL, invalidation
on delete (unit level with a fake clock, and through the service with real models)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from aihub.inference.cache import ModelCache
from aihub.services.container import Services
from tests.registry.conftest import Register

ROW = {"hour_of_day": 12, "lag_24h": 40.0, "rolling_24h_avg": 41.0}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_hit_does_not_reload() -> None:
    cache: ModelCache[str] = ModelCache(max_size=2, ttl=0)
    loads: list[str] = []
    for _ in range(3):
        assert cache.get("a", lambda: loads.append("a") or "model-a") == "model-a"
    assert loads == ["a"]
    assert (cache.stats.hits, cache.stats.misses) == (2, 1)


def test_eviction_by_size_is_least_recently_used() -> None:
    cache: ModelCache[str] = ModelCache(max_size=2, ttl=0)
    cache.get("a", lambda: "A")
    cache.get("b", lambda: "B")
    cache.get("a", lambda: "A")  # a is now the most recent
    cache.get("c", lambda: "C")  # evicts b
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.stats.evictions == 1


def test_expiry_by_ttl() -> None:
    clock = Clock()
    cache: ModelCache[str] = ModelCache(max_size=5, ttl=60, clock=clock)
    cache.get("a", lambda: "A1")
    clock.now = 59
    assert cache.get("a", lambda: "A2") == "A1"
    clock.now = 60
    assert cache.get("a", lambda: "A2") == "A2"
    assert cache.stats.expirations == 1


def test_size_zero_disables_caching() -> None:
    cache: ModelCache[str] = ModelCache(max_size=0, ttl=0)
    calls = []
    cache.get("a", lambda: calls.append(1) or "A")
    cache.get("a", lambda: calls.append(1) or "A")
    assert len(calls) == 2
    assert len(cache) == 0


def test_service_caches_by_digest_and_forgets_on_delete(
    client: TestClient, register: Register, services: Services
) -> None:
    cache = services.predictions.cache
    model_id = register("v1.0.0")
    digest = client.get(f"/ai/models/{model_id}").json()["sha256"]
    for _ in range(3):
        assert client.post(f"/ai/models/{model_id}/predict",
                           json={"rows": [ROW]}).status_code == 200
    assert digest in cache
    assert (cache.stats.misses, cache.stats.hits) == (1, 2)
    assert client.delete(f"/ai/models/{model_id}").status_code == 200
    assert digest not in cache


def test_same_bytes_share_one_entry(client: TestClient, register: Register,
                                    services: Services) -> None:
    a, b = register("v1.0.0"), register("v1.1.0")
    for model_id in (a, b):
        client.post(f"/ai/models/{model_id}/predict", json={"rows": [ROW]})
    assert len(services.predictions.cache) == 1
    assert services.predictions.cache.stats.misses == 1
