"""Stream fixtures: the machine's Mosquitto (127.0.0.1:1883, never stopped here), topics
and client ids of each test's own, a publisher, and waits on the store."""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from aihub.services.container import Services
from aihub.streams.config import StreamConfig, default_mappings
from aihub.streams.runner import build_stream
from aihub.streams.subscriber import MqttStream

BROKER = ("127.0.0.1", 1883)


def broker_up(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def require_mosquitto(host: str = BROKER[0], port: int = BROKER[1]) -> None:
    """Skip when no broker answers (a machine with nothing but Python), or fail when the
    run requires one (``AIHUB_REQUIRE_MQTT=1``, as ``.ci/run`` sets)."""
    if broker_up(host, port):
        return
    _missing(f"Mosquitto does not answer on {host}:{port}")


def require_mosquitto_binary() -> None:
    """The fault tests start brokers of their own: they need the ``mosquitto`` binary."""
    if shutil.which("mosquitto") is None:
        _missing("the mosquitto binary is not installed")


def _missing(what: str) -> None:
    if os.environ.get("AIHUB_REQUIRE_MQTT") == "1":
        pytest.fail(f"{what} (.ci/run starts the machine's Mosquitto)")
    pytest.skip(f"{what}: stream tests skipped (set AIHUB_REQUIRE_MQTT=1 to fail instead)")


class Publisher:
    """A QoS 1 publisher (MQTT 5); ``publish`` returns once the broker acknowledged."""

    def __init__(self, host: str, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=f"aihub-test-pub-{uuid.uuid4().hex[:10]}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: Any, *, wait: bool = True) -> mqtt.MQTTMessageInfo:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        info = self.client.publish(topic, body, qos=1)
        if wait:
            info.wait_for_publish(10)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own: other tests' messages never reach it."""
    return f"aihub-test/{uuid.uuid4().hex[:10]}/aihub"


def stream_config(prefix: str, host: str = BROKER[0], port: int = BROKER[1],
                  **kw: Any) -> StreamConfig:
    base = StreamConfig(host=host, port=port, client_id=f"aihub-test-{uuid.uuid4().hex[:10]}",
                        mappings=default_mappings(prefix), session_expiry=600,
                        reconnect_max=2)
    return replace(base, **kw)


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    require_mosquitto()
    pub = Publisher(*BROKER)
    yield pub
    pub.close()


@pytest.fixture
def start_stream(services: Services) -> Iterator[Callable[..., MqttStream]]:
    """Start a stream on ``services`` with a config; stopped after the test."""
    started: list[MqttStream] = []

    def start(config: StreamConfig) -> MqttStream:
        stream = build_stream(services, config)
        stream.start()
        started.append(stream)
        assert stream.wait_subscribed(15), "the stream did not subscribe"
        return stream

    yield start
    for s in started:
        s.stop()


def readings_of(services: Services, tenant: str, asset: str) -> list[tuple[int, float]]:
    """Every stored reading of an asset, ``(ts_us, value)`` in time order."""
    found = services.timeseries.get_assets(tenant, [asset])
    if not found:
        return []
    frame = services.timeseries.load_readings(found[0].key, 0, 2**62)
    return list(zip(frame.get_column("ts").to_list(), frame.get_column("value").to_list(),
                    strict=True))


def wait_for(check: Callable[[], bool], timeout: float = 20.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()
