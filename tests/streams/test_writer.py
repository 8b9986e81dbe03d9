"""The micro-batch writer on its own (messages handed in, no broker): custom layouts,
weather, unroutable topics, a message the store fails on; and through the broker, a
database that goes away holds the batch unacknowledged until it is back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import polars as pl
import pytest

from aihub.errors import BackendUnavailable
from aihub.services.container import Services
from aihub.streams.config import Mapping, default_mappings
from aihub.streams.dead_letters import DeadLetterService
from aihub.streams.subscriber import MqttStream
from aihub.streams.writer import Message, StreamWriter
from tests.streams.conftest import Publisher, readings_of, stream_config, wait_for
from tests.streams.test_ingest import T0, iso, us

P = "aihub"


def writer(services: Services, *extra: Mapping) -> StreamWriter:
    return StreamWriter(ingest=services.ingest, mappings=(*default_mappings(P), *extra))


def reasons(services: Services, tenant: str) -> list[str]:
    page, _ = DeadLetterService(services.engine).page(tenant, limit=100, offset=0)
    return sorted(d.reason for d in page)


@pytest.mark.backends
def test_a_custom_layout_reads_its_fields_scales_and_converts_epoch_times(
        services: Services) -> None:
    power = Mapping("site/{tenant}/meter/{asset}/power", time_field="t", value_field="p_w",
                    time_format="epoch_ms", scale=0.001)
    ms = int(T0.timestamp() * 1000)
    result = writer(services, power).write([
        Message("site/tc/meter/m1/power", b'{"t": %d, "p_w": 1500, "unit": "W"}' % ms),
        Message("site/tc/meter/m1/power",
                b'[{"t": %d, "p_w": 2500.0}, {"t": %d}]' % (ms + 60_000, ms + 120_000)),
        Message("site/tc/meter/m1/power", b'{"t": "yesterday", "p_w": 1}'),
    ])
    assert (result.messages, result.rows, result.dead_letters) == (3, 2, 2)
    assert readings_of(services, "tc", "m1") == [(us(0), 1.5), (us(1), 2.5)]
    assert reasons(services, "tc") == [
        "element 1, field 'p_w': missing value",
        "field 't': not an ISO 8601 timestamp",
    ]


@pytest.mark.backends
def test_weather_and_unroutable_topics(services: Services) -> None:
    result = writer(services).write([
        Message(f"{P}/tw/weather/berlin",
                b'[{"ts": "%s", "temperature": 3.5}, {"ts": "%s", "temperature": null}]'
                % (iso(0).encode(), iso(60).encode())),
        Message(f"{P}/tw/weather/berlin", b'{"ts": "%s", "location_id": "x"}'
                % iso(120).encode()),
        Message(f"{P}/tw/nothing/berlin", b"{}"),
        Message(f"{P}/bad tenant/readings/m1", b"{}"),
    ])
    assert (result.rows, result.dead_letters, result.dead_messages) == (2, 3, 3)
    frame = services.timeseries.load_weather("tw", ["berlin"], 0, 2**62)
    assert frame.select("ts", "temperature").rows() == [(us(0), 3.5), (us(60), None)]
    assert reasons(services, "tw") == [
        "field 'location_id': unknown field 'location_id': the topic names the location"]
    assert DeadLetterService(services.engine).count() == 3  # two belong to no tenant


@pytest.mark.backends
def test_a_message_the_store_fails_on_is_a_dead_letter_and_the_rest_commit(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault that no input of ours can cause (a bug, a constraint): injected."""
    real = services.ingest.store_readings

    def failing(conn: Any, tenant_id: str, batch: pl.DataFrame) -> Any:
        if tenant_id == "boom":
            raise RuntimeError("injected")
        return real(conn, tenant_id, batch)

    monkeypatch.setattr(services.ingest, "store_readings", failing)
    result = writer(services).write([
        Message(f"{P}/ok/readings/m1", b'{"ts": "%s", "value": 1}' % iso(0).encode()),
        Message(f"{P}/boom/readings/m1", b'{"ts": "%s", "value": 2}' % iso(0).encode()),
        Message(f"{P}/ok/readings/m1", b'{"ts": "%s", "value": 3}' % iso(1).encode()),
    ])
    assert (result.messages, result.dead_messages) == (3, 1)
    assert readings_of(services, "ok", "m1") == [(us(0), 1.0), (us(1), 3.0)]
    assert readings_of(services, "boom", "m1") == []
    assert reasons(services, "boom") == ["could not be stored: RuntimeError"]


