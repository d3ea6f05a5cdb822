"""Fault soak: the agent polls a simulated meter over an emulated serial line that flips
bits, drops and truncates, and holds bursts back; every value it publishes is right.

The meter's clock is frozen, so each register has exactly one right value; a corrupted
frame that got through the HDLC checks would publish another. Bounded in CI (about 20 s per
bit-error rate); DLMS_EDGE_SOAK=1 runs each rate for five minutes."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time

import pytest
from daemon_harness import Subscriber, make_agent, write_config

from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.line_emulator import EmulatedLine, LineFaults

SOAK = os.environ.get("DLMS_EDGE_SOAK") == "1"
SECONDS = 300.0 if SOAK else 20.0
pytestmark = [pytest.mark.mosquitto, pytest.mark.slow, pytest.mark.timeout(SECONDS * 2 + 120)]

FROZEN = dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
OBJECTS = ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255",
           "1.0.52.7.0.255", "1.0.72.7.0.255", "0.0.96.1.0.255"]
BAUD = 38400


def clean_read(tmp_path) -> dict[str, object]:
    """The values a twin of the meter (same seed, same frozen clock) gives over TCP."""
    twin = SimulatedMeterStation(SimulatorOptions(seed=4), clock=lambda: FROZEN)
    server = MeterServer([twin.station])
    address = server.start_tcp("127.0.0.1", 0)
    try:
        with MeterClient(ConnectionSettings(tcp=address), ClientSettings(), meter_id="twin",
                         state_dir=tmp_path / "twin", frame_counter=None) as meter:
            readings = meter.read([Obis.parse(code) for code in OBJECTS])
    finally:
        server.stop()
    return {reading.obis.dotted: reading.value for reading in readings}


# (faults, HDLC retries, the fewest polls that must get through in SECONDS). At 1e-3 a
# 128-byte segment is damaged 64 % of the time and the first association reads the
# object list in dozens of them: a poll or two gets through in 20 s (how many is
# printed); none may be wrong.
CASES = {
    "ber-1e-4": (LineFaults(bit_error_rate=1e-4, drop_rate=2e-5, truncate_rate=0.002,
                            silence_rate=0.002, silence=1.5), 3, SECONDS / 4),
    "ber-1e-3": (LineFaults(bit_error_rate=1e-3), 10, 0),
}


@pytest.mark.parametrize("case", CASES)
def test_no_wrong_value_is_published_over_a_noisy_line(tmp_path, mosquitto, case: str) -> None:
    faults, retries, fewest = CASES[case]
    line = EmulatedLine(baud=BAUD, latency=0.01, faults=faults, seed=11)
    station = SimulatedMeterStation(SimulatorOptions(seed=4), clock=lambda: FROZEN)
    server = MeterServer([station.station])
    thread = threading.Thread(target=server.serve_serial, args=(line.path_a, BAUD),
                              daemon=True)
    thread.start()
    assert server.serial_open.wait(10), f"the simulator did not open {line.path_a}"
    right = clean_read(tmp_path)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: noisy
          transport: {{serial: {{device: {line.path_b}, baud: {BAUD}}}}}
          timeout: 0.3
          retries: {retries}
          poll: [{{name: fast, interval: 1, objects: [{", ".join(OBJECTS)}]}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/noisy/#"])
    agent = make_agent(config).start()
    try:
        time.sleep(SECONDS)
    finally:
        agent.stop()
        server.stop()
        thread.join(timeout=5)
        line.close()
        watcher.close()
    states = [json.loads(m.payload) for m in watcher.on("dlms/pi/noisy/state")]
    wrong = [(code, value["value"]) for state in states
             for code, value in state["values"].items() if value["value"] != right[code]]
    injected = line.stats.injected
    print(f"{case}: {len(states)} polls published in {SECONDS:g} s; injected {injected}")
    assert injected["bit_flips"] > 0
    assert len(states) >= fewest, f"{len(states)} polls got through, expected {fewest}+"
    assert {code for state in states for code in state["values"]} == set(OBJECTS)
    assert not wrong, wrong[:10]
