"""A fleet on one broker: several agents publish, consumers share the work through MQTT
shared subscriptions (``$share/<group>/<filter>``, MQTT 5 4.8.2). Each message of the
fleet reaches exactly one consumer of a group (compared with what a plain subscriber saw),
and every agent's messages arrive; the agents need nothing but unique ids."""

from __future__ import annotations

import threading
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from daemon_harness import WAIT, Subscriber, make_agent, tcp_meter, wait_until, write_config
from paho.mqtt.enums import CallbackAPIVersion

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(90)]

POWER = "1.0.1.7.0.255"
AGENTS = ("pi-north", "pi-south", "pi-east")
GROUP = "$share/ingest/dlms/+/+/state"


class SharedConsumer:
    """One member of the shared-subscription group: records the states it was given."""

    def __init__(self, broker, name: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name,
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(GROUP, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(WAIT)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.received.append((message.topic, message.payload))

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_three_agents_and_a_shared_subscription_group(tmp_path, mosquitto) -> None:
    meters, agents = [], []
    consumers = [SharedConsumer(mosquitto, f"ingest-{n}") for n in range(2)]
    everything = Subscriber(mosquitto.host, mosquitto.port, ["dlms/+/+/state"])
    try:
        for agent_id in AGENTS:
            server, _, port = tcp_meter(seed=len(meters) + 1)
            meters.append(server)
            home = tmp_path / agent_id
            home.mkdir()
            config = write_config(home, mosquitto, f"""\
                - id: main
                  transport: {{tcp: "127.0.0.1:{port}"}}
                  poll: [{{name: fast, interval: 1, objects: [{POWER}]}}]
                """, agent=agent_id)
            agents.append(make_agent(config).start())

        def per_agent() -> Counter[str]:
            return Counter(topic.split("/")[1] for c in consumers for topic, _ in c.snapshot())

        assert wait_until(lambda: all(per_agent()[a] >= 4 for a in AGENTS), 3 * WAIT), \
            per_agent()
    finally:
        for agent in agents:
            agent.stop()
        for server in meters:
            server.stop()
    def published() -> Counter[tuple[str, bytes]]:
        return Counter((m.topic, m.payload) for m in everything.messages if not m.retain)

    def delivered() -> Counter[tuple[str, bytes]]:
        return Counter(item for consumer in consumers for item in consumer.snapshot())

    # Exactly once per group: each state the fleet published went to one member ...
    assert wait_until(lambda: delivered() == published(), WAIT), (delivered(), published())
    assert sum(published().values()) >= 4 * len(AGENTS)
    # ... the broker spread them over the group, and every agent got through.
    assert all(consumer.snapshot() for consumer in consumers)
    assert {topic.split("/")[1] for topic, _ in published()} == set(AGENTS)
    for consumer in consumers:
        consumer.close()
    everything.close()
