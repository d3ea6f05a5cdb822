"""dlms-edge scan against the simulator over TCP (wrapper and HDLC) and a serial pty pair,
and its config stub."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from edge_agent.agent.config import TcpTransport, load_config
from edge_agent.cli import main
from edge_agent.cli.scan import parse_addresses
from edge_agent.client.scan import Outcome, Scanner, ScanPlan
from edge_agent.dlms.errors import ConfigError
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer


def _serve(options: SimulatorOptions):
    station = SimulatedMeterStation(options)
    server = MeterServer([station.station])
    host, port = server.start_tcp("127.0.0.1", 0)
    return station, server, host, port


@pytest.fixture(scope="module")
def generic():
    station, server, host, port = _serve(SimulatorOptions(profile="generic", seed=3))
    yield station, host, port
    server.stop()


def scan(capsys, *args):
    code = main(["scan", "--timeout", "0.5", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_finds_the_wrapper_and_writes_a_stub_that_loads(generic, tmp_path, capsys):
    station, host, port = generic
    stub = tmp_path / "meter.yaml"
    code, out, err = scan(capsys, "--tcp", f"{host}:{port}", "--write", str(stub))
    assert code == 0, err
    assert out.startswith(f"meter found: tcp {host}:{port}, wrapper, server logical 1")
    assert f"serial: {station.model.serial}" in out
    clients = out.split("clients:\n")[1].split("objects")[0]
    assert "16  accepted" in clients
    assert "1  refused: rejected-permanent (acse-service-user: authentication-mechanism-name-required)" in clients
    assert "1.0.99.1.0.255     class 7   Load profile 1" in out
    assert f"dlms-edge read --tcp {host}:{port} --client 16 --logical 1" in out

    config = load_config(stub)
    (meter,) = config.meters
    assert meter.id == station.model.serial
    assert meter.transport == TcpTransport(host, port)
    assert meter.link == "wrapper"
    assert (meter.addresses.client, meter.addresses.logical) == (16, 1)
    groups = {group.name: group for group in config.meters[0].poll}
    assert "1.0.1.8.0.255" in groups["energy"].objects and groups["energy"].interval == 60
    assert "1.0.32.7.0.255" in groups["instantaneous"].objects
    assert "authentication-mechanism-name-required" in stub.read_text()


def test_scan_finds_hdlc_over_tcp(generic, tmp_path, capsys):
    _, host, port = generic
    stub = tmp_path / "hdlc.yaml"
    code, out, err = scan(capsys, "--tcp", f"{host}:{port}", "--link", "hdlc", "--json", "--write", str(stub))
    assert code == 0, err
    report = json.loads(out)
    (found,) = report["found"]
    assert found["connection"] | {"seconds": 0} == {
        "link": "hdlc", "baud": None, "optical": False, "client": 16, "logical": 1, "physical": 16,
        "outcome": "accepted", "detail": found["connection"]["detail"], "seconds": 0}
    assert {o["obis"] for o in found["objects"]} >= {"1.0.1.8.0.255", "0.0.1.0.0.255", "1.0.99.1.0.255"}
    meter = load_config(stub).meters[0]
    assert meter.link == "hdlc"
    assert (meter.addresses.client, meter.addresses.logical, meter.addresses.physical) == (16, 1, 16)


def test_exhaustive_scan_reports_silent_addresses(generic, capsys):
    _, host, port = generic
    code, out, err = scan(capsys, "--tcp", f"{host}:{port}", "--link", "hdlc", "--addresses", "1/17,1/16",
                          "--clients", "16", "--all", "--json")
    assert code == 0, err
    attempts = json.loads(out)["attempts"]
    assert [(a["physical"], a["outcome"]) for a in attempts] == [(17, "no answer"), (16, "accepted")]
    assert "client 16 -> server 1/17: no answer" in err


def test_nothing_answering_is_exit_3_with_advice(generic, capsys):
    _, host, port = generic
    code, out, err = scan(capsys, "--tcp", f"{host}:{port}", "--link", "hdlc", "--addresses", "1/17", "--clients", "16")
    assert code == 3 and out == ""
    assert "no meter answered" in err and "--addresses" in err


def test_a_closed_port_stops_the_scan_at_once(capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = scan(capsys, "--tcp", f"127.0.0.1:{port}")
    assert code == 3
    assert err.count("dlms-edge scan: error:") == 1


def test_t210d_management_client_needs_ciphering(tmp_path):
    station, server, host, port = _serve(SimulatorOptions(profile="t210d", keys_dir=str(tmp_path / "keys")))
    try:
        plan = ScanPlan.for_tcp((host, port), timeout=0.5, links=("wrapper",), clients=(16, 1))
        seen = []
        report = Scanner(plan, state_dir=tmp_path, on_attempt=seen.append).run()
    finally:
        server.stop()
    (found,) = report.found
    assert [a.outcome for a in found.clients] == [Outcome.ACCEPTED, Outcome.REFUSED]
    assert "application-context-name-not-supported" in found.clients[1].detail
    assert found.identity["serial"] == station.model.serial
    assert seen == list(report.attempts)


def test_parse_addresses():
    assert parse_addresses("1/16,1/18-20") == ((1, 16), (1, 18), (1, 19), (1, 20))
    for bad in ("1", "x/16", "1/20-18", "1/99999", ""):
        with pytest.raises(ConfigError):
            parse_addresses(bad)


def test_bad_options_are_config_errors(capsys):
    assert main(["scan", "--serial", "/dev/null", "--link", "wrapper"]) == 2
    assert "serial lines speak HDLC" in capsys.readouterr().err
    assert main(["scan", "--tcp", "127.0.0.1:1", "--clients", "16,x"]) == 2


# --- serial: the simulator on one end of a pty pair, the scan on the other -------------------


@pytest.fixture
def serial_meter():
    """The generic simulator serving HDLC at 9600 baud on ``path_a`` of a virtual null-modem."""
    from edge_agent.transport.pty import PtyPair

    pair = PtyPair()
    station = SimulatedMeterStation(SimulatorOptions(profile="generic", seed=5))
    server = MeterServer([station.station])
    thread = threading.Thread(target=server.serve_serial, args=(pair.path_a, 9600), daemon=True)
    thread.start()
    yield station, pair.path_b
    server.stop()
    thread.join(5)
    pair.close()
    assert not thread.is_alive(), "the simulator stops serving on stop()"


def test_scan_finds_the_meter_on_a_serial_line_and_writes_a_stub_that_loads(serial_meter, tmp_path, capsys):
    station, device = serial_meter
    stub = tmp_path / "serial.yaml"
    started = time.monotonic()
    # Physical 17 first: silence there, then the meter at 16; clients 16 (public) and 1.
    code, out, err = scan(capsys, "--serial", device, "--baud", "9600", "--addresses", "1/17,1/16",
                          "--clients", "16,1", "--write", str(stub))
    assert code == 0, err
    assert time.monotonic() - started < 15
    assert "HDLC 9600 baud, client 16 -> server 1/17: no answer" in err
    assert out.startswith(f"meter found: {device}, HDLC 9600 baud, server logical 1 physical 16")
    assert f"serial: {station.model.serial}" in out
    clients = out.split("clients:\n")[1].split("objects")[0]
    assert " 16  accepted" in clients and "  1  refused: " in clients
    assert "1.0.1.8.0.255      class 3   Active energy import (+A)" in out
    assert f"dlms-edge read --serial {device} --baud 9600 --client 16 --logical 1 --physical 16" in out

    (meter,) = load_config(stub).meters
    assert meter.id == station.model.serial
    line = meter.transport.serial
    assert (line.device, line.baud, line.optical) == (device, 9600, False)
    assert meter.link == "hdlc"
    assert (meter.addresses.client, meter.addresses.logical, meter.addresses.physical) == (16, 1, 16)
    groups = {group.name: group for group in meter.poll}
    assert "1.0.1.8.0.255" in groups["energy"].objects
    assert "1.0.32.7.0.255" in groups["instantaneous"].objects
