"""PushListener: simulator pushes over a pty pair and TCP; push_stopped; wrong key; config."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.agent.config import load_config
from edge_agent.agent.push_listener import (
    PushListener,
    PushSpec,
    SerialSource,
    TcpClientSource,
    TcpServerSource,
)
from edge_agent.client.values import Reading
from edge_agent.dlms.push.body import parse_object_list
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import CipherKeys
from edge_agent.simulator import meter_models
from edge_agent.simulator.push_telegrams import T210D_PUSHED, build_push, push_stream
from edge_agent.transport.pty import PtyPair

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
EK = Secret(bytes(range(16)), "EK")
AK = Secret(bytes(range(16, 32)), "AK")
WAIT = 5.0


class Sink:
    """Collects what the listener reports; ``wait`` for a condition with a bound."""

    def __init__(self) -> None:
        self.readings: list[tuple[str, list[Reading]]] = []
        self.problems: list[tuple[str, str, str]] = []
        self._changed = threading.Condition()

    def on_readings(self, meter_id: str, readings: list[Reading]) -> None:
        with self._changed:
            self.readings.append((meter_id, readings))
            self._changed.notify_all()

    def on_problem(self, meter_id: str, code: str, message: str) -> None:
        with self._changed:
            self.problems.append((meter_id, code, message))
            self._changed.notify_all()

    def wait(self, condition, timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(condition, timeout)


@pytest.fixture
def meter() -> meter_models.SimulatedMeter:
    return meter_models.build("t210d", 7, lambda: NOW)


@pytest.fixture
def pty_pair():
    pair = PtyPair()
    yield pair
    pair.close()


def write_pushes(path: str, stream, count: int) -> threading.Thread:
    def run() -> None:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            for _, push in zip(range(count), stream):
                os.write(fd, push)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_listener_over_a_pty_fed_by_the_simulator(meter, pty_pair) -> None:
    sink = Sink()
    spec = PushSpec(None, "mbus", SerialSource(pty_pair.path_b, 2400), ek=EK)
    listener = PushListener(spec, sink.on_readings, sink.on_problem).start()
    try:
        assert listener.ready.wait(WAIT)
        stream = push_stream("mbus", meter, CipherKeys(ek=EK), 0.02, clock=lambda: NOW)
        write_pushes(pty_pair.path_a, stream, 3).join(WAIT)
        assert sink.wait(lambda: len(sink.readings) >= 3)
    finally:
        assert listener.stop()
    meter_id, readings = sink.readings[0]
    assert meter_id == meter.serial  # no id configured: the meter number it pushes
    by_obis = {r.obis.dotted: r for r in readings}
    assert set(by_obis) == {".".join(str(b) for b in name) for name in T210D_PUSHED}
    energy = meter.register_values[T210D_PUSHED[0]](NOW)  # the register at the push instant
    assert by_obis["1.0.1.8.0.255"].value == energy and by_obis["1.0.1.8.0.255"].unit == "Wh"
    assert by_obis["1.0.32.7.0.255"].unit == "V"
    assert readings[0].timestamp == NOW  # the meter's own time, as an aware instant
    assert sink.problems == []
    assert listener.received == 3


def test_push_stopped_when_the_stream_stops(meter, pty_pair) -> None:
    sink = Sink()
    spec = PushSpec("sim", "dsmr", SerialSource(pty_pair.path_b, 115200), ek=EK, ak=AK,
                    interval=0.1)
    listener = PushListener(spec, sink.on_readings, sink.on_problem).start()
    try:
        assert listener.ready.wait(WAIT)
        stream = push_stream("dsmr", meter, CipherKeys(ek=EK, ak=AK), 0.02, clock=lambda: NOW)
        write_pushes(pty_pair.path_a, stream, 2).join(WAIT)
        assert sink.wait(lambda: len(sink.readings) == 2)
        started = time.monotonic()
        assert sink.wait(lambda: any(code == "push_stopped" for _, code, _ in sink.problems))
        assert time.monotonic() - started < 2.0
        time.sleep(0.5)  # reported once, not on every poll
        assert [code for _, code, _ in sink.problems] == ["push_stopped"]
    finally:
        assert listener.stop()
    meter_id, _code, message = sink.problems[0]
    assert meter_id == "sim" and "no push received" in message and "0.1 s" in message


def test_wrong_key_is_reported_and_nothing_published(meter, pty_pair) -> None:
    sink = Sink()
    spec = PushSpec("sim", "mbus", SerialSource(pty_pair.path_b, 2400),
                    ek=Secret(bytes(16)))
    listener = PushListener(spec, sink.on_readings, sink.on_problem).start()
    try:
        assert listener.ready.wait(WAIT)
        write_pushes(pty_pair.path_a, iter([build_push("mbus", meter, CipherKeys(ek=EK), 5, NOW)]),
                     1).join(WAIT)
        assert sink.wait(lambda: sink.problems)
    finally:
        listener.stop()
    assert sink.readings == []
    ((meter_id, code, message),) = sink.problems
    assert (meter_id, code) == ("sim", "wrong_key") and "EK" in message


def test_tcp_server_receives_idis_pushes_from_connecting_meters(meter) -> None:
    sink = Sink()
    objects = parse_object_list(["0.0.25.9.0.255", "0.0.1.0.0.255", "1.0.1.8.0.255@0,Wh",
                                 "1.0.2.8.0.255@0,Wh", "1.0.1.7.0.255@0,W", "1.0.2.7.0.255@0,W"])
    spec = PushSpec("idis", "wrapper", TcpServerSource("127.0.0.1", 0), ek=EK, ak=AK,
                    objects=objects)
    captured: list[tuple[str, bytes]] = []
    listener = PushListener(spec, sink.on_readings, sink.on_problem,
                            tap=lambda d, f: captured.append((d, f))).start()
    try:
        assert listener.ready.wait(WAIT) and listener.address is not None
        pushes = [build_push("wrapper", meter, CipherKeys(ek=EK, ak=AK), n, NOW) for n in (1, 2)]
        for push in pushes:  # a connection per push, as Push setup (TCP) does it
            with socket.create_connection(listener.address, timeout=WAIT) as connection:
                connection.sendall(push[:5])
                time.sleep(0.05)
                connection.sendall(push[5:])
        assert sink.wait(lambda: len(sink.readings) == 2)
    finally:
        listener.stop()
    assert [d for d, _ in captured] == ["rx", "rx"] and [f for _, f in captured] == pushes
    _, readings = sink.readings[1]
    assert {r.obis.dotted for r in readings} >= {"1.0.1.8.0.255", "1.0.2.7.0.255"}


def test_tcp_client_source_and_replay_across_reconnections(meter) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    push = build_push("hdlc", meter, CipherKeys(ek=EK, ak=AK), 11, NOW)

    def serve() -> None:
        for _ in range(2):  # the same telegram twice, on two connections
            connection, _ = server.accept()
            with connection:
                connection.sendall(push)
                time.sleep(0.1)

    threading.Thread(target=serve, daemon=True).start()
    sink = Sink()
    objects = parse_object_list(["0.0.25.9.0.255", "0.0.1.0.0.255", "1.0.1.8.0.255",
                                 "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.2.7.0.255"])
    spec = PushSpec("hdlc-meter", "hdlc", TcpClientSource(*server.getsockname()[:2]), ek=EK,
                    ak=AK, objects=objects)
    listener = PushListener(spec, sink.on_readings, sink.on_problem).start()
    try:
        assert sink.wait(lambda: any(c == "counter_out_of_step" for _, c, _ in sink.problems),
                         timeout=8.0)
    finally:
        listener.stop()
        server.close()
    assert len(sink.readings) == 1


def test_unreachable_serial_port_is_reported_and_retried() -> None:
    sink = Sink()
    spec = PushSpec("gone", "mbus", SerialSource("/dev/does-not-exist-push", 2400, "E"))
    listener = PushListener(spec, sink.on_readings, sink.on_problem).start()
    try:
        assert sink.wait(lambda: sink.problems)
    finally:
        assert listener.stop()
    ((_, code, message),) = sink.problems
    assert code == "unreachable" and "not found" in message and "retrying" in message


def test_spec_from_the_configuration(tmp_path: Path) -> None:
    key_file = tmp_path / "t210d.ek"
    key_file.write_text(EK.reveal().hex())
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(f"""\
        mqtt: {{host: localhost}}
        meters:
          - id: wienernetze
            push:
              format: mbus
              serial: {{device: /dev/ttyUSB7}}
            security:
              policy: enc
              keys: {{ek: {{file: {key_file}}}}}
          - id: idis
            push: {{format: wrapper, port: 4060}}
        """))
    loaded = load_config(config)
    mbus = PushSpec.from_meter(loaded.meters[0])
    assert mbus.source == SerialSource("/dev/ttyUSB7", 2400, "E", 8, 1)
    assert mbus.ek == EK and mbus.ak is None and mbus.meter_id == "wienernetze"
    assert mbus.expected_interval == 5.0
    idis = PushSpec.from_meter(loaded.meters[1])
    assert idis.source == TcpServerSource("0.0.0.0", 4060) and idis.ek is None
    listener = PushListener(loaded.meters[0], lambda *a: None, lambda *a: None)
    assert repr(listener) == "<PushListener wienernetze mbus /dev/ttyUSB7 2400 8E1>"
    assert EK.reveal().hex() not in repr(mbus)


def send_over_tcp(address: tuple[str, int], *pushes: bytes) -> None:
    for push in pushes:  # a connection per push, as Push setup (TCP) does it
        with socket.create_connection(address, timeout=WAIT) as connection:
            connection.sendall(push)


def listen_once(spec: PushSpec, state_dir: Path | None, *pushes: bytes,
                until=lambda sink: False, **options) -> Sink:
    sink = Sink()
    listener = PushListener(spec, sink.on_readings, sink.on_problem, state_dir=state_dir,
                            **options).start()
    try:
        assert listener.ready.wait(WAIT) and listener.address is not None
        send_over_tcp(listener.address, *pushes)
        assert sink.wait(lambda: until(sink))
    finally:
        assert listener.stop()
    return sink


def test_receive_counters_survive_a_restart_with_a_state_dir(meter, tmp_path: Path) -> None:
    keys = CipherKeys(ek=EK)
    old, newer, newest = (build_push("mbus", meter, keys, n, NOW) for n in (5, 6, 7))
    spec = PushSpec("wienernetze", "mbus", TcpServerSource("127.0.0.1", 0), ek=EK)
    first = listen_once(spec, tmp_path, old, newer, until=lambda s: len(s.readings) == 2,
                        counter_flush_interval=3600.0)  # only the stop writes
    assert first.problems == []
    record = json.loads((tmp_path / "receive_counters" / "wienernetze.json").read_text())
    assert [e["invocation_counter"] for e in record["counters"]] == [6]

    # A new listener (the agent restarted) on the same state dir: the recorded telegram
    # is a replay, a newer one is accepted.
    second = listen_once(spec, tmp_path, old, newest,
                         until=lambda s: s.readings and s.problems)
    assert [code for _, code, _ in second.problems] == ["counter_out_of_step"]
    assert "invocation counter 5 " in second.problems[0][2]
    assert "last accepted 6" in second.problems[0][2]
    assert "receive_counters/wienernetze.json" in second.problems[0][2]  # what to delete
    assert len(second.readings) == 1  # the newest only
    # Without a state dir the same restart forgets the counter: the gap this closes.
    forgetful = listen_once(spec, None, old, until=lambda s: s.readings)
    assert forgetful.problems == []


def test_receive_counters_are_written_while_listening(meter, tmp_path: Path) -> None:
    spec = PushSpec("p1", "mbus", TcpServerSource("127.0.0.1", 0), ek=EK)
    path = tmp_path / "receive_counters" / "p1.json"

    def on_disk() -> list[int]:
        return [e["invocation_counter"] for e in json.loads(path.read_text())["counters"]]

    sink = Sink()
    listener = PushListener(spec, sink.on_readings, sink.on_problem, state_dir=tmp_path,
                            counter_flush_interval=1.5).start()
    try:
        assert listener.ready.wait(WAIT) and listener.address is not None
        pushes = [build_push("mbus", meter, CipherKeys(ek=EK), n, NOW) for n in (9, 10)]
        send_over_tcp(listener.address, *pushes)
        assert sink.wait(lambda: len(sink.readings) == 2)
        assert on_disk() == [9]  # the first at once, the second within the interval: later
        deadline = time.monotonic() + WAIT
        while on_disk() != [10] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert on_disk() == [10]  # written by the listening loop, no telegram and no stop
        assert listener.ready.is_set() and sink.problems == []
    finally:
        assert listener.stop()
