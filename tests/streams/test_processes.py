"""``aihub stream mqtt --processes N``: the workers share the readings (each message
stored exactly once, every worker taking a share), registers stay in order with worker 0,
and a later run with fewer processes drains and ends the sessions of the workers it no
longer has (their shares are stored, nothing stays queued for nobody)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from dataclasses import replace

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from aihub.config import Settings
from aihub.services.container import Services
from aihub.streams.config import StreamConfig, default_mappings
from tests.streams.conftest import Publisher, readings_of, wait_for
from tests.streams.faults import OwnBroker, own_broker
from tests.streams.test_faults import _stream_process
from tests.streams.test_ingest import iso, us

__all__ = ["own_broker"]  # the fixture, shared from tests.streams.faults


def test_readings_and_weather_are_shared_and_registers_stay_with_worker_0() -> None:
    base = StreamConfig(host="h", port=1883, client_id="aihub/x",
                        mappings=default_mappings("p"))
    plain = ["p/+/readings/+", "p/+/weather/+"]
    shared = [f"$share/aihub_x/{f}" for f in plain]
    assert base.subscriptions() == ([*plain, "p/+/registers/+"], shared)
    three = replace(base, processes=3)
    assert three.subscriptions() == ([*shared, "p/+/registers/+"], plain)
    second = three.for_worker(2)
    assert second.subscriptions() == (shared, [*plain, "p/+/registers/+"])
    assert (three.worker_client_id, second.worker_client_id) == ("aihub/x", "aihub/x-2")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def _session_exists(port: int, client_id: str) -> bool:
    """Whether the broker holds a session for ``client_id`` (connecting without a clean
    start says so; the session is kept as it was)."""
    seen: list[bool] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_connect = lambda _c, _u, flags, _r, _p: seen.append(flags.session_present)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    assert wait_for(lambda: bool(seen), timeout=10)
    end = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
    end.SessionExpiryInterval = 0 if not seen[0] else 600
    c.disconnect(properties=end)
    c.loop_stop()
    return seen[0]


@pytest.mark.backends
def test_processes_store_every_message_exactly_once(
        services: Services, settings: Settings, own_broker: OwnBroker, prefix: str) -> None:
    client_id = f"aihub-test-{uuid.uuid4().hex[:8]}"
    proc = _stream_process(settings, own_broker, prefix, client_id, "--processes", "2")
    pub = Publisher("127.0.0.1", own_broker.port)
    try:
        for i in range(240):  # six assets, one reading per message
            pub.publish(f"{prefix}/tm/readings/m{i % 6}", {"ts": iso(i // 6), "value": i + 0.5},
                        wait=False)
        for j in range(4):  # ten per message
            pub.publish(f"{prefix}/tm/readings/b1",
                        [{"ts": iso(j * 10 + k), "value": float(j * 10 + k)} for k in range(10)],
                        wait=False)
        for h in range(30):  # a register, in order: worker 0 alone reads it
            pub.publish(f"{prefix}/tm/registers/r1", {"ts": iso(h * 60), "value": 100.0 + h * h},
                        wait=False)
        assert wait_for(lambda: all(len(readings_of(services, "tm", f"m{a}")) == 40
                                    for a in range(6))
                        and len(readings_of(services, "tm", "b1")) == 40
                        and len(readings_of(services, "tm", "r1")) == 29, timeout=90)
        for a in range(6):
            assert readings_of(services, "tm", f"m{a}") == [
                (us(n), n * 6 + a + 0.5) for n in range(40)]
        assert readings_of(services, "tm", "b1") == [(us(n), float(n)) for n in range(40)]
        assert readings_of(services, "tm", "r1") == [
            (us(h * 60), float(h * h - (h - 1) * (h - 1))) for h in range(1, 30)]
        out = _stop(proc)
    finally:
        pub.close()
        if proc.poll() is None:
            proc.kill()
    found = re.search(r"stopped: (\d+) messages stored \(worker 0: (\d+), worker 1: (\d+)\)",
                      out)
    assert found, out
    total, first, second = map(int, found.groups())
    assert total == 274 and first > 30 and second > 0  # both took a share


@pytest.mark.backends
def test_fewer_processes_drain_and_end_the_sessions_of_the_workers_gone(
        services: Services, settings: Settings, own_broker: OwnBroker, prefix: str) -> None:
    client_id = f"aihub-test-{uuid.uuid4().hex[:8]}"
    proc = _stream_process(settings, own_broker, prefix, client_id, "--processes", "3")
    _stop(proc)
    pub = Publisher("127.0.0.1", own_broker.port)
    try:
        # Published while no worker runs: the broker queues a share for each session.
        for i in range(60):
            pub.publish(f"{prefix}/tf/readings/m1", {"ts": iso(i), "value": float(i)})
        proc = _stream_process(settings, own_broker, prefix, client_id)  # one process now
        # Two thirds of them waited in the sessions of workers 1 and 2: drained.
        assert wait_for(lambda: len(readings_of(services, "tf", "m1")) == 60, timeout=60)
        # ... and ended, once idle for a second (looked at after that: a look connects
        # as the session, which would take it over from the drain).
        time.sleep(6)
        assert not _session_exists(own_broker.port, f"{client_id}-1")
        assert not _session_exists(own_broker.port, f"{client_id}-2")
        for i in range(60, 90):
            pub.publish(f"{prefix}/tf/readings/m1", {"ts": iso(i), "value": float(i)})
        assert wait_for(lambda: len(readings_of(services, "tf", "m1")) == 90, timeout=30)
        assert readings_of(services, "tf", "m1") == [(us(i), float(i)) for i in range(90)]
        time.sleep(0.5)
        _stop(proc)
    finally:
        pub.close()
        if proc.poll() is None:
            proc.kill()


def test_the_status_of_several_workers_adds_up() -> None:
    from aihub.streams.status import StreamStatus

    own = StreamStatus(broker="mqtt://b:1883", client_id="s", connected=True, dead_letters=5,
                       pending=lambda: (3, None))
    own.committed_batch(10, 1)  # 6 dead letters now, 1 of them written by this worker
    other = {**own.snapshot(), "client_id": "s-1", "messages_committed": 7, "pending": 2,
             "lag_seconds": 1.5, "dead_letters": 8, "dead_letters_written": 2,
             "connected": False, "last_commit_at": "2999-01-01T00:00:00Z"}
    own.others = lambda: [other]
    merged = own.snapshot()
    assert (merged["messages_committed"], merged["pending"], merged["dead_letters"]) == (
        17, 5, 8)
    assert merged["processes"] == 2 and merged["connected"] is False
    assert merged["lag_seconds"] == 1.5
    assert merged["last_commit_at"] == "2999-01-01T00:00:00Z"
