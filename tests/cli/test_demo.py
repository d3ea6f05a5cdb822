"""dlms-edge demo as a user runs it: a subprocess, a real MQTT subscriber on its port."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_agent import children
from edge_agent.cli.demo import PASS3_SIGNED, render
from edge_agent.demo import LiveValues, demo_config, mosquitto_binary, port_is_free

SUBSCRIBE_LINE = re.compile(r"subscribe: mosquitto_sub -p (\d+) -t 'dlms/#' -v")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Subscriber:
    """paho-mqtt v2 client on dlms/#: every message with its retain flag."""

    _count = 0

    def __init__(self, port: int) -> None:
        Subscriber._count += 1
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-demo-{os.getpid()}-{self._count}")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe("dlms/#", qos=1)
        self.client.on_message = self._receive
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _receive(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def stop(self) -> list[tuple[str, bytes, bool]]:
        self.client.disconnect()
        self.client.loop_stop()
        return list(self.messages)


def start_demo(*args: str) -> tuple[subprocess.Popen, int, list[str]]:
    # Its own process group, and SIGTERM should this test process die: no demo outlives it.
    process = children.spawn([sys.executable, "-m", "edge_agent", "demo", "--interval", "1", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    head = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        head.append(line.rstrip("\n"))
        if match := SUBSCRIBE_LINE.search(line):
            return process, int(match.group(1)), head
    process.kill()
    pytest.fail(f"demo did not announce its broker: {head}")


def check_contract(messages: list[tuple[str, bytes, bool]], late: list[tuple[str, bytes, bool]]) -> None:
    """status online, the retained info, and per-OBIS values that change. ``late``: what a
    subscriber that came after the first poll received."""
    assert ("dlms/demo/status", b"online", False) in messages or ("dlms/demo/status", b"online", True) in messages
    assert ("dlms/demo/status", b"online", True) in late
    infos = [(t, json.loads(p), r) for t, p, r in late if t.endswith("/info")]
    assert infos and infos[0][2], "a late subscriber gets the retained info"
    meter = infos[0][1]["meter"]
    assert {o["obis"] for o in infos[0][1]["objects"]} >= {"1.0.1.8.0.255", "1.0.32.7.0.255"}
    values: dict[str, list] = {}
    for topic, payload, _ in messages:
        leaf = topic.removeprefix(f"dlms/demo/{meter}/")
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+\.\d+\.\d+", leaf):
            body = json.loads(payload)
            assert set(body) >= {"value", "unit", "ts"} and body["obis"] == leaf
            values.setdefault(leaf, []).append(body["value"])
    assert values["1.0.1.8.0.255"] and all(isinstance(v, (int, float)) for v in values["1.0.1.8.0.255"])
    changing = [leaf for leaf, seen in values.items() if len(set(map(str, seen))) > 1]
    assert "0.0.1.0.0.255" in changing  # the clock, at least, moves between polls


@pytest.mark.skipif(mosquitto_binary() is None, reason="needs the mosquitto binary")
def test_t210d_demo_with_mosquitto_and_the_documented_mosquitto_sub(tmp_path):
    """The field case end to end: suite 1, HLS-5, unsigned pass 3 refused, signed accepted,
    energy values on MQTT within the run."""
    port = free_port()
    process, announced, head = start_demo("--profile", "t210d", "--duration", "6", "--mqtt-port", str(port))
    assert announced == port
    assert any("management client SAP 1: authenc, hls-gmac, suite 1, signed pass 3 required" in line
               for line in head), head
    subscriber = Subscriber(port)
    sub = None
    if shutil.which("mosquitto_sub"):
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", "dlms/#", "-v"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2.5)
    late = Subscriber(port)
    out, _ = process.communicate(timeout=30)
    messages, late_messages = subscriber.stop(), late.stop()
    assert process.returncode == 0, out
    check_contract(messages, late_messages)
    assert ("dlms/demo/status", b"offline", True) in messages or ("dlms/demo/status", b"offline", False) in messages
    assert "Voltage L1" in out and "stopped:" in out
    # Learned from the state dir's facts, which the client writes only after the refusal.
    assert out.count(PASS3_SIGNED) >= 2, out  # in the table, and in the closing lines
    assert "Traceback" not in out and "ERROR" not in out
    energy = [json.loads(p)["value"] for t, p, _ in messages if t.endswith("/1.0.1.8.0.255")]
    assert len(energy) >= 2 and all(isinstance(v, (int, float)) and v > 0 for v in energy)
    if sub is not None:
        sub.terminate()  # it would wait for the broker to come back
        sub_out, _ = sub.communicate(timeout=10)
        lines = sub_out.splitlines()
        assert "dlms/demo/status online" in lines
        assert any(re.match(r"dlms/demo/[^/]+/info \{", line) for line in lines)
        assert any(re.match(r"dlms/demo/[^/]+/1\.0\.1\.8\.0\.255 \{\"value\"", line) for line in lines)
    assert port_is_free(port), "the broker stopped with the demo"


def test_demo_with_amqtt_on_a_busy_port_stops_cleanly_on_ctrl_c():
    pytest.importorskip("amqtt")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        wanted = busy.getsockname()[1]
        process, port, head = start_demo("--profile", "generic", "--broker", "amqtt", "--mqtt-port", str(wanted))
        assert port != wanted
        assert f"note: port {wanted} is busy; the broker uses port {port} instead" in head
        assert any("broker amqtt" in line for line in head)
        subscriber = Subscriber(port)
        time.sleep(2.5)
        late = Subscriber(port)
        time.sleep(1.5)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    messages, late_messages = subscriber.stop(), late.stop()
    assert process.returncode == 0, out
    assert "stopping" in out and "stopped:" in out
    assert "Traceback" not in out and "ERROR" not in out
    assert "pass 3" not in out, "the generic meter has no pass 3 to tell about"
    check_contract(messages, late_messages)
    assert port_is_free(port)


# --- pieces -------------------------------------------------------------------------------


def test_live_values_follow_the_topic_contract_and_render():
    values = LiveValues("dlms", "demo")
    values.receive("dlms/demo/status", b"online")
    values.receive("dlms/demo/m1/info", b'{"meter": "m1"}')
    values.receive("dlms/demo/m1/availability", b"online")
    values.receive("dlms/demo/m1/state", b'{"values": {}}')
    values.receive("dlms/other/m1/1.0.1.8.0.255", b'{"value": 1}')
    for watts in (230, 231):
        values.receive("dlms/demo/m1/1.0.1.7.0.255", json.dumps(
            {"value": watts, "unit": "W", "ts": "2026-11-25T12:00:00Z", "name": "Active power import (+A)"}).encode())
    ((row),) = values.rows()
    assert (row.meter, row.obis, row.value, row.unit, row.updates, row.changes) == ("m1", "1.0.1.7.0.255", 231, "W", 2, 1)
    lines = render(values, dt.datetime(2026, 11, 25, 12, 0, 5, tzinfo=dt.UTC))
    assert lines[0].startswith("status: online   meter: m1")
    assert lines[1].split() == ["OBIS", "name", "value", "unit", "age"]
    assert lines[2].split() == ["1.0.1.7.0.255", "Active", "power", "import", "(+A)", "231", "W", "5s"]


def test_live_values_show_the_clock_drift_and_the_latest_event():
    """The clock and event documents are not one value: the table shows the drift and the
    newest event's text; a replay request is not shown."""
    from edge_agent.mqtt.payloads import clock_payload, event_payload

    values = LiveValues("dlms", "demo")
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    values.receive("dlms/demo/m1/clock", clock_payload(
        agent_time=now, meter_time=now + dt.timedelta(seconds=2.5), meter_local_time=None,
        drift=2.5, deviation=-60, status=[], status_raw=0, time_zone=60, daylight_saving={},
        clock_base=None, sync={}))
    for code, text in ((1, "Power down"), (2, "Power up")):
        values.receive("dlms/demo/m1/event", event_payload(
            ts=now, log="0.0.99.98.0.255", code=code, name=text.lower().replace(" ", "_"),
            text=text, status=None, raw={}))
    values.receive("dlms/demo/m1/replay", b'{"profile": "1.0.99.1.0.255"}')
    shown = {row.obis: (row.name, row.value, row.unit, row.updates) for row in values.rows()}
    assert shown == {"clock": ("Meter clock drift (meter - agent)", 2.5, "s", 1),
                     "event": ("Latest event", "Power up", None, 2)}


def test_demo_config_passes_the_agent_loader(tmp_path):
    from edge_agent.agent.config import load_config
    from edge_agent.demo import DemoOptions

    path = tmp_path / "agent.yaml"
    path.write_text(demo_config(DemoOptions(interval=2), 4059, 1883, tmp_path / "state"), encoding="utf-8")
    config = load_config(path)
    assert (config.agent_id, config.mqtt.port, config.meters[0].link) == ("demo", 1883, "wrapper")
    assert config.meters[0].poll[0].interval == 2 and config.meters[0].poll[0].objects == "all"


def test_the_t210d_config_reads_the_simulators_keys_directory(tmp_path):
    """The management client of examples/t210d-optical.yaml, keys from the files the
    simulator writes (KeyRef reads ek.hex as hex text): load_config and the key refs agree."""
    from edge_agent.agent.config import check_config, load_config
    from edge_agent.demo import DemoKeys, DemoOptions
    from edge_agent.keystore import KeysDir

    keys_dir = tmp_path / "keys"
    KeysDir(keys_dir).ensure_simulator_keys(bytes.fromhex("5341470102030405"))
    material = KeysDir(keys_dir).load()
    path = tmp_path / "agent.yaml"
    path.write_text(demo_config(DemoOptions(), 4059, 1883, tmp_path / "state",
                                DemoKeys(keys_dir, material.client_system_title)), encoding="utf-8")
    meter = load_config(path).meters[0]
    security = meter.security
    assert (meter.addresses.client, security.suite, security.policy, security.auth, security.pass3_signing) == (
        1, 1, "authenc", "hls-gmac", "auto")
    assert security.system_title == material.client_system_title == bytes.fromhex("444c4d5300000001")
    assert security.ek.resolve().reveal() == material.ek.reveal()
    assert security.ak.resolve().reveal() == material.ak.reveal()
    assert (security.signing_key.name, security.meter_certificate.name) == ("client.key.pem", "meter.crt.pem")
    check_config(path)  # the key files, the signing key and the certificate load
    assert material.ek.reveal().hex() not in path.read_text(), "the config names key files, never keys"


def test_the_demo_refuses_an_unknown_profile():
    from edge_agent.demo import Demo, DemoOptions
    from edge_agent.dlms.errors import ConfigError

    with pytest.raises(ConfigError, match="profile 'e450': expected one of t210d, generic"):
        Demo(DemoOptions(profile="e450")).start()


def test_help_names_t210d_as_the_default():
    out = subprocess.run([sys.executable, "-m", "edge_agent", "demo", "--help"],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    assert "--profile {t210d,generic}" in out and "default t210d" in out


# --- stopping: every signal, and a parent that dies ---------------------------------------


def child_pids(pid: int) -> set[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            pass
    return found


def gone(pid: int, timeout: float = 10.0) -> bool:
    """The process exited within ``timeout`` (a zombie awaiting its reaper counts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def mosquitto_of(process: subprocess.Popen) -> int:
    (broker,) = [pid for pid in child_pids(process.pid)
                 if "mosquitto" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    assert os.getpgid(broker) == broker, "the broker runs in its own process group"
    return broker


needs_mosquitto = pytest.mark.skipif(mosquitto_binary() is None or not Path("/proc/self/task").exists(),
                                     reason="needs the mosquitto binary and Linux /proc")


@needs_mosquitto
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=lambda s: signal.Signals(s).name)
def test_demo_stops_its_broker_on_each_stop_signal(signum: int) -> None:
    port = free_port()
    process, announced, _ = start_demo("--profile", "generic", "--broker", "mosquitto", "--mqtt-port", str(port))
    try:
        broker = mosquitto_of(process)
        time.sleep(1.0)
        process.send_signal(signum)
        out, _ = process.communicate(timeout=30)
    finally:
        children.stop(process)
    assert process.returncode == 0, out
    assert f"stopping ({signal.Signals(signum).name})" in out and "stopped:" in out
    assert "Traceback" not in out
    assert gone(broker), "the broker outlived the demo"
    assert port_is_free(announced)


@needs_mosquitto
def test_a_killed_demo_takes_its_broker_along() -> None:
    """SIGKILL leaves the demo no chance to clean up: the kernel's parent-death signal does."""
    port = free_port()
    process, announced, _ = start_demo("--profile", "generic", "--broker", "mosquitto", "--mqtt-port", str(port))
    broker = mosquitto_of(process)
    process.kill()
    process.communicate(timeout=10)
    assert gone(broker), "the broker outlived the killed demo"
    deadline = time.monotonic() + 5
    while not port_is_free(announced) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert port_is_free(announced)


# --- the embedded broker: its own race, and a stop that keeps its deadline -------------------


def test_amqtt_subscription_table_is_iterated_as_a_snapshot():
    """amqtt loops over its subscription table across awaits; another client subscribing
    meanwhile ended the connecting client's session ("dictionary changed size during
    iteration"). The demo's broker iterates a copy."""
    pytest.importorskip("amqtt")
    from edge_agent.demo import AmqttBroker, free_port

    broker = AmqttBroker(free_port())
    try:
        table = broker.broker._subscriptions
        table["dlms/#"] = []
        for topic in table:  # a plain dict raises RuntimeError here
            table[topic + "/more"] = []
        assert set(table) == {"dlms/#", "dlms/#/more"}
    finally:
        broker.stop()


def test_a_wedged_amqtt_broker_stops_within_its_time_out():
    pytest.importorskip("amqtt")
    from edge_agent.demo import AmqttBroker, free_port

    broker = AmqttBroker(free_port())
    broker.loop.call_soon_threadsafe(time.sleep, 30)  # the broker's loop stops turning
    started = time.monotonic()
    broker.stop(timeout=2.0)
    assert time.monotonic() - started < 3.0


def test_the_demo_stops_within_its_deadline_when_the_broker_is_wedged(monkeypatch):
    """One deadline for the whole stop: a broker that no longer answers makes the agent,
    the watcher and the broker itself wait, and their waits must not add up."""
    pytest.importorskip("amqtt")
    from edge_agent.demo import Demo, DemoOptions

    monkeypatch.setenv("DLMS_EDGE_DEMO_BROKER", "amqtt")
    demo = Demo(DemoOptions(mqtt_port=free_port(), profile="generic", interval=1)).start()
    try:
        time.sleep(2.0)
        demo.broker.loop.call_soon_threadsafe(time.sleep, 60)  # the broker stops turning
        started = time.monotonic()
        demo.stop(timeout=4.0)
        assert time.monotonic() - started < 6.0
    finally:
        demo.stop()
