"""The agent end to end over TCP: a simulated meter, a real Mosquitto, the MQTT contract.

What a subscriber sees: status online, the retained info with the association's
objects, per-OBIS values that change between polls, the state snapshot, health ok and
availability online; then, after stop, availability and status offline.
"""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime

import pytest
from daemon_harness import (
    WAIT,
    FrameLog,
    Subscriber,
    make_agent,
    payloads,
    tcp_meter,
    wait_until,
    write_config,
)

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys
from edge_agent.keystore import DEFAULT_CLIENT_SYSTEM_TITLE
from edge_agent.mqtt.payloads import MeterInfo
from edge_agent.simulator import meter_models
from edge_agent.simulator.push_telegrams import T210D_PUSHED, push_stream
from edge_agent.state.facts import FactStore
from edge_agent.transport.pty import PtyPair

POWER = "1.0.1.7.0.255"
ENERGY = "1.0.1.8.0.255"
CLOCK = "0.0.1.0.0.255"
PUSHED_AT = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


def value_objects_of(port: int, tmp_path) -> set[str]:
    """The register/data/clock objects of the public association, read independently."""
    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="independent", state_dir=tmp_path / "independent")
    with client:
        return {e.logical_name.dotted for e in client.object_list()
                if e.class_id in (1, 3, 4, 5, 8)}


@pytest.fixture
def meter():
    server, station, port = tcp_meter(seed=7)
    yield station, port
    server.stop()


def test_contract_topics_and_payloads(tmp_path, mosquitto, meter) -> None:
    station, port = meter
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll:
            - {{name: fast, interval: 1, objects: [{POWER}, {CLOCK}]}}
            - {{name: everything, interval: 60, objects: all}}
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    agent = make_agent(config).start()
    try:
        base = "dlms/pi/kitchen"
        assert watcher.wait_for(lambda ms: sum(m.topic == f"{base}/{CLOCK}" for m in ms) >= 3)
        assert [m.payload for m in watcher.on("dlms/pi/status")][:1] == [b"online"]
        # info: retained, QoS 1, lists the association view's value objects with metadata
        (info_message,) = watcher.on(f"{base}/info")
        assert info_message.qos == 1
        info = MeterInfo.decode(info_message.payload)
        assert (info.agent, info.meter) == ("pi", "kitchen")
        assert info.serial == station.model.serial and info.manufacturer == "dlms-edge simulator"  # FLAG id DLE
        assert info.firmware == "dlms-edge-sim 1.0"
        objects = {o.obis: o for o in info.objects}
        assert set(objects) == value_objects_of(port, tmp_path)
        assert {POWER, ENERGY, CLOCK, "1.0.32.7.0.255", "0.0.96.1.0.255"} <= set(objects)
        assert (objects[ENERGY].unit, objects[ENERGY].device_class,
                objects[ENERGY].state_class) == ("Wh", "energy", "total_increasing")
        assert (objects[POWER].unit, objects[POWER].device_class) == ("W", "power")
        assert objects[CLOCK].device_class == "timestamp"
        assert objects[ENERGY].name == "Active energy import (+A)"
        # per-OBIS values: contract keys, changing between polls
        clocks = payloads(watcher.messages, f"{base}/{CLOCK}")
        assert set(clocks[0]) == {"value", "unit", "ts", "obis", "name"}
        assert len({c["value"] for c in clocks}) == len(clocks), "the clock did not move"
        (energy,) = payloads(watcher.messages, f"{base}/{ENERGY}")  # 60 s group: once
        assert energy["unit"] == "Wh" and energy["obis"] == ENERGY
        assert isinstance(energy["value"], (int, float)) and energy["value"] > 0
        power = watcher.on(f"{base}/{POWER}")
        assert len(power) >= 3 and all(m.qos == 1 for m in power)
        # state: one snapshot per poll; the first holds every object
        states = payloads(watcher.messages, f"{base}/state")
        assert set(states[0]["values"]) == set(objects)
        assert set(states[-1]["values"]) == {POWER, CLOCK}
        assert states[-1]["values"][CLOCK]["value"] == clocks[-1]["value"]
        # health ok and availability online, published once (on change only)
        (health,) = payloads(watcher.messages, f"{base}/health")
        assert health["state"] == "ok" and health["code"] is None
        assert [m.payload for m in watcher.on(f"{base}/availability")] == [b"online"]
        # contract order of the first poll: info, health, availability, values, state
        first = [m.topic.removeprefix(base + "/") for m in watcher.messages
                 if m.topic.startswith(base)][:4]
        assert first[:3] == ["info", "health", "availability"]
        assert first[3].count(".") == 5  # then the per-OBIS values
    finally:
        flushed = agent.stop()
    assert flushed
    assert watcher.wait_for(lambda ms: ms[-1].topic == "dlms/pi/status")
    assert watcher.on(f"{base}/availability")[-1].payload == b"offline"
    assert watcher.messages[-1].payload == b"offline"
    watcher.close()


