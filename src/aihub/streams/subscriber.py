"""The MQTT subscriber: paho-mqtt 2 on MQTT 5, QoS 1, a persistent session, and an
acknowledgement (PUBACK) for each message only after the micro-batch holding it committed.

Threads: paho's network loop (``loop_start``; ``StreamClient``'s receive path) puts the
messages of each socket read into an inbox and reconnects with back-off when the broker
goes away; one batch thread takes messages from the inbox, commits them in micro-batches
(``StreamWriter``: at most ``batch_ms`` after the first message of the batch, or about
``batch_rows`` readings) and then acknowledges them in one write, in the order they
arrived (MQTT's rule).

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
import ssl
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from aihub.errors import BackendUnavailable
from aihub.metrics import record_stream_reconnect
from aihub.streams.client import Received, StreamClient
from aihub.streams.config import StreamConfig
from aihub.streams.status import StreamStatus
from aihub.streams.writer import Message, StreamWriter

__all__ = ["MqttStream"]

log = logging.getLogger("aihub.streams")

_RETRY_MAX = 5.0  # seconds between attempts to commit while the database is away
_POLL = 0.001  # seconds the batch thread sleeps while its batch waits for more
_IDLE_POLL = 0.002  # ... and while it has no batch


class MqttStream:
    """Start with ``start()``, stop with ``stop()``; ``ping()`` is the readiness check."""

    backend_name = "mqtt"
    critical = False  # a broker away degrades the API (/ready 200, "degraded")

    def __init__(self, config: StreamConfig, writer: StreamWriter, *,
                 dead_letters_before: int = 0, retiring: bool = False) -> None:
        self.config = config
        self.writer = writer
        self.status = StreamStatus(broker=config.url, client_id=config.worker_client_id,
                                   dead_letters=dead_letters_before)
        # A session left by an earlier run's extra worker: drained, then deleted.
        self._retiring = retiring
        self._session_present: bool | None = None
        self._retirer: threading.Thread | None = None
        # Messages received, oldest first: appended by the network thread, taken by the
        # batch thread (a deque's append and popleft are atomic; no lock per message).
        self._inbox: deque[Message] = deque()
        self._batch: list[Message] = []  # being committed
        self.status.pending = self._pending
        self._inbox_cap = 4 * config.receive_maximum
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._batcher: threading.Thread | None = None
        self._client = self._make_client()

    # -- the client -----------------------------------------------------------------------
    def _make_client(self) -> StreamClient:
        cfg = self.config
        client = StreamClient(CallbackAPIVersion.VERSION2, client_id=cfg.worker_client_id,
                              protocol=mqtt.MQTTv5, on_messages=self._on_messages)
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
        self._session_present = bool(getattr(flags, "session_present", False))
        log.info("connected to MQTT broker %s as %s (session present: %s)", self.config.url,
                 self.config.worker_client_id, self._session_present)
        wanted, stale = self.config.subscriptions()
        if self._retiring:  # nothing new for this session; what it holds still arrives
            if self._session_present:
                client.unsubscribe(wanted + stale)
            self._connected.set()
            return
        self._connected.set()
        # Subscribed before the other form is dropped: a message in between may come twice
        # (harmless), never not at all.
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in wanted])
        if self._session_present and stale:
            client.unsubscribe(stale)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any,
                      _p: Any) -> None:
        filters = self.config.subscriptions()[0]
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

    def _on_messages(self, received: list[Received]) -> None:
        """The PUBLISH packets of one socket read, in order (the network thread)."""
        now, generation, inbox = time.time(), self._generation, self._inbox
        messages = [Message(topic, payload, now, mid, generation, qos)
                    for topic, payload, mid, qos in received]
        if len(inbox) + len(messages) > self._inbox_cap and any(m.qos == 0 for m in messages):
            # QoS 0 escapes the receive maximum and promises no delivery: beyond the cap
            # it is dropped rather than growing memory without bound.
            kept, held = [], len(inbox)
            for m in messages:
                if m.qos or held < self._inbox_cap:
                    kept.append(m)
                    held += 1
            self.status.dropped_qos0 += len(messages) - len(kept)
            messages = kept
        inbox.extend(messages)
        self.status.received += len(messages)
        self.status.last_message_at = now

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
        if self.config.worker == 0 and not self._retiring:
            self._retirer = threading.Thread(target=self._retire_extra_sessions,
                                             name="aihub-mqtt-retire", daemon=True)
            self._retirer.start()

    def stop(self, timeout: float = 10.0, *, end_session: bool = False) -> None:
        """Commit and acknowledge what was received, then disconnect (the session stays
        on the broker for ``session_expiry``, or ends with ``end_session``)."""
        self._stopping.set()
        if self._batcher is not None:
            self._batcher.join(timeout=timeout)
            self._batcher = None
        if self._retirer is not None:
            self._retirer.join(timeout=timeout)
            self._retirer = None
        try:
            props = None
            if end_session:
                props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = 0
            self._client.disconnect(properties=props)
        finally:
            self._client.loop_stop()
        self.status.connected = False

    # -- sessions of workers an earlier run had more of -----------------------------------
    def _retire_extra_sessions(self) -> None:
        """Worker 0's duty: an earlier run with more processes left sessions
        (``<client id>-<k>``, k >= processes) whose shared subscriptions still take their
        share of new messages, queued for nobody. Each is drained (its messages stored and
        acknowledged), unsubscribed and ended, in turn until one has no session. Best
        effort: with the broker away it is left for the next start."""
        while not self._connected.wait(0.2):
            if self._stopping.is_set():
                return
        k = self.config.processes
        while not self._stopping.is_set():
            old = MqttStream(replace(self.config, worker=k, processes=k + 1), self.writer,
                             retiring=True)
            try:
                if not old.drain(self._stopping):
                    return
            except Exception:  # never the stream's concern: the next start tries again
                log.exception("could not retire the MQTT session of worker %d", k)
                return
            log.info("retired the MQTT session of an earlier worker %d (%d messages stored)",
                     k, old.status.committed)
            k += 1

    def drain(self, stopping: threading.Event, *, idle: float = 1.0,
              limit: float = 300.0) -> bool:
        """(A retiring session.) Connect, store what the session still holds until nothing
        more arrives for ``idle`` seconds, then end the session. Whether it existed."""
        self.start()
        drained = False
        try:
            if not self._connected.wait(10) or self._session_present is None:
                return False
            deadline = time.monotonic() + limit
            seen = -1
            while self._session_present and not drained and time.monotonic() < deadline:
                seen, was = self.status.received, seen
                drained = seen == was and not self._pending()[0]
                if not drained and stopping.wait(idle):
                    break
            return bool(self._session_present) and drained
        finally:
            # Ended only once empty (or when it was just created by this connection); a
            # session still holding messages is kept for the next start to drain.
            self.stop(end_session=drained or self._session_present is False)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Whether the broker confirmed the subscriptions of the current connection."""
        return self._subscribed.wait(timeout)

    def ping(self) -> None:
        if not self._connected.is_set():
            raise BackendUnavailable("mqtt", f"not connected to {self.config.url}")

    # -- batches --------------------------------------------------------------------------
    def _pending(self) -> tuple[int, float | None]:
        """Messages received and not yet acknowledged, and when the oldest arrived."""
        batch, inbox = self._batch, self._inbox
        try:
            oldest = batch[0].received_at if batch else inbox[0].received_at
        except IndexError:
            oldest = None
        return len(batch) + len(inbox), oldest

    def _collect(self) -> list[Message]:
        """The next micro-batch, closed when it holds about ``batch_rows`` readings (``{``
        counted in the payloads), when ``batch_ms`` passed since its first message
        arrived, or, once it is ``linger_ms`` old, as soon as nothing more is waiting (a
        group commit: at a low rate a reading is stored about ``linger_ms`` after it
        arrived, at a high one the batches grow by themselves). Empty when stopping."""
        inbox = self._inbox
        while not inbox:
            if self._stopping.is_set():
                return []
            time.sleep(_IDLE_POLL)
        first = inbox.popleft()
        batch = self._batch = [first]
        rows = first.payload.count(b"{") or 1
        # From the first message's arrival: one that waited in the inbox while the last
        # batch committed is not kept waiting a whole window more.
        deadline = first.received_at + self.config.batch_ms / 1000
        linger = first.received_at + min(self.config.linger_ms, self.config.batch_ms) / 1000
        limit = self.config.batch_rows
        while rows < limit:
            try:
                msg = inbox.popleft()
            except IndexError:
                now = time.time()
                if now >= linger or now >= deadline:
                    break
                time.sleep(_POLL)
                continue
            batch.append(msg)
            rows += msg.payload.count(b"{") or 1
        return batch

    def _run(self) -> None:
        while True:
            batch = self._collect()
            if not batch:
                return
            result = self._commit(batch)
            if result is None:  # stopping with the database away: the broker keeps them
                return
            current = self._generation
            self._client.ack_many([m.mid for m in batch if m.qos and m.generation == current])
            self._batch = []
            self.status.committed_batch(len(batch), result)

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
