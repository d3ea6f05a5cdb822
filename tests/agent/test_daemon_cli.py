"""The daemon as systemd runs it (a subprocess, stopped by a signal) and `config check`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from daemon_harness import WAIT, FrameLog, Subscriber, write_config

from edge_agent.cli import main
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

POWER = "1.0.1.7.0.255"
PASSWORD = "s3cret-pw"
RLRQ = 0x62  # release-request APDU tag (Green Book 9.5, ACSE-APDU ::= [APPLICATION 2])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_signal_releases_flushes_and_goes_offline(tmp_path, mosquitto, signum) -> None:
    frames = FrameLog()
    station = SimulatedMeterStation(SimulatorOptions(password=PASSWORD))
    server = MeterServer([station.station], tap=frames)
    _, port = server.start_tcp("127.0.0.1", 0)
    password = tmp_path / "lls"
    password.write_text(PASSWORD)
    os.chmod(password, 0o600)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: m1
          transport: {{tcp: "127.0.0.1:{port}"}}
          addresses: {{client: 1}}
          security: {{auth: low, keys: {{password: {{file: {password}}}}}}}
          poll: [{{name: fast, interval: 1, objects: [{POWER}]}}]
        """, extra="""\
        logging: {level: DEBUG, format: json}
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/#"])
    process = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                                str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert watcher.wait_count(f"dlms/pi/m1/{POWER}", 2, WAIT), process.stderr.read1()
        assert frames.apdus_received(RLRQ) == 0
        process.send_signal(signum)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        server.stop()
    stderr = process.stderr.read().decode()
    assert watcher.wait_for(lambda ms: ms[-1].topic == "dlms/pi/status")
    watcher.close()
    assert watcher.on("dlms/pi/m1/availability")[-1].payload == b"offline"
    assert [m.payload for m in watcher.on("dlms/pi/status")] == [b"online", b"offline"]
    assert frames.apdus_received(RLRQ) == 1, "the association was not released"
    # structured logs: one JSON object per line, meter named, no key material
    records = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert any(r.get("meter") == "m1" and "associated" in r["message"] for r in records)
    assert any(signal.Signals(signum).name in r["message"] for r in records)
    assert PASSWORD not in stderr and PASSWORD.encode().hex() not in stderr


# --- dlms-edge config check -----------------------------------------------------------------


def test_config_check_ok_prints_summary_and_warnings(tmp_path, capsys) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent("""\
        meters:
          - id: m1
            transport: {tcp: "10.0.0.5:4059"}
            addresses: {client: 1}
            security: {auth: low, keys: {password: {env: DLMS_EDGE_TEST_UNSET_PASSWORD}}}
        """))
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: OK")
    assert "meter m1: tcp 10.0.0.5:4059 (wrapper)" in out
    assert "warning: meters[0].security.keys.password: environment variable " \
           "DLMS_EDGE_TEST_UNSET_PASSWORD is not set" in out


def test_config_check_invalid_lists_every_problem_and_exits_2(tmp_path, capsys) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent("""\
        meters:
          - id: m1
            transport: {tcp: "10.0.0.5:4059"}
            security: {policy: authenc, keys: {ek: 000102030405060708090a0b0c0d0e0f}}
          - id: m2
            trasnport: {tcp: "10.0.0.6"}
        """))
    assert main(["config", "check", str(path)]) == 2
    out = capsys.readouterr().out
    assert "INVALID" in out
    errors = [line for line in out.splitlines() if line.strip().startswith("error:")]
    assert any("meters[0].security.keys.ek: inline key values are not accepted" in e
               for e in errors)
    assert any("meters[1].trasnport: unknown key; did you mean 'transport'" in e
               for e in errors)
    assert "000102030405060708090a0b0c0d0e0f" not in out


def test_config_check_json(tmp_path, capsys) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("meters: []\n")
    assert main(["config", "check", str(path), "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and document["errors"] == [
        "meters: list at least one meter"]