def test_late_subscriber_gets_retained_state(tmp_path, mosquitto, meter) -> None:
    _, port = meter
    config = write_config(tmp_path, mosquitto, f"""\
        - id: m1
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: [{{name: fast, interval: 1, objects: [{POWER}]}}]
        """)
    agent = make_agent(config).start()
    try:
        early = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/m1/state"])
        assert early.wait_count("dlms/pi/m1/state", 2)
        late = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/#"])
        assert late.wait_for(lambda ms: {m.topic for m in ms} >= {
            "dlms/pi/status", "dlms/pi/m1/info", "dlms/pi/m1/health",
            "dlms/pi/m1/availability", f"dlms/pi/m1/{POWER}", "dlms/pi/m1/state"})
        retained = [m for m in late.messages if m.retain]
        assert {m.topic for m in retained} >= {"dlms/pi/m1/info", f"dlms/pi/m1/{POWER}"}
        assert sum(m.topic == "dlms/pi/m1/info" for m in late.messages) == 1
        early.close()
        late.close()
    finally:
        agent.stop()


def test_home_assistant_discovery_when_enabled(tmp_path, mosquitto, meter) -> None:
    _, port = meter
    config = write_config(tmp_path, mosquitto, f"""\
        - id: m1
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: [{{name: e, interval: 60, objects: [{ENERGY}, {POWER}]}}]
        """)
    text = config.read_text().replace("keepalive: 5}", "keepalive: 5, discovery: true}")
    config.write_text(text)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["homeassistant/#"])
    agent = make_agent(config).start()
    try:
        assert watcher.wait_count("homeassistant/sensor/dlms_edge_pi_m1/1_0_1_8_0_255/config",
                                  1, WAIT)
        assert wait_until(lambda: len(watcher.messages) >= 2)
        energy = json.loads(watcher.on(
            "homeassistant/sensor/dlms_edge_pi_m1/1_0_1_8_0_255/config")[0].payload)
        assert energy["state_topic"] == f"dlms/pi/m1/{ENERGY}"
        assert energy["device_class"] == "energy" and energy["unit_of_measurement"] == "Wh"
    finally:
        agent.stop()
        watcher.close()


