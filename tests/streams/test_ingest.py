"""Published QoS 1 readings are stored exactly once; bad messages become dead letters
while the good ones of the same batch commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from aihub.services.container import Services
from aihub.streams.dead_letters import DeadLetterService
from aihub.streams.subscriber import MqttStream
from aihub.timeutil import to_us
from tests.streams.conftest import Publisher, readings_of, stream_config, wait_for

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def iso(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


def us(minute: int) -> int:
    return to_us(T0 + timedelta(minutes=minute))


@pytest.mark.backends
def test_every_published_reading_is_stored_once_with_its_value(
        services: Services, publisher: Publisher, prefix: str,
        start_stream: Callable[..., MqttStream]) -> None:
    stream = start_stream(stream_config(prefix))
    for i in range(60):  # one reading per message
        publisher.publish(f"{prefix}/t1/readings/m1", {"ts": iso(i), "value": i * 0.5})
    for j in range(6):  # ten per message
        publisher.publish(f"{prefix}/t1/readings/m2",
                          [{"ts": iso(j * 10 + k), "value": 100.0 + j * 10 + k}
                           for k in range(10)])
    publisher.publish(f"{prefix}/t1/readings/m1", {"ts": iso(0), "value": 0.0})  # re-sent
    assert wait_for(lambda: len(readings_of(services, "t1", "m2")) == 60
                    and len(readings_of(services, "t1", "m1")) == 60
                    and stream.status.snapshot()["pending"] == 0)
    assert readings_of(services, "t1", "m1") == [(us(i), i * 0.5) for i in range(60)]
    assert readings_of(services, "t1", "m2") == [(us(i), 100.0 + i) for i in range(60)]
    status = stream.status.snapshot()
    assert status["messages_committed"] == 67 and status["connected"] is True
    assert DeadLetterService(services.engine).page("t1", limit=10, offset=0)[1] == 0


@pytest.mark.backends
def test_bad_messages_become_dead_letters_and_the_good_ones_commit(
        services: Services, publisher: Publisher, prefix: str,
        start_stream: Callable[..., MqttStream]) -> None:
    # One batch: a long window, so every message below lands in the same transaction.
    start_stream(stream_config(prefix, batch_ms=1500))
    topic = f"{prefix}/t2/readings/m1"
    publisher.publish(topic, {"ts": iso(0), "value": 1.0})
    publisher.publish(topic, b"{not json")
    publisher.publish(topic, {"ts": "2024-03-01T00:05:00", "value": 2.0})  # naive
    publisher.publish(topic, b'{"ts": "2024-03-01T00:06:00Z", "value": NaN}')
    publisher.publish(topic, {"ts": iso(7), "value": 3.0, "unit": "kWh"})
    publisher.publish(topic, [{"ts": iso(8), "value": 4.0}, {"ts": iso(9), "value": "5"},
                              {"ts": iso(10), "value": 6.0}])
    publisher.publish(f"{prefix}/t2/readings/bad asset!", {"ts": iso(11), "value": 7.0})
    publisher.publish(topic, {"ts": iso(12), "value": 8.0, "asset_id": "m9"})
    letters = DeadLetterService(services.engine)
    assert wait_for(lambda: letters.page("t2", limit=50, offset=0)[1] == 7)
    assert readings_of(services, "t2", "m1") == [
        (us(0), 1.0), (us(8), 4.0), (us(10), 6.0)]
    page, total = letters.page("t2", limit=50, offset=0)
    reasons = sorted(d.reason for d in page)
    assert total == 7
    assert any(r.startswith("not valid JSON") for r in reasons)
    assert "field 'ts': timestamp has no timezone; add 'Z' or an offset like +01:00" in reasons
    assert "field 'value': must be a finite number" in reasons
    assert any(r.startswith("field 'unit': unknown field 'unit'") for r in reasons)
    assert "element 1, field 'value': must be a number, not a string" in reasons
    assert any("field 'asset_id': not a valid name" in r for r in reasons)
    assert "field 'asset_id': unknown field 'asset_id': the topic names the asset" in reasons
    assert {d.topic for d in page} == {topic, f"{prefix}/t2/readings/bad asset!"}
    listed = next(d for d in page if "element 1" in d.reason)
    assert '"value":"5"' in listed.payload
    assert readings_of(services, "t2", "m9") == []
