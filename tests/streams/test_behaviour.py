"""Through the machine's Mosquitto: registers with a reset and a rollover survive a
restart, a ``get`` after a publish shows the reading, two tenants' topics stay apart, a
tenant the stream's key may not write is refused, and the API shows status and dead
letters."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aihub.api.app import create_app
from aihub.config import Settings
from aihub.services.container import Services, build_services
from aihub.streams.config import Mapping
from aihub.streams.dead_letters import DeadLetterService
from aihub.streams.subscriber import MqttStream
from tests.factories import at, iso, readings
from tests.streams.conftest import BROKER, Publisher, readings_of, stream_config, wait_for
from tests.streams.test_ingest import iso as iso_min
from tests.streams.test_ingest import us


def letters(services: Services, tenant: str) -> list[str]:
    page, _ = DeadLetterService(services.engine).page(tenant, limit=100, offset=0)
    return sorted(d.reason for d in page)


@pytest.mark.backends
def test_registers_become_intervals_through_a_reset_a_rollover_and_a_restart(
        services: Services, publisher: Publisher, prefix: str,
        start_stream: Callable[..., MqttStream]) -> None:
    wraps = Mapping(f"{prefix}/site/{{tenant}}/{{asset}}/kwh", kind="register",
                    value_field="total", register_max=1000.0)
    config = stream_config(prefix)
    config = replace(config, mappings=(*config.mappings, wraps))
    stream = start_stream(config)
    reg = f"{prefix}/t3/registers/m1"
    for minute, total in [(0, 100.0), (15, 101.5), (30, 103.0), (45, 2.0), (60, 4.5)]:
        publisher.publish(reg, {"ts": iso_min(minute), "value": total})
    site = f"{prefix}/site/t3/m2/kwh"
    publisher.publish(site, [{"ts": iso_min(0), "total": 990.0},
                             {"ts": iso_min(15), "total": 998.0}])
    publisher.publish(site, {"ts": iso_min(30), "total": 3.0})
    assert wait_for(lambda: len(readings_of(services, "t3", "m1")) == 3
                    and len(readings_of(services, "t3", "m2")) == 2)
    stream.stop()

    # Restarted (a new process would read the same stored state): the last total is
    # re-sent, then a new one; nothing is counted twice.
    start_stream(replace(config, client_id=config.client_id + "-2"))
    publisher.publish(reg, {"ts": iso_min(60), "value": 4.5})
    publisher.publish(reg, {"ts": iso_min(30), "value": 103.0})  # late, already counted
    publisher.publish(reg, {"ts": iso_min(75), "value": 6.0})
    assert wait_for(lambda: len(readings_of(services, "t3", "m1")) == 4)
    assert readings_of(services, "t3", "m1") == [
        (us(15), 1.5), (us(30), 1.5), (us(60), 2.5), (us(75), 1.5)]
    assert readings_of(services, "t3", "m2") == [(us(15), 8.0), (us(30), 5.0)]
    found = letters(services, "t3")
    assert len(found) == 2
    assert found[0].startswith("register reset at 2024-03-01T00:45:00Z: total dropped from "
                               "103 to 2; new baseline")
    assert found[1].startswith("register rollover at 2024-03-01T00:30:00Z: total went from "
                               "998 to 3 (wraps at 1000); stored 5")


@pytest.mark.backends
def test_two_tenants_topics_stay_apart(services: Services, publisher: Publisher, prefix: str,
                                       start_stream: Callable[..., MqttStream]) -> None:
    start_stream(stream_config(prefix))
    publisher.publish(f"{prefix}/ta/readings/m1", {"ts": iso_min(0), "value": 1.0})
    publisher.publish(f"{prefix}/tb/readings/m1", {"ts": iso_min(0), "value": 2.0})
    publisher.publish(f"{prefix}/tb/readings/m1", [{"ts": iso_min(1), "value": 3.0}])
    assert wait_for(lambda: len(readings_of(services, "tb", "m1")) == 2
                    and len(readings_of(services, "ta", "m1")) == 1)
    assert readings_of(services, "ta", "m1") == [(us(0), 1.0)]
    assert readings_of(services, "tb", "m1") == [(us(0), 2.0), (us(1), 3.0)]


@pytest.mark.backends
def test_a_tenant_the_streams_key_may_not_write_is_refused(
        services: Services, publisher: Publisher, prefix: str,
        start_stream: Callable[..., MqttStream]) -> None:
    from aihub.errors import Forbidden, Unauthorized
    from aihub.streams.runner import build_stream

    _, write_a = services.api_keys.create(["tenant-a"], "write")
    _, read_b = services.api_keys.create(["tenant-b"], "read")
    services.key_cache.clear()
    config = stream_config(prefix)
    with pytest.raises(Unauthorized):  # keys exist: the stream needs one
        build_stream(services, config)
    with pytest.raises(Forbidden):  # ... with the write role
        build_stream(services, replace(config, api_key=read_b))
    start_stream(replace(config, api_key=write_a))
    publisher.publish(f"{prefix}/tenant-b/readings/m1", {"ts": iso_min(0), "value": 9.0})
    publisher.publish(f"{prefix}/tenant-a/readings/m1", {"ts": iso_min(0), "value": 1.0})
    assert wait_for(lambda: len(letters(services, "tenant-b")) == 1
                    and len(readings_of(services, "tenant-a", "m1")) == 1)
    assert readings_of(services, "tenant-b", "m1") == []
    assert not services.timeseries.tenant_exists("tenant-b")
    assert letters(services, "tenant-b") == [
        "forbidden: the stream's API key may not write tenant 'tenant-b'"]


@pytest.fixture
def app_services(settings: Settings, prefix: str) -> Iterator[Services]:
    """Services whose settings name the broker: ``aihub serve`` runs the stream."""
    svc = build_services(settings.model_copy(update={
        "mqtt_url": f"mqtt://{BROKER[0]}:{BROKER[1]}", "mqtt_topic_prefix": prefix,
        "mqtt_client_id": f"aihub-test-{prefix.split('/')[1]}"}))
    yield svc
    svc.close()


@pytest.mark.backends
def test_serve_runs_the_stream_and_a_get_after_a_publish_shows_the_reading(
        app_services: Services, publisher: Publisher, prefix: str) -> None:
    body = {"tenant_id": "tf", "asset_id": "m1", "feature_set": "forecast_basic",
            "as_of": iso(at(30))}
    with TestClient(create_app(services=app_services)) as client:
        stream = client.app.state.stream  # type: ignore[attr-defined]
        assert stream is not None and stream.wait_subscribed(15)
        r = client.post("/ai/features/ingest", json={
            "tenant_id": "tf", "readings": readings("m1", range(30), lambda h: 1.0)})
        assert r.status_code == 200, r.text
        first = client.post("/ai/features/get", json=body).json()
        assert first["features"]["lag_1h"] == 1.0  # now cached
        publisher.publish(f"{prefix}/tf/readings/m1", {"ts": iso(at(29)), "value": 5.0})

        def shows() -> bool:
            got = client.post("/ai/features/get", json=body).json()
            return bool(got["features"]["lag_1h"] == 5.0)

        assert wait_for(shows, timeout=5, every=0.02)

        publisher.publish(f"{prefix}/tf/readings/m1", b"[1, 2")
        status: dict[str, Any] = {}

        def counted() -> bool:
            status.update(client.get("/ai/stream/status").json())
            return bool(status["dead_letters"] == 1)

        assert wait_for(counted)
        assert status["running"] is True and status["connected"] is True
        assert status["messages_committed"] == 2
        assert sorted(status["subscriptions"]) == sorted(
            f"{prefix}/+/{k}/+" for k in ("readings", "weather", "registers"))
        page = client.get("/ai/stream/dead-letters?tenant_id=tf&limit=5").json()
        assert page["total"] == 1 and len(page["dead_letters"]) == 1
        letter = page["dead_letters"][0]
        assert letter["topic"] == f"{prefix}/tf/readings/m1" and letter["payload"] == "[1, 2"
        assert letter["reason"].startswith("not valid JSON")
        ready = client.get("/ready").json()
        assert ready["checks"]["mqtt_broker"]["status"] == "ok"
        metrics = client.get("/metrics").text
        assert 'aihub_stream_messages_total{result="dead_letter"}' in metrics
    # Stopped with the app: no longer a readiness check.
    assert all(name != "mqtt_broker" for name, _ in app_services.extras["ready_checks"])


def test_without_a_broker_the_status_says_no_stream(client: TestClient) -> None:
    status = client.get("/ai/stream/status").json()
    assert status["running"] is False and status["dead_letters"] == 0
    r = client.get("/ai/stream/dead-letters")
    assert r.status_code == 422 and "tenant_id" in r.text
    assert json.loads(client.get("/ai/stream/dead-letters?tenant_id=x").text) == {
        "dead_letters": [], "total": 0, "limit": 100, "offset": 0}
