"""Publisher against a real Mosquitto, checked by a separate paho subscriber."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.mqtt.payloads import (
    MeterInfo,
    ObjectInfo,
    health_payload,
    profile_row_payload,
    state_payload,
    status_payload,
    value_payload,
)
from edge_agent.mqtt.publisher import Publisher
from edge_agent.mqtt.queue import OfflineQueue
from edge_agent.mqtt.settings import MqttSettings

pytestmark = pytest.mark.mosquitto

TS = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
OBIS = "1.0.1.8.0.255"
HERE = Path(__file__).parent
WAIT = 10.0


def settings_for(broker, **extra) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=broker.port, reconnect_min=0.1,
                        reconnect_max=0.5, keepalive=5, **extra)


@pytest.fixture
def publisher_factory(tmp_path: Path):
    made: list[Publisher] = []

    def make(broker, agent: str = "pi", state: Path | None = None, **extra) -> Publisher:
        queue = OfflineQueue.in_state_dir(state or tmp_path / f"state-{len(made)}")
        publisher = Publisher(settings_for(broker, **extra), agent, queue).start()
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        if publisher._sender is not None and publisher._sender.is_alive():
            publisher.close(timeout=1.0)


def wait_until(condition, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def seqs(messages) -> list[int]:
    return [json.loads(m.payload)["value"] for m in messages]


INFO = MeterInfo("pi", "m1", "1SAG67929081", "Sagemcom", "T-210D", "1.2.3",
                 bytes.fromhex("5341477df129c270"), "0.1.0",
                 (ObjectInfo(OBIS, "Active energy import (+A)", 3, "Wh", "energy",
                             "total_increasing"),))


def test_contract_topics_payloads_retain_and_qos(mosquitto, subscribe, publisher_factory):
    live = subscribe(["dlms/#"])
    publisher = publisher_factory(mosquitto)
    t = publisher.topics
    expected = {
        t.info("m1"): (INFO.encode(), True),
        t.availability("m1"): (status_payload(True), True),
        t.health("m1"): (health_payload(None, "reading", TS), True),
        t.value("m1", OBIS): (value_payload(1.5, "kWh", TS, OBIS, "A+"), True),
        t.state("m1"): (state_payload(TS, {OBIS: (1.5, "kWh")}), True),
        t.profile("m1", "1.0.99.1.0.255"): (profile_row_payload(TS, {OBIS: 1.5},
                                                                {OBIS: "kWh"}, 0), False),
    }
    publisher.publish_many((topic, payload, 1, retain)
                           for topic, (payload, retain) in expected.items())
    assert publisher.wait_idle(WAIT)
    assert live.wait_for(lambda ms: {m.topic for m in ms} >= set(expected) | {t.status()})
    assert live.on(t.status())[0].payload == b"online"
    for topic, (payload, _) in expected.items():
        (message,) = live.on(topic)
        assert message.payload == payload and message.qos == 1
    # A late subscriber gets exactly the retained part of the contract.
    late = subscribe(["dlms/#"])
    retained = {t.status()} | {topic for topic, (_, keep) in expected.items() if keep}
    assert late.wait_for(lambda ms: {m.topic for m in ms} >= retained)
    time.sleep(0.3)
    assert sorted(m.topic for m in late.messages) == sorted(retained)
    assert all(m.retain for m in late.messages)


def test_retained_info_reaches_late_subscriber_exactly_once(mosquitto, subscribe,
                                                            publisher_factory):
    publisher = publisher_factory(mosquitto)
    publisher.publish(publisher.topics.info("m1"), INFO.encode())
    assert publisher.wait_idle(WAIT)
    late = subscribe([publisher.topics.info("m1")])
    assert late.wait_count(publisher.topics.info("m1"), 1)
    time.sleep(0.5)
    (message,) = late.messages
    assert message.retain and MeterInfo.decode(message.payload) == INFO


def run_process(broker, state: Path, first: int, count: int, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "publisher_process.py"), str(broker.port), str(state),
         str(first), str(count), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])})


def test_last_will_on_sigkill(mosquitto, subscribe, tmp_path):
    status = "dlms/proc/status"
    watcher = subscribe([status])
    process = run_process(mosquitto, tmp_path, 0, 1, "hang")
    try:
        assert process.stdout.readline().strip() == "queued"
        assert process.stdout.readline().strip() == "ready"
        assert watcher.wait_for(lambda ms: [m.payload for m in ms] == [b"online"])
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=WAIT)
    finally:
        process.kill()
    assert watcher.wait_for(lambda ms: [m.payload for m in ms] == [b"online", b"offline"])
    (late,) = subscribe([status]).wait_count(status, 1)
    assert late.payload == b"offline" and late.retain


def test_close_flushes_then_publishes_offline(mosquitto, subscribe, publisher_factory):
    watcher = subscribe(["dlms/#"])
    publisher = publisher_factory(mosquitto)
    topic = publisher.topics.value("m1", OBIS)
    for seq in range(50):
        publisher.publish(topic, value_payload(seq, "Wh", TS, OBIS, None))
    assert publisher.close(timeout=WAIT) is True
    assert watcher.wait_for(lambda ms: ms and ms[-1].payload == b"offline")
    assert seqs(watcher.on(topic)) == list(range(50))
    assert [m.payload for m in watcher.on("dlms/pi/status")] == [b"online", b"offline"]


def test_broker_restart_loses_nothing_duplicates_nothing(mosquitto_factory, subscribe,
                                                         publisher_factory):
    # Persistent broker and subscriber session: the broker keeps the subscriber's
    # messages across its own restart, as a production subscriber (recorder) would.
    broker = mosquitto_factory(persistence=True)
    topic = "dlms/pi/m1/" + OBIS
    recorder = subscribe([topic], broker=broker, client_id="recorder", session=True)
    publisher = publisher_factory(broker)
    total = 300
    produced = threading.Event()

    def produce() -> None:
        for seq in range(total):
            publisher.publish(topic, value_payload(seq, "Wh", TS, OBIS, None))
            time.sleep(0.01)
        produced.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert recorder.wait_for(lambda ms: len(ms) >= 30)
    broker.stop()
    assert wait_until(lambda: not publisher.connected)
    time.sleep(1.5)  # readings keep coming while the broker is down
    queued_while_down = publisher.queue_depth
    broker.start()
    producer.join(timeout=WAIT)
    assert produced.is_set()
    assert queued_while_down > 20
    assert publisher.wait_idle(WAIT)
    assert recorder.wait_for(lambda ms: len(ms) >= total, timeout=WAIT)
    time.sleep(0.3)
    # What the publisher sent: each reading once, in order. On restart Mosquitto also
    # re-sends to the recorder the messages it had not yet recorded as acknowledged by
    # it, flagged DUP (the broker-to-subscriber leg, MQTT 3.1.1 4.3.2); a publisher
    # re-send would arrive with DUP clear, because the broker does not propagate the
    # flag (3.3.1.1). So: DUP-clear messages are exactly the readings, in order, and
    # every DUP one repeats a reading already received.
    fresh = [m for m in recorder.messages if not m.dup]
    assert seqs(fresh) == list(range(total))
    seen: set[int] = set()
    for message in recorder.messages:
        (seq,) = seqs([message])
        assert not message.dup or seq in seen
        seen.add(seq)


class CuttableLink:
    """TCP relay publisher -> broker whose link can be cut like a failing network.

    ``blackhole()`` silently drops what the publisher sends (so its messages stay
    unacknowledged, in flight); ``cut()`` then closes the connection and refuses new
    ones until ``restore()``.
    """

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.dropping = False
        self.refusing = False
        self.closed = False
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            if self.refusing:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.broker_port), timeout=5)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upward: bool) -> None:
        try:
            while data := source.recv(65536):
                if not (upward and self.dropping):
                    sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            sock.close()

    def blackhole(self) -> None:
        self.dropping = True

    def cut(self) -> None:
        self.refusing = True
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    def restore(self) -> None:
        self.dropping = self.refusing = False

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


def test_in_flight_messages_resent_once_after_network_cut(mosquitto, subscribe,
                                                          publisher_factory):
    # Messages already handed to the connection but never acknowledged are re-sent by
    # paho after reconnecting; the queue must not send them a second time.
    link = CuttableLink(mosquitto.port)
    recorder = subscribe(["dlms/pi/m1/#"])
    publisher = publisher_factory(type("Relay", (), {"port": link.port})())
    topic = publisher.topics.value("m1", OBIS)
    try:
        assert wait_until(lambda: publisher.connected)
        publisher.publish(topic, value_payload(0, "Wh", TS, OBIS, None))
        assert publisher.wait_idle(WAIT)
        link.blackhole()
        for seq in range(1, 31):
            publisher.publish(topic, value_payload(seq, "Wh", TS, OBIS, None))
        assert wait_until(lambda: len(publisher._inflight) == publisher._in_flight_cap)
        link.cut()
        assert wait_until(lambda: not publisher.connected)
        for seq in range(31, 50):
            publisher.publish(topic, value_payload(seq, "Wh", TS, OBIS, None))
        time.sleep(0.3)
        link.restore()
        assert publisher.wait_idle(WAIT)
        assert recorder.wait_for(lambda ms: len(ms) >= 50)
        time.sleep(0.3)
        assert seqs(recorder.messages) == list(range(50))
    finally:
        link.close()


def test_queue_survives_publisher_restart(mosquitto, subscribe, tmp_path):
    mosquitto.stop()
    first = run_process(mosquitto, tmp_path, 0, 40, "exit")
    out, err = first.communicate(timeout=WAIT)
    assert out.split() == ["queued", "closed", "False"], err
    assert len(OfflineQueue.in_state_dir(tmp_path)) == 40
    mosquitto.start()
    recorder = subscribe(["dlms/proc/m1/#"])
    second = run_process(mosquitto, tmp_path, 40, 10, "close")
    out, err = second.communicate(timeout=WAIT + 5)
    assert out.split() == ["queued", "closed", "True"], err
    assert recorder.wait_for(lambda ms: len(ms) >= 50)
    time.sleep(0.3)
    assert seqs(recorder.messages) == list(range(50))
    assert len(OfflineQueue.in_state_dir(tmp_path)) == 0


def test_mqtt5(mosquitto, subscribe, publisher_factory):
    watcher = subscribe(["dlms/#"])
    publisher = publisher_factory(mosquitto, protocol="5")
    publisher.publish(publisher.topics.availability("m1"), b"online")
    assert publisher.wait_idle(WAIT)
    assert watcher.wait_count("dlms/pi/m1/availability", 1)


def test_qos0_refused(mosquitto, publisher_factory):
    publisher = publisher_factory(mosquitto)
    with pytest.raises(ValueError, match="QoS 1"):
        publisher.publish("dlms/pi/x", b"1", qos=0)
