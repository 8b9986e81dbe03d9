"""The MQTT subscriber: paho-mqtt 2 on MQTT 5, QoS 1, a persistent session, and an
acknowledgement (PUBACK) for each message only after the micro-batch holding it committed.

Threads: paho's network loop (``loop_start``) receives messages into a queue and
reconnects with back-off when the broker goes away; one batch thread takes messages from
the queue, commits them in micro-batches (``StreamWriter``: at most ``batch_ms`` after the
first message of the batch, or about ``batch_rows`` readings) and then acknowledges them,
in the order they arrived (MQTT's rule).

Flow control: the broker sends a client at most its *receive maximum* of unacknowledged
QoS 1 messages (MQTT 5; Mosquitto applies it instead of its ``max_inflight_messages``).
We ask for two batches' worth, so the next batch fills while one commits; a broker built
for MQTT 3.1.1 semantics would cap it at its own inflight setting (README).

Nothing is acknowledged before it is stored: a crash re-delivers every message of the
batch in progress, and re-delivery is harmless (re-sent readings replace themselves;
registers ignore totals they already counted). A message received on a connection that
has since been lost is stored but not acknowledged: the broker re-delivers it on the new
connection (and the packet id may by then name another message).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from aihub.errors import BackendUnavailable
from aihub.metrics import record_stream_reconnect
from aihub.streams.config import StreamConfig
from aihub.streams.status import StreamStatus
from aihub.streams.writer import Message, StreamWriter

__all__ = ["MqttStream"]

log = logging.getLogger("aihub.streams")

_RETRY_MAX = 5.0  # seconds between attempts to commit while the database is away


class MqttStream:
    """Start with ``start()``, stop with ``stop()``; ``ping()`` is the readiness check."""

    backend_name = "mqtt"
    critical = False  # a broker away degrades the API (/ready 200, "degraded")

    def __init__(self, config: StreamConfig, writer: StreamWriter, *,
                 dead_letters_before: int = 0) -> None:
        self.config = config
        self.writer = writer
        self.status = StreamStatus(broker=config.url, client_id=config.client_id,
                                   dead_letters=dead_letters_before)
        self._queue: queue.Queue[Message] = queue.Queue()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._batcher: threading.Thread | None = None
        self._client = self._make_client()

    # -- the client -----------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file, certfile=cfg.cert_file, keyfile=cfg.key_file,
                           cert_reqs=ssl.CERT_NONE if cfg.tls_insecure else ssl.CERT_REQUIRED)
            if cfg.tls_insecure:
                client.tls_insecure_set(True)
        client.reconnect_delay_set(min_delay=max(1, int(cfg.reconnect_min)),
                                   max_delay=max(1, int(cfg.reconnect_max)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.session_expiry
        props.ReceiveMaximum = self.config.receive_maximum
        return props

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any,
                    _p: Any) -> None:
        if reason.is_failure:
            self.status.last_error = f"broker refused the connection: {reason}"
            log.warning("MQTT broker %s refused the connection: %s", self.config.url, reason)
            return
        self._generation += 1
        if self._generation > 1:
            self.status.reconnects += 1
            record_stream_reconnect()
        self.status.connected = True
        self._connected.set()
        log.info("connected to MQTT broker %s (session present: %s)", self.config.url,
                 getattr(flags, "session_present", None))
        filters = [m.subscription for m in self.config.mappings]
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in dict.fromkeys(filters)])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any,
                      _p: Any) -> None:
        filters = list(dict.fromkeys(m.subscription for m in self.config.mappings))
        granted = [f for f, r in zip(filters, reasons, strict=False) if not r.is_failure]
        self.status.subscriptions = granted
        self._subscribed.set()
        if len(granted) < len(filters):
            self.status.last_error = "the broker refused some subscriptions"
            log.warning("MQTT subscriptions refused: %s", sorted(set(filters) - set(granted)))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any,
                       _p: Any) -> None:
        self.status.connected = False
        self._connected.clear()
        self._subscribed.clear()
        if not self._stopping.is_set():
            self.status.last_error = f"disconnected from the broker: {reason}"
            log.warning("MQTT broker %s disconnected (%s); reconnecting", self.config.url,
                        reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        self._queue.put(Message(msg.topic, bytes(msg.payload), now, msg.mid, self._generation,
                                msg.qos))
        self.status.received_one(now)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._batcher = threading.Thread(target=self._run, name="aihub-mqtt-batches",
                                         daemon=True)
        self._batcher.start()
        self._client.connect_async(self.config.host, self.config.port,
                                   keepalive=self.config.keepalive, clean_start=False,
                                   properties=self._connect_properties())
        self._client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and acknowledge what was received, then disconnect (the session stays
        on the broker for ``session_expiry``)."""
        self._stopping.set()
        if self._batcher is not None:
            self._batcher.join(timeout=timeout)
            self._batcher = None
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
        self.status.connected = False

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Whether the broker confirmed the subscriptions of the current connection."""
        return self._subscribed.wait(timeout)

    def ping(self) -> None:
        if not self._connected.is_set():
            raise BackendUnavailable("mqtt", f"not connected to {self.config.url}")

    # -- batches --------------------------------------------------------------------------
    def _collect(self) -> list[Message]:
        """The next micro-batch: until ``batch_ms`` after its first message arrived or about
        ``batch_rows`` readings (``{`` counted in the payloads); empty when stopping."""
        while True:
            try:
                first = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if self._stopping.is_set():
                    return []
        batch = [first]
        rows = max(1, first.payload.count(b"{"))
        # From the first message's arrival: one that waited in the queue while the last
        # batch committed is not kept waiting a whole window more.
        deadline = first.received_at + self.config.batch_ms / 1000
        while rows < self.config.batch_rows:
            left = deadline - time.time()
            try:
                msg = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            batch.append(msg)
            rows += max(1, msg.payload.count(b"{"))
        return batch

    def _run(self) -> None:
        while True:
            batch = self._collect()
            if not batch:
                return
            result = self._commit(batch)
            if result is None:  # stopping with the database away: the broker keeps them
                self.status.dropped_pending()
                return
            current = self._generation
            for m in batch:
                if m.qos and m.generation == current:
                    self._client.ack(m.mid, m.qos)
            try:
                oldest: float | None = self._queue.queue[0].received_at
            except IndexError:
                oldest = None
            self.status.committed_batch(len(batch), result, oldest, self._queue.qsize())

    def _commit(self, batch: list[Message]) -> int | None:
        """Dead letters written for ``batch`` once committed; None if it could not be
        stored before a stop. Retries while the database is unreachable."""
        delay = 0.1
        while True:
            try:
                return self.writer.write(batch).dead_letters
            except BackendUnavailable as exc:
                self.status.last_error = f"could not store a batch: {exc.public_message}"
                log.warning("stream batch not stored (%s); retrying in %.1fs", exc.message,
                            delay)
            except Exception as exc:  # a single message the writer could not handle
                self.status.last_error = f"could not store a batch: {type(exc).__name__}"
                log.exception("stream batch not stored; retrying")
            if self._stopping.wait(delay):
                return None
            delay = min(_RETRY_MAX, delay * 2)
