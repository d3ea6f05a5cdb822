"""Meters that leave the config leave the broker too: `dlms-edge run` clears the retained
topics of meters it no longer has, and `dlms-edge forget` does it by hand. Real Mosquitto,
real simulated meters over TCP, the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from daemon_harness import WAIT, Subscriber, make_agent, tcp_meter, wait_until, write_config

from edge_agent.mqtt.forget import forget_messages, info_objects
from edge_agent.mqtt.topics import Topics

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(90)]

POWER = "1.0.1.7.0.255"
ENERGY = "1.0.1.8.0.255"


def retained(broker, topic_filter: str, settle: float = 1.0) -> dict[str, bytes]:
    """What the broker holds retained under ``topic_filter`` (a fresh subscriber's view)."""
    watcher = Subscriber(broker.host, broker.port, [topic_filter])
    time.sleep(settle)
    watcher.close()
    return {m.topic: m.payload for m in watcher.messages if m.retain}


def meters_yaml(*entries: tuple[str, int]) -> str:
    return "".join(f"""- id: {meter}
  transport: {{tcp: "127.0.0.1:{port}"}}
  poll: [{{name: fast, interval: 1, objects: [{POWER}, {ENERGY}]}}]
""" for meter, port in entries)


@pytest.fixture
def two_meters():
    first, _, port1 = tcp_meter(seed=1)
    second, _, port2 = tcp_meter(seed=2)
    yield port1, port2
    first.stop()
    second.stop()


def config_with_discovery(tmp_path, broker, *entries: tuple[str, int]):
    path = write_config(tmp_path, broker, meters_yaml(*entries))
    path.write_text(path.read_text().replace("keepalive: 5}", "keepalive: 5, discovery: true}"))
    return path


def test_run_clears_a_meter_removed_from_the_config(tmp_path, mosquitto, two_meters) -> None:
    port1, port2 = two_meters
    config = config_with_discovery(tmp_path, mosquitto, ("kept", port1), ("gone", port2))
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/+/state"])
    agent = make_agent(config).start()
    try:
        assert watcher.wait_count("dlms/pi/gone/state", 1, WAIT)
        assert watcher.wait_count("dlms/pi/kept/state", 1, WAIT)
    finally:
        agent.stop()
    before = retained(mosquitto, "#")
    assert {"dlms/pi/gone/info", f"dlms/pi/gone/{POWER}", "dlms/pi/gone/state",
            "homeassistant/sensor/dlms_edge_pi_gone/1_0_1_7_0_255/config"} <= set(before)

    config = config_with_discovery(tmp_path, mosquitto, ("kept", port1))
    agent = make_agent(config).start()
    try:
        assert wait_until(lambda: not any(
            topic.startswith(("dlms/pi/gone/", "homeassistant/sensor/dlms_edge_pi_gone/"))
            for topic in retained(mosquitto, "#", settle=0.5)), WAIT)
        after = retained(mosquitto, "#")
        assert {"dlms/pi/kept/info", f"dlms/pi/kept/{POWER}", "dlms/pi/kept/state",
                "homeassistant/sensor/dlms_edge_pi_kept/1_0_1_7_0_255/config"} <= set(after)
    finally:
        agent.stop()
    watcher.close()


def test_run_waits_for_an_unnamed_meter_before_clearing(tmp_path, mosquitto, two_meters
                                                         ) -> None:
    """A meter without id is named by its serial at its first association: until then a
    retained meter may be that one, so nothing is cleared; once named, the stale one is."""
    port1, _ = two_meters
    topics = Topics("dlms", "pi")
    stale_info = json.dumps({"objects": [{"obis": POWER}]}).encode()
    publisher = Subscriber(mosquitto.host, mosquitto.port, ["unused/#"])
    for topic, payload in ((topics.info("stale"), stale_info),
                           (topics.value("stale", POWER), b'{"value": 1}')):
        publisher.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(WAIT)
    publisher.close()
    config = write_config(tmp_path, mosquitto, f"""\
        - transport: {{tcp: "127.0.0.1:{port1}"}}
          poll: [{{name: fast, interval: 1, objects: [{POWER}]}}]
        """)
    agent = make_agent(config)
    (worker,) = [w for lane in agent.lanes for w in lane.targets]
    assert worker.meter_id is None
    agent.start()
    try:
        assert wait_until(lambda: worker.meter_id is not None, WAIT)
        assert wait_until(lambda: "dlms/pi/stale/info" not in retained(
            mosquitto, "dlms/pi/#", settle=0.5), WAIT)
        left = retained(mosquitto, "dlms/pi/#")
        assert not [t for t in left if t.startswith("dlms/pi/stale/")]
        assert f"dlms/pi/{worker.meter_id}/info" in left
    finally:
        agent.stop()


def forget(config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent", "forget", *args,
                           "--config", str(config)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_forget_verb_clears_every_retained_topic_of_a_meter(tmp_path, mosquitto) -> None:
    topics = Topics("dlms", "pi")
    info = json.dumps({"objects": [{"obis": POWER}, {"obis": ENERGY}]}).encode()
    publisher = Subscriber(mosquitto.host, mosquitto.port, ["unused/#"])
    for meter in ("old", "other"):
        for topic, payload in ((topics.info(meter), info),
                               (topics.value(meter, POWER), b"{}"),
                               (topics.value(meter, ENERGY), b"{}"),
                               (topics.state(meter), b"{}"), (topics.health(meter), b"{}"),
                               (topics.availability(meter), b"online")):
            publisher.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(WAIT)
    publisher.close()
    config = write_config(tmp_path, mosquitto, """\
        - id: current
          transport: {tcp: "127.0.0.1:1"}
        """)

    result = forget(config, "old", "--json")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)["meters"]
    assert report["meter"] == "old" and report["info_found"] and report["objects"] == 2
    assert report["cleared"][-1] == "dlms/pi/old/info"  # info last: a rerun finds the rest
    left = retained(mosquitto, "dlms/pi/#")
    assert not [topic for topic in left if topic.startswith("dlms/pi/old/")]
    assert len([topic for topic in left if topic.startswith("dlms/pi/other/")]) == 6

    refused = forget(config, "current")
    assert refused.returncode == 2
    assert "current still in" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr

    unknown = forget(config, "never-seen", "--wait", "0.5")
    assert unknown.returncode == 0, unknown.stderr
    assert "holds no info" in unknown.stdout


def test_forget_verb_says_when_the_broker_is_unreachable(tmp_path, free_port) -> None:
    class NoBroker:
        port = free_port()

    config = write_config(tmp_path, NoBroker, """\
        - id: current
          transport: {tcp: "127.0.0.1:1"}
        """)
    result = forget(config, "old")
    assert result.returncode == 3
    assert f"cannot reach the MQTT broker 127.0.0.1:{NoBroker.port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_forget_messages_follow_the_info_and_end_with_it() -> None:
    topics = Topics("dlms", "pi")
    info = json.dumps({"objects": [{"obis": POWER}, {"obis": POWER}, {"name": "x"}]}).encode()
    messages = forget_messages(topics, "m", info, "homeassistant")
    assert [m[0] for m in messages] == [
        f"dlms/pi/m/{POWER}", "homeassistant/sensor/dlms_edge_pi_m/1_0_1_7_0_255/config",
        "dlms/pi/m/state", "dlms/pi/m/clock", "dlms/pi/m/health", "dlms/pi/m/availability",
        "dlms/pi/m/info"]
    assert all(m[1:] == (b"", 1, True) for m in messages)
    assert info_objects(b"\xff not json") == [] and info_objects(b"[1]") == []
    assert [m[0] for m in forget_messages(topics, "m", b"garbage")][-1] == "dlms/pi/m/info"


@pytest.mark.parametrize(("topic", "meter"), [
    ("dlms/pi/m1/info", "m1"), ("dlms/pi/m1/state", None), ("dlms/other/m1/info", None),
    ("dlms/pi/info", None), ("dlms/pi/a/b/info", None), ("x/dlms/pi/m1/info", None)])
def test_meter_of_info_topic(topic: str, meter: str | None) -> None:
    assert Topics("dlms", "pi").meter_of(topic, "info") == meter
