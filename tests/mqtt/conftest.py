"""MQTT test helpers: a separate paho subscriber that records what the broker delivers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

WAIT = 10.0  # upper bound of every wait in these tests


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    dup: bool = False


class Subscriber:
    """Subscribes to ``topics`` (QoS 1) and records every message, in arrival order.

    ``session`` keeps a persistent session (clean_session False, stable client id):
    the broker queues messages for it while it is disconnected. It subscribes only when
    the broker has no session for it, so a reconnect does not replay retained messages.
    """

    def __init__(self, host: str, port: int, topics: list[str], *,
                 client_id: str | None = None, session: bool = False,
                 tls: Callable[[mqtt.Client], None] | None = None) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or "",
                                  clean_session=not session)
        if tls is not None:
            tls(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.connect(host, port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(WAIT), "subscriber did not get SUBACK"

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if not flags.session_present:
            client.subscribe([(topic, 1) for topic in self._topics])
        else:
            self._subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        with self._cond:
            self.messages.append(Received(message.topic, message.payload, message.retain,
                                          message.qos, bool(message.dup)))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool],
                 timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.messages), timeout)

    def wait_count(self, topic: str, count: int, timeout: float = WAIT) -> list[Received]:
        self.wait_for(lambda ms: sum(m.topic == topic for m in ms) >= count, timeout)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscribe(mosquitto) -> Iterator[Callable[..., Subscriber]]:
    """``subscribe(["dlms/#"], broker=None, **options) -> Subscriber`` on the broker."""
    made: list[Subscriber] = []

    def make(topics: list[str], broker=None, **options) -> Subscriber:
        broker = broker or mosquitto
        subscriber = Subscriber(broker.host, broker.port, topics, **options)
        made.append(subscriber)
        return subscriber

    yield make
    for subscriber in made:
        subscriber.close()

