"""MQTT publisher: paho-mqtt v2, every message through the durable offline queue.

Flow of one message::

    publish() ── append to OfflineQueue (SQLite) ── wake sender thread
    sender thread ── peek rows after the last one sent ── client.publish(QoS 1)
    paho network thread ── PUBACK ── on_publish(mid) ── sender deletes the row

Delivery guarantee. A row leaves the queue only after the broker acknowledged it
(PUBACK for QoS 1, PUBCOMP for QoS 2). Rows are sent in queue order, and at most
``window`` of them are ever sent and not yet deleted: acknowledged rows are deleted in
batches of a quarter window, at least one (or whatever was acknowledged once nothing is
left in flight), and the messages in flight are capped at ``window`` - batch + 1. The cap is
fixed, not shrunk by the rows waiting for deletion: every acknowledgement lets the next
message go at once, so the stream never pauses on a batch (a pause makes the broker's
Nagle-delayed PUBACKs wait for our delayed TCP ACK, 40 ms each). Within one process,
paho keeps unacknowledged messages across reconnects and re-sends them first (with DUP
set) on the new connection, before any newer row is handed to it; across processes,
the next start sends whatever is still in the queue. So a broker outage or an agent
restart loses nothing and keeps the order, and a message reaches subscribers once,
with two exceptions inherent to QoS 1 (MQTT 3.1.1 section 4.3.2): if the broker (or
the network) fails after the broker received a message but before its PUBACK reached
us, or the agent dies after the PUBACK but before the row's deletion (at most
``window`` messages), that message is sent again and subscribers see it
twice. Use the ``ts`` of a payload to deduplicate if that matters.

Status. The client id is stable (``dlms-edge-<agent>``: a second agent with the same id
takes the session over), the Last Will is ``<prefix>/<agent>/status`` = ``offline``
(retained, QoS 1), and each successful connection publishes ``online`` (retained).
:meth:`Publisher.close` publishes ``offline`` itself, because a clean DISCONNECT
discards the Will (MQTT 3.1.1 section 3.14.4).

Reconnection uses paho's exponential back-off between ``reconnect_min`` and
``reconnect_max`` seconds.
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edge_agent.dlms.errors import ConfigError
from edge_agent.mqtt.payloads import OFFLINE, ONLINE
from edge_agent.mqtt.queue import OfflineQueue
from edge_agent.mqtt.settings import MqttSettings, TlsSettings
from edge_agent.mqtt.topics import Topics, check_id

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

_PROTOCOLS = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}
DEFAULT_WINDOW = 20  # messages handed to paho and not yet acknowledged


def client_id_for(agent: str) -> str:
    return f"dlms-edge-{check_id(agent, 'agent id')}"


def tls_context(tls: TlsSettings) -> ssl.SSLContext:
    """A client context: chain always verified; host name too unless ``insecure``."""
    import ssl  # only with TLS configured (paho-mqtt 2.1 imports it anyway, later ones may not)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if tls.ca is not None:
            context.load_verify_locations(cafile=str(tls.ca))
        else:
            context.load_default_certs()
        if tls.cert is not None:
            context.load_cert_chain(str(tls.cert), None if tls.key is None else str(tls.key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"mqtt.tls: cannot load the CA or client certificate/key: {exc}; "
                          "check the paths and that the files are PEM") from None
    context.check_hostname = not tls.insecure
    return context


def authenticate(client: mqtt.Client, settings: MqttSettings) -> None:
    """TLS and user/password of ``settings`` on a paho client (before it connects)."""
    if settings.tls is not None:
        client.tls_set_context(tls_context(settings.tls))
    if settings.username is not None:
        password = settings.password_secret()
        client.username_pw_set(
            settings.username, None if password is None else password.reveal().decode())


class Publisher:
    """Publishes through ``queue`` to the broker of ``settings``; start with :meth:`start`.

    ``publish`` never blocks on the network and is safe from any thread.
    ``on_connection_change(connected: bool)`` is called from paho's network thread.
    """

    def __init__(self, settings: MqttSettings, agent: str, queue: OfflineQueue, *,
                 window: int = DEFAULT_WINDOW,
                 on_connection_change: Callable[[bool], None] | None = None) -> None:
        if settings.protocol not in _PROTOCOLS:
            raise ConfigError(f"mqtt.protocol must be one of {sorted(_PROTOCOLS)}, "
                              f"got {settings.protocol!r}")
        self.settings = settings
        self.topics = Topics(settings.prefix, agent)
        self.queue = queue
        self.window = window
        self._on_connection_change = on_connection_change
        self._connected = False
        self._closing = False
        self._last_connect_error: str | None = None
        self._acks: stdlib_queue.SimpleQueue[tuple[int, bool]] = stdlib_queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> queue row id; sender thread only
        self._acknowledged: list[int] = []  # row ids acknowledged, not deleted yet; same
        self._delete_batch = max(1, window // 4)
        self._in_flight_cap = window - self._delete_batch + 1  # + batch - 1 waiting <= window
        self._last_sent = 0
        self._sender: threading.Thread | None = None
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}
        self.client_id = settings.client_id or client_id_for(agent)
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        protocol = _PROTOCOLS[s.protocol]
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id,
            protocol=protocol, clean_session=True if protocol != mqtt.MQTTv5 else None)
        client.will_set(self.topics.status(), OFFLINE, qos=1, retain=True)
        authenticate(client, s)
        client.reconnect_delay_set(s.reconnect_min, s.reconnect_max)  # type: ignore[arg-type]
        client.max_inflight_messages_set(self.window)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        client.on_message = self._handle_message
        return client

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Connect in the background (retrying with back-off) and start sending."""
        s = self.settings
        extra = {"clean_start": True} if s.protocol == "5" else {}
        self._client.connect_async(s.host, s.port, s.keepalive, **extra)
        self._client.loop_start()
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender",
                                        daemon=True)
        self._sender.start()
        return self

    def close(self, timeout: float = 5.0) -> bool:
        """Flush, publish ``offline``, disconnect. True when nothing was left unsent.

        Waits at most ``timeout`` seconds for the queue to drain (connecting first if
        needed); what is not acknowledged by then stays in the queue for the next start.
        """
        deadline = time.monotonic() + timeout
        flushed = self.wait_idle(timeout)  # includes (re)connecting when the broker is back
        self._closing = True
        if self._connected:
            info = self._client.publish(self.topics.status(), OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # connection lost meanwhile: the broker sends the Will instead
        self._client.disconnect()
        self._client.loop_stop()
        self._stop.set()
        self._wake.set()
        if self._sender is not None:
            self._sender.join(timeout=2.0)
        if self._sender is None or not self._sender.is_alive():  # else it still owns them
            self._process_acks(flush=True)
        self.queue.close()
        return flushed

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None:
        """Hand messages matching ``topic_filter`` to ``handler(topic, payload)``, from
        paho's network thread; subscribed again after every reconnect, so retained
        messages arrive again too. Call before :meth:`start`."""
        self._subscriptions[topic_filter] = handler

    # --- producers ---------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = True) -> int:
        """Queue one message (retained by default, as most of the contract); its row id."""
        _check_qos(qos)
        row = self.queue.append(topic, payload, qos, retain)
        self._wake.set()
        return row

    def publish_many(self, messages: Iterable[tuple[str, bytes, int, bool]],
                     marks: Mapping[str, str] | None = None) -> list[int]:
        """Queue ``(topic, payload, qos, retain)`` tuples in one transaction, with the
        queue's ``marks`` (:meth:`OfflineQueue.append_many`)."""
        batch = list(messages)
        for message in batch:
            _check_qos(message[2])
        rows = self.queue.append_many(batch, marks)
        self._wake.set()
        return rows

    # --- health ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queue_depth(self) -> int:
        """Messages not yet acknowledged by the broker (queued and in flight)."""
        return len(self.queue)

    @property
    def last_connect_error(self) -> str | None:
        return self._last_connect_error

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued message is acknowledged; False on time-out."""
        deadline = time.monotonic() + timeout
        while len(self.queue) or self._inflight:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # --- paho callbacks (network thread) -----------------------------------------------

    def _handle_connect(self, client: mqtt.Client, userdata: object, flags: object,
                        reason: mqtt.ReasonCode, properties: object) -> None:
        if reason.is_failure:
            text = f"broker {self.settings.host}:{self.settings.port} refused the " \
                   f"connection: {reason}"
            if text != self._last_connect_error:
                log.error("%s; check mqtt.username/password and the broker's ACL", text)
            self._last_connect_error = text
            return
        self._last_connect_error = None
        client.publish(self.topics.status(), ONLINE, qos=1, retain=True)
        for topic_filter in self._subscriptions:
            client.subscribe(topic_filter, qos=1)
        self._connected = True
        log.info("connected to MQTT broker %s:%d as %s (%d queued)", self.settings.host,
                 self.settings.port, self.client_id, len(self.queue))
        self._wake.set()
        if self._on_connection_change is not None:
            self._on_connection_change(True)

    def _handle_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                           reason: mqtt.ReasonCode, properties: object) -> None:
        was_connected, self._connected = self._connected, False
        if not was_connected:
            return
        if not self._closing:
            log.warning("lost the MQTT broker %s:%d (%s); queueing until it is back",
                        self.settings.host, self.settings.port, reason)
        if self._on_connection_change is not None:
            self._on_connection_change(False)

    def _handle_message(self, client: mqtt.Client, userdata: object,
                        message: mqtt.MQTTMessage) -> None:
        for topic_filter, handler in self._subscriptions.items():
            if mqtt.topic_matches_sub(topic_filter, message.topic):
                try:
                    handler(message.topic, message.payload)
                except Exception:
                    log.exception("handling a message on %s failed", message.topic)

    def _handle_publish(self, client: mqtt.Client, userdata: object, mid: int,
                        reason: mqtt.ReasonCode, properties: object) -> None:
        self._acks.put((mid, reason.is_failure))
        self._wake.set()

    # --- sender thread -----------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self._process_acks()
                if self._connected and not self._closing:
                    self._send_more()
            except Exception:  # keep sending after a transient database error
                log.exception("MQTT sender: unexpected error; retrying in 1 s")
                self._stop.wait(1.0)

    def _process_acks(self, flush: bool = False) -> None:
        done = self._acknowledged
        while True:
            try:
                mid, rejected = self._acks.get_nowait()
            except stdlib_queue.Empty:
                break
            row = self._inflight.pop(mid, None)
            if row is None:
                continue  # the status message, published directly
            if rejected:
                # MQTT 5 PUBACK reason >= 0x80 (e.g. not authorized): sending it again
                # gets the same answer, and keeping it would block everything behind it.
                log.warning("broker rejected queued message %d; dropped", row)
            done.append(row)
        # One transaction per batch (module docstring); once nothing is in flight, the rest.
        if done and (flush or not self._inflight or len(done) >= self._delete_batch):
            self.queue.delete(done)
            done.clear()

    def _send_more(self) -> None:
        free = self._in_flight_cap - len(self._inflight)
        if free <= 0:
            return
        for message in self.queue.peek(free, after=self._last_sent):
            try:
                info = self._client.publish(message.topic, message.payload, message.qos,
                                            message.retain)
            except ValueError as exc:  # a topic paho refuses: never deliverable
                log.error("dropping queued message %d: %s", message.id, exc)
                self.queue.delete([message.id])
                self._last_sent = message.id
                continue
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:  # paho did not keep it
                log.warning("paho refused queued message %d (%s); retrying",
                            message.id, mqtt.error_string(info.rc))
                return
            # Any other result (MQTT_ERR_NO_CONN included): paho holds the message and
            # sends it once connected, so it counts as in flight and is not sent again.
            self._inflight[info.mid] = message.id
            self._last_sent = message.id


def _check_qos(qos: int) -> None:
    if qos not in (1, 2):
        raise ValueError(f"QoS {qos}: queued messages need QoS 1 or 2, because only an "
                         "acknowledgement tells the queue a message was delivered")
