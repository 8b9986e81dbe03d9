"""paho-mqtt's client with a receive path sized for a stream.

paho keeps everything a session needs (connect, MQTT 5 properties, subscriptions,
keep-alive, TLS, reconnects); per message, though, its stock path reads a packet in three
``recv`` calls, builds an ``MQTTMessage`` and its properties, matches the topic against
per-filter callbacks and queues one PUBACK (one wake-up and one ``send``) per message.
At tens of thousands of messages a second that was two thirds of the stream's CPU.

``StreamClient`` changes only that path:

- ``_packet_read`` reads up to 256 KiB per ``recv`` and decodes every complete packet in
  it; a partial packet stays buffered until its remaining bytes arrive (which wake the
  network loop's ``select``, so nothing is left waiting in the buffer);
- a QoS 0/1 PUBLISH becomes ``(topic, payload, packet id, qos)``, handed with the others
  of the same read to one callback (``on_messages``); every other packet (CONNACK,
  SUBACK, PINGRESP, DISCONNECT, a QoS 2 PUBLISH) goes through paho's own handling;
- ``ack_many`` queues the PUBACKs of a whole micro-batch as one write.

It relies on paho 2.1/2.2 internals (``_packet_read``, ``_packet_handle``,
``_packet_queue``, ``_in_packet``, ``_sock_recv``): pyproject.toml pins paho-mqtt below
2.3, and tests/streams/test_client.py checks them on the installed version.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.client import MQTTErrorCode
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

__all__ = ["Received", "StreamClient"]

# (topic, payload, packet id, qos) of one PUBLISH
Received = tuple[str, bytes, int, int]

_READ_SIZE = 256 * 1024
_PUBLISH = 0x30
_PUBACK = 0x40


def _in_packet(command: int = 0, packet: bytes | bytearray = b"") -> Any:
    """paho's record of the packet being read (complete, when handed to paho)."""
    return {"command": command, "have_remaining": 1 if command else 0,
            "remaining_count": [], "remaining_mult": 1, "remaining_length": len(packet),
            "packet": bytearray(packet), "to_process": 0, "pos": 0}


class StreamClient(mqtt.Client):
    """``mqtt.Client`` (manual acknowledgements) whose PUBLISH packets reach
    ``on_messages(list of Received)``, one call per socket read."""

    def __init__(self, *args: Any, on_messages: Callable[[list[Received]], None],
                 **kwargs: Any) -> None:
        kwargs["manual_ack"] = True
        super().__init__(*args, **kwargs)
        self._on_messages = on_messages
        self._rbuf = bytearray()
        self._v5 = self._protocol == MQTTProtocolVersion.MQTTv5

    def ack_many(self, mids: list[int]) -> None:
        """One write with a PUBACK (reason: success) for each of ``mids``, in order."""
        if mids:
            packet = struct.pack(f"!{len(mids)}I", *[0x40020000 | m for m in mids])
            self._packet_queue(_PUBACK, packet, 0, 1)  # type: ignore[attr-defined]

    def _sock_close(self) -> None:
        self._rbuf.clear()  # a new connection starts with a new stream of packets
        super()._sock_close()  # type: ignore[misc]

    def _packet_read(self) -> MQTTErrorCode:
        try:
            data = self._sock_recv(_READ_SIZE)  # type: ignore[attr-defined]
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:  # TimeoutError included
            self._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", err)  # type: ignore[attr-defined]
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        with self._msgtime_mutex:  # type: ignore[attr-defined]
            self._last_bytes_received = mqtt.time_func()
        buf = self._rbuf
        buf += data
        received: list[Received] = []
        try:
            pos, rc = self._decode(buf, received)
        finally:
            if received:
                self._on_messages(received)
        del buf[:pos]
        return rc

    def _decode(self, buf: bytearray, out: list[Received]) -> tuple[int, MQTTErrorCode]:
        """Complete packets of ``buf``: PUBLISH into ``out``, the rest handled by paho.
        Returns where the first incomplete packet starts, and paho's result."""
        n, pos, v5 = len(buf), 0, self._v5
        while pos + 2 <= n:
            cmd = buf[pos]
            length, mult, i = 0, 1, pos + 1
            while True:  # the remaining length: 1..4 bytes of 7 bits
                if i >= n:
                    return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
                b = buf[i]
                length += (b & 127) * mult
                mult *= 128
                i += 1
                if not b & 128:
                    break
                if i - pos > 4:
                    return pos, MQTTErrorCode.MQTT_ERR_PROTOCOL
            end = i + length
            if end > n:
                return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
            qos = (cmd >> 1) & 3
            if cmd & 0xF0 == _PUBLISH and qos < 2:
                j = i + 2 + (buf[i] << 8 | buf[i + 1]) if length >= 2 else end + 1
                topic = bytes(buf[i + 2:j]).decode("utf-8", "replace")
                mid = 0
                if qos:
                    mid = buf[j] << 8 | buf[j + 1] if j + 2 <= end else -1
                    j += 2
                if v5 and j < end:  # skip the properties: a varint length, then them
                    plen, mult, b = 0, 1, 128
                    while b & 128 and j < end:
                        b = buf[j]
                        plen += (b & 127) * mult
                        mult *= 128
                        j += 1
                    j += plen
                if j > end or mid < 0 or (qos and mid == 0):
                    self._easy_log(mqtt.MQTT_LOG_ERR, "Received a malformed PUBLISH")  # type: ignore[attr-defined]
                    return end, MQTTErrorCode.MQTT_ERR_PROTOCOL
                out.append((topic, bytes(buf[j:end]), mid, qos))
            else:
                if out:  # paho's handling (a DISCONNECT, say) after the messages before it
                    self._on_messages(out[:])
                    out.clear()
                self._in_packet = _in_packet(cmd, buf[i:end])
                try:
                    rc = self._packet_handle()  # type: ignore[attr-defined]
                except MalformedPacket as exc:
                    self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)  # type: ignore[attr-defined]
                    rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
                self._in_packet = _in_packet()
                if rc or len(buf) != n:  # an error, or the connection closed meanwhile
                    return end, rc
            pos = end
        return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
