"""Meters on one RS-485 bus (a pty pair; stations at physical 16, 17 and 18, and a
configured meter at 19 that never answers).

The simulator's tap sees every frame on the line: the agent must never start a
transaction with one station while another's is open, every present meter is published,
and the silent one is reported unreachable without stopping the others.
"""

from __future__ import annotations

import json
import threading

import pytest
from daemon_harness import WAIT, Subscriber, make_agent, write_config

from edge_agent.dlms.link.hdlc.frame import FrameSplitter, HdlcFrame
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.pty import PtyPair

PHYSICAL = (16, 17, 18)
ABSENT = 19  # configured, but no station answers there
POWER = "1.0.1.7.0.255"
SERIAL = "0.0.96.1.0.255"


class LineLog:
    """Frames on the line as (direction, station physical address), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self._splitter = FrameSplitter()
        self._lock = threading.Lock()

    def __call__(self, direction: str, data: bytes) -> None:
        with self._lock:
            if direction == "rx":  # requests from the agent: the station is the destination
                for frame in self._splitter.feed(data):
                    if isinstance(frame, HdlcFrame):
                        self.events.append(("rx", frame.destination.lower))
            else:  # one whole frame per call: the station is the source
                frame, _ = HdlcFrame.decode(data)
                self.events.append(("tx", frame.source.lower))


@pytest.fixture
def bus():
    pair = PtyPair()
    stations = [SimulatedMeterStation(SimulatorOptions(physical=p, seed=p)) for p in PHYSICAL]
    line = LineLog()
    server = MeterServer([s.station for s in stations], tap=line)
    thread = threading.Thread(target=server.serve_serial, args=(pair.path_a,), daemon=True)
    thread.start()
    yield pair.path_b, stations, line
    server.stop()
    thread.join(timeout=2)
    pair.close()


def test_three_meters_on_one_bus(tmp_path, mosquitto, bus) -> None:
    device, stations, line = bus
    meters = "".join(f"""\
- id: flat-{p}
  transport: {{bus: rs485}}
  addresses: {{physical: {p}}}
  timeout: 2
""" for p in PHYSICAL) + f"""\
- id: flat-{ABSENT}
  transport: {{bus: rs485}}
  addresses: {{physical: {ABSENT}}}
  timeout: 0.3
"""
    config = write_config(tmp_path, mosquitto, meters, extra=f"""\
        buses:
          - {{id: rs485, device: {device}, rs485: false}}
        poll:
          - {{name: fast, interval: 1, objects: [{POWER}, {SERIAL}]}}
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/+/state",
                                                          "dlms/pi/+/health"])
    agent = make_agent(config).start()
    try:
        assert len(agent.lanes) == 1  # one line: one lane for the three meters
        assert watcher.wait_for(lambda ms: all(
            len(watcher.on(f"dlms/pi/flat-{p}/state")) >= 3 for p in PHYSICAL)
            and watcher.on(f"dlms/pi/flat-{ABSENT}/health"), WAIT)
    finally:
        assert agent.stop()
        watcher.close()
    # each meter's values come from its own station
    for p, station in zip(PHYSICAL, stations):
        state = json.loads(watcher.on(f"dlms/pi/flat-{p}/state")[-1].payload)
        assert state["values"][SERIAL]["value"] == station.model.serial
        assert isinstance(state["values"][POWER]["value"], (int, float))
    assert len({s.model.serial for s in stations}) == 3
    absent = json.loads(watcher.on(f"dlms/pi/flat-{ABSENT}/health")[0].payload)
    assert absent["code"] == "unreachable" and f"1/{ABSENT}" in absent["message"]
    assert not watcher.on(f"dlms/pi/flat-{ABSENT}/state")
    # never two transactions at once: every request is answered by its own station
    # before a frame goes to another one
    events = line.events
    assert len(events) > 30
    open_with = None
    for direction, station in events:
        if direction == "rx" and station == ABSENT:  # never answered: opens nothing
            assert open_with is None, f"overlap: {open_with} and {station}"
        elif direction == "rx":
            assert open_with in (None, station), f"overlap: {open_with} and {station}"
            open_with = station
        else:
            assert station == open_with
            open_with = None
    # fairness: the three meters took turns
    served = [s for d, s in events if d == "rx"]
    assert served.count(ABSENT) >= 4  # SNRM and its retransmissions
    counts = [served.count(p) for p in PHYSICAL]
    assert max(counts) - min(counts) <= max(counts) // 3 + 4