def test_push_meter_is_published_like_a_polled_one(tmp_path, mosquitto) -> None:
    # An Austrian T-210D customer interface: encrypted DataNotifications in M-Bus frames.
    ek = bytes(range(16))
    key_file = tmp_path / "wien.ek"
    key_file.write_text(ek.hex())
    key_file.chmod(0o600)
    pair = PtyPair()
    config = write_config(tmp_path, mosquitto, f"""\
        - id: wien
          push: {{format: mbus, serial: {{device: {pair.path_b}, parity: "N"}}}}  # ptys: no parity
          security: {{policy: enc, keys: {{ek: {{file: {key_file}}}}}}}
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/wien/#"])
    agent = make_agent(config).start()
    try:
        (listener,) = agent.listeners
        assert listener.ready.wait(WAIT)
        meter = meter_models.build("t210d", 7, lambda: PUSHED_AT)
        stream = push_stream("mbus", meter, CipherKeys(ek=Secret(ek, "EK")), 0.02,
                             clock=lambda: PUSHED_AT)
        fd = os.open(pair.path_a, os.O_RDWR | os.O_NOCTTY)
        try:
            for _, telegram in zip(range(2), stream, strict=False):
                os.write(fd, telegram)
        finally:
            os.close(fd)
        assert watcher.wait_count("dlms/pi/wien/state", 2, WAIT)
        assert watcher.wait_for(lambda ms: watcher.on("dlms/pi/wien/availability"))
    finally:
        agent.stop()
        pair.close()
    info = MeterInfo.decode(watcher.on("dlms/pi/wien/info")[0].payload)
    assert {o.obis for o in info.objects} >= {ENERGY, "1.0.32.7.0.255"}
    (energy,) = payloads(watcher.messages, f"dlms/pi/wien/{ENERGY}")[:1]
    assert energy["unit"] == "Wh" and energy["ts"] == "2026-03-02T10:30:00Z"
    assert energy["value"] == meter.register_values[T210D_PUSHED[0]](PUSHED_AT)
    assert json.loads(watcher.on("dlms/pi/wien/health")[0].payload)["state"] == "ok"
    assert [m.payload for m in watcher.on("dlms/pi/wien/availability")] == [
        b"online", b"offline"]


AARQ = 0x60  # association request (Green Book 9.5, ACSE-APDU ::= [APPLICATION 0])


def test_association_is_reused_and_reestablished_when_the_meter_drops_it(
        tmp_path, mosquitto) -> None:
    steady_log, dropping_log = FrameLog(), FrameLog()
    steady, _, steady_port = tcp_meter(tap=steady_log)
    # This meter closes the connection after 0.4 s of silence, as meters do after their
    # inactivity time-out: every poll finds the old association gone.
    dropping, _, dropping_port = tcp_meter(tap=dropping_log, idle_timeout=0.4)
    meters = "".join(textwrap.dedent(f"""\
        - id: {name}
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: [{{name: fast, interval: 1, objects: [{POWER}]}}]
          profiles: []
        """) for name, port in (("steady", steady_port), ("dropping", dropping_port)))
    config = write_config(tmp_path, mosquitto, meters)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/+/state",
                                                          "dlms/pi/+/health"])
    agent = make_agent(config).start()
    try:
        assert watcher.wait_for(lambda ms: all(
            len(watcher.on(f"dlms/pi/{name}/state")) >= 3 for name in ("steady", "dropping")))
    finally:
        agent.stop()
        steady.stop()
        dropping.stop()
    assert steady_log.apdus_received(AARQ) == 1  # one association for every poll
    assert dropping_log.apdus_received(AARQ) >= 3  # associated again within each poll
    for name in ("steady", "dropping"):  # never reported as a problem
        assert [json.loads(m.payload)["state"] for m in watcher.on(
            f"dlms/pi/{name}/health")] == ["ok"]
    watcher.close()


def test_t210d_suite_1_hls_with_signed_pass_3(tmp_path, mosquitto) -> None:
    # The field case of DESIGN.md: suite 1, authenticated encryption, HLS-5, and a meter
    # that accepts pass 3 only inside general-signing; pass3_signing auto finds that out.
    keys = tmp_path / "keys"
    server, station, port = tcp_meter(profile="t210d", keys_dir=str(keys))
    for path in keys.iterdir():
        path.chmod(0o600)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: t210d
          transport: {{tcp: "127.0.0.1:{port}"}}
          addresses: {{client: 1}}
          security:
            suite: 1
            policy: authenc
            auth: hls-gmac
            keys: {{ek: {{file: {keys / "ek.hex"}}}, ak: {{file: {keys / "ak.hex"}}}}}
            system_title: "{DEFAULT_CLIENT_SYSTEM_TITLE.hex()}"
            pass3_signing: auto
            signing_key: {keys / "client.key.pem"}
            meter_certificate: {keys / "meter.crt.pem"}
          poll: [{{name: energy, interval: 60, objects: [{ENERGY}]}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/t210d/#"])
    agent = make_agent(config).start()
    try:
        assert watcher.wait_count(f"dlms/pi/t210d/{ENERGY}", 1, WAIT)
    finally:
        agent.stop()
        server.stop()
    info = MeterInfo.decode(watcher.on("dlms/pi/t210d/info")[0].payload)
    assert info.manufacturer == "Sagemcom" and info.serial == station.model.serial
    assert info.system_title == station.model.system_title
    assert FactStore(tmp_path / "state").get_fact("t210d", "pass3_signing_required") is True
    (energy,) = payloads(watcher.messages, f"dlms/pi/t210d/{ENERGY}")
    assert energy["unit"] == "Wh"
    key_text = (keys / "ek.hex").read_text().strip()
    assert all(key_text.lower() not in m.payload.decode().lower() for m in watcher.messages)
