"""The stream's receive path (``StreamClient``) on byte streams cut anywhere: every
PUBLISH arrives once, in order, with its topic, payload and packet id; other packets go
to paho; a malformed PUBLISH is a protocol error; a batch's PUBACKs are one write."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from paho.mqtt.client import MQTTErrorCode
from paho.mqtt.enums import CallbackAPIVersion

from aihub.streams.client import Received, StreamClient


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (128 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: str, payload: bytes, mid: int, qos: int = 1, props: bytes = b"") -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") \
        + _varint(len(props)) + props + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


class FakeSocket:
    """Returns the stream in chunks of ``step`` bytes, then would block."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def recv(self, size: int) -> bytes:
        if not self.data:
            raise BlockingIOError
        n = min(size, self.step)
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk

    def close(self) -> None:
        pass


def client() -> tuple[StreamClient, list[Received]]:
    got: list[Received] = []
    c = StreamClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=5,
                     on_messages=got.extend)
    return c, got


def drain(c: StreamClient, data: bytes, step: int) -> MQTTErrorCode:
    c._sock = FakeSocket(data, step)  # type: ignore[assignment]
    while True:
        rc = c._packet_read()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return rc


MESSAGES: list[tuple[str, bytes, int, int, bytes]] = [
    ("aihub/t/readings/a1", b'{"ts":"2024-01-01T00:00:00Z","value":1.5}', 1, 1, b""),
    ("aihub/t/readings/a2", b"", 2, 1, b"\x0b\x05"),  # a subscription identifier
    ("aihub/t/readings/\u00e4", b"x" * 200, 65535, 1, b""),  # two length bytes
    ("aihub/t/weather/l1", b"[" + b"1," * 10_000 + b"1]", 7, 1, b"\x01\x01"),  # three
    ("aihub/t/readings/q0", b"{}", 0, 0, b""),  # QoS 0: no packet id
]


@pytest.mark.parametrize("step", [1, 3, 7, 64, 1 << 20])
def test_publishes_cut_anywhere_arrive_once_in_order(step: int) -> None:
    c, got = client()
    stream = b"".join(publish(t, p, m, q, pr) for t, p, m, q, pr in MESSAGES[:2])
    stream += b"\xd0\x00"  # a PINGRESP between them: paho's own handling
    stream += b"".join(publish(t, p, m, q, pr) for t, p, m, q, pr in MESSAGES[2:])
    c._ping_t = 123.0
    assert drain(c, stream, step) == MQTTErrorCode.MQTT_ERR_AGAIN
    assert got == [(t, p, m, q) for t, p, m, q, _ in MESSAGES]
    assert c._ping_t == 0  # the PINGRESP reached paho
    assert not c._rbuf


def test_a_packet_cut_short_waits_for_its_remaining_bytes() -> None:
    c, got = client()
    whole = publish("a/b", b"payload", 9)
    assert drain(c, whole[:-3], 1 << 20) == MQTTErrorCode.MQTT_ERR_AGAIN
    assert got == [] and len(c._rbuf) == len(whole) - 3
    assert drain(c, whole[-3:], 1 << 20) == MQTTErrorCode.MQTT_ERR_AGAIN
    assert got == [("a/b", b"payload", 9, 1)]


@pytest.mark.parametrize("bad", [
    publish("a/b", b"x", 0),  # QoS 1 without a packet id
    bytes([0x32, 3, 0, 9, ord("a")]),  # topic longer than the packet
    bytes([0x32, 0xff, 0xff, 0xff, 0xff, 0x01]),  # a remaining length of five bytes
])
def test_a_malformed_publish_is_a_protocol_error(bad: bytes) -> None:
    c, got = client()
    assert drain(c, publish("ok/1", b"1", 1) + bad, 1 << 20) == \
        MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert got == [("ok/1", b"1", 1, 1)]


def test_a_closed_connection_is_reported() -> None:
    c, _ = client()

    class Closed(FakeSocket):
        def recv(self, size: int) -> bytes:
            return b""

    c._sock = Closed(b"", 1)  # type: ignore[assignment]
    assert c._packet_read() == MQTTErrorCode.MQTT_ERR_CONN_LOST


def test_the_pubacks_of_a_batch_are_one_write() -> None:
    c, _ = client()
    queued: list[dict[str, Any]] = []
    c._packet_queue = lambda cmd, packet, mid, qos, info=None: queued.append(  # type: ignore[method-assign]
        {"command": cmd, "packet": packet})
    c.ack_many([1, 300, 65535])
    c.ack_many([])
    assert queued == [{"command": 0x40,
                       "packet": b"\x40\x02\x00\x01\x40\x02\x01\x2c\x40\x02\xff\xff"}]