@pytest.mark.backends
def test_a_database_away_holds_the_batch_until_it_is_back(
        services: Services, publisher: Publisher, prefix: str,
        start_stream: Callable[..., MqttStream], monkeypatch: pytest.MonkeyPatch) -> None:
    """The database refusing connections (injected: the shared server is never stopped)
    for the first attempts: the batch is retried, nothing acknowledged or lost."""
    stream = start_stream(stream_config(prefix))
    real = stream.writer._commit
    attempts: list[int] = []

    def unavailable(*args: Any) -> Any:
        attempts.append(1)
        if len(attempts) <= 3:
            raise BackendUnavailable("database", "connection refused (injected)")
        return real(*args)

    monkeypatch.setattr(stream.writer, "_commit", unavailable)
    for i in range(20):
        publisher.publish(f"{prefix}/td/readings/m1", {"ts": iso(i), "value": float(i)})
    assert wait_for(lambda: len(attempts) >= 2)
    assert stream.status.snapshot()["last_error"].startswith("could not store a batch")
    assert stream.status.snapshot()["pending"] > 0
    assert wait_for(lambda: len(readings_of(services, "td", "m1")) == 20)
    assert readings_of(services, "td", "m1") == [(us(i), float(i)) for i in range(20)]
    assert wait_for(lambda: stream.status.snapshot()["last_error"] is None)


def test_qos0_beyond_the_inbox_cap_is_dropped_and_counted(services: Services) -> None:
    """Fed straight into the subscriber's callback (no network): QoS 1 is always kept,
    whether the messages come one per socket read or many."""
    from aihub.streams.runner import build_stream

    stream = build_stream(services, stream_config("p", batch_rows=2))  # receive max 4
    cap = 4 * stream.config.receive_maximum
    received = [("p/t/readings/m1", b"{}", i + 1, qos) for i in range(cap + 5)
                for qos in (0, 1)]
    stream._on_messages(received[:3])
    for one in received[3:9]:
        stream._on_messages([one])
    stream._on_messages(received[9:])
    status = stream.status.snapshot()
    kept0 = sum(1 for m in stream._inbox if m.qos == 0)
    kept1 = sum(1 for m in stream._inbox if m.qos == 1)
    # Two messages a round: QoS 0 is kept until the inbox holds ``cap``, then dropped.
    assert (kept0, kept1) == (cap // 2, cap + 5)
    assert status["dropped_qos0"] == cap + 5 - cap // 2
    assert status["pending"] == status["messages_received"] == kept0 + kept1


@pytest.mark.backends
def test_knowledge_time_and_quality_flow_through_and_a_resend_adds_no_version(
        services: Services) -> None:
    """The stream feeds HTTP ingest's own parser: a field it knows (``known_at``,
    ``quality``) is read and checked the same way."""
    topic = f"{P}/tq/readings/m1"
    first = {"ts": iso(0), "value": 1.0, "known_at": iso(60), "quality": "estimated"}
    w = writer(services)
    w.write([Message(topic, orjson.dumps(first))])
    w.write([Message(topic, orjson.dumps(first)),  # re-delivered: nothing new
             Message(topic, orjson.dumps({"ts": iso(0), "value": 2.0, "known_at": iso(120),
                                          "quality": "actual"})),
             Message(topic, orjson.dumps({"ts": iso(1), "value": 3.0, "quality": "guess"}))])
    (asset,) = services.timeseries.get_assets("tq", ["m1"])
    versions = services.timeseries.load_reading_versions([asset.key], 0, 2**62)
    assert versions.select("ts", "known_at", "value", "quality").rows() == [
        (us(0), us(60), 1.0, 1), (us(0), us(120), 2.0, 0)]
    assert readings_of(services, "tq", "m1") == [(us(0), 2.0)]
    (reason,) = reasons(services, "tq")
    assert reason.startswith("field 'quality': ")
