"""Faults on a broker of the test's own: the broker killed and restarted mid-stream (the
stream reconnects with back-off; nothing lost, nothing doubled), and the stream process
killed mid-batch and restarted (the uncommitted messages are re-delivered and stored)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aihub.config import Settings
from aihub.services.container import Services
from aihub.streams.subscriber import MqttStream
from tests.streams.conftest import (
    Publisher,
    readings_of,
    stream_config,
    wait_for,
)
from tests.streams.faults import OwnBroker, own_broker
from tests.streams.test_ingest import iso, us

__all__ = ["own_broker"]  # the fixture, shared from tests.streams.faults

AIHUB = str(Path(sys.executable).parent / "aihub")


@pytest.mark.backends
def test_broker_killed_and_restarted_mid_stream_loses_and_doubles_nothing(
        services: Services, own_broker: OwnBroker, prefix: str,
        start_stream: Callable[..., MqttStream]) -> None:
    # A long batch window: the first messages are still uncommitted (unacknowledged) when
    # the broker dies, so they must come back after the restart.
    stream = start_stream(stream_config(prefix, port=own_broker.port, batch_ms=4000,
                                        linger_ms=4000, reconnect_min=1, reconnect_max=2))
    pub = Publisher("127.0.0.1", own_broker.port)
    topic = f"{prefix}/tk/readings/m1"
    try:
        for i in range(100):
            pub.publish(topic, {"ts": iso(i), "value": float(i)})
        assert wait_for(lambda: stream.status.snapshot()["messages_received"] >= 100)
        assert readings_of(services, "tk", "m1") == []  # held in the open batch
        # The broker saves its state every second or two: wait for a save that holds the
        # session's subscription and its unacknowledged messages, then crash it.
        time.sleep(2.5)
        own_broker.kill()
        assert wait_for(lambda: not stream.status.connected, timeout=10)
        # The publisher goes on: paho queues while the broker is away and sends once it
        # is back.
        for i in range(100, 150):
            pub.publish(topic, [{"ts": iso(i), "value": float(i)}], wait=False)
        own_broker.start()
        for i in range(150, 200):
            pub.publish(topic, [{"ts": iso(i), "value": float(i)}], wait=False)
        if not wait_for(lambda: len(readings_of(services, "tk", "m1")) == 200, timeout=60):
            print(len(readings_of(services, "tk", "m1")), stream.status.snapshot())
            print(own_broker.log())
            pytest.fail("not all stored")
    finally:
        pub.close()
    assert readings_of(services, "tk", "m1") == [(us(i), float(i)) for i in range(200)]
    status = stream.status.snapshot()
    assert status["reconnects"] >= 1 and status["connected"] is True
    # The first 100 came twice: committed on the lost connection (so not acknowledged),
    # then re-delivered by the restarted broker and stored again, replacing themselves.
    assert status["messages_received"] >= 300
    assert status["dead_letters"] == 0


def _stream_process(settings: Settings, broker: OwnBroker, prefix: str, client_id: str,
                    *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AIHUB_DATA_DIR": str(settings.data_dir)}
    for name, value in (("DATABASE_URL", settings.database_url),
                        ("REDIS_URL", settings.redis_url),
                        ("AIHUB_REDIS_PREFIX", settings.redis_key_prefix)):
        env.pop(name, None)
        if value:
            env[name] = value
    proc = subprocess.Popen(
        [AIHUB, "stream", "mqtt", "--broker", f"mqtt://127.0.0.1:{broker.port}",
         "--client-id", client_id, "--topic-prefix", prefix, *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.strip() == "subscribed":
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("stream process did not subscribe: " + "".join(lines))


@pytest.mark.backends
def test_stream_process_killed_mid_batch_gets_its_messages_again(
        services: Services, settings: Settings, own_broker: OwnBroker, prefix: str) -> None:
    client_id = f"aihub-test-{prefix.split('/')[1]}"
    proc = _stream_process(settings, own_broker, prefix, client_id, "--batch-ms", "60000",
                           "--linger-ms", "60000", "--batch-rows", "60000")
    pub = Publisher("127.0.0.1", own_broker.port)
    topic = f"{prefix}/tp/readings/m1"
    try:
        for i in range(150):
            pub.publish(topic, {"ts": iso(i), "value": i + 0.25})
        time.sleep(1.0)  # delivered to the process, which holds them in its open batch
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert readings_of(services, "tp", "m1") == []  # killed before its commit
        for i in range(150, 160):  # published while no stream runs: queued by the broker
            pub.publish(topic, {"ts": iso(i), "value": i + 0.25})
        proc = _stream_process(settings, own_broker, prefix, client_id)
        assert wait_for(lambda: len(readings_of(services, "tp", "m1")) == 160, timeout=60)
        assert readings_of(services, "tp", "m1") == [(us(i), i + 0.25) for i in range(160)]
        proc.send_signal(signal.SIGTERM)  # a clean stop commits, acknowledges, exits 0
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "stopped:" in out
    finally:
        pub.close()
        if proc.poll() is None:
            proc.kill()
