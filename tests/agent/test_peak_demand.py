"""The month's peak demand on MQTT: the simulator's maximum demand register (class 4,
1.0.1.6.0.255) published with its capture time as ``ts``; the register itself checked
against the meter's own load profile (the largest 15-minute energy step, times four)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading

import pytest
from daemon_harness import Subscriber, make_agent, write_config

from edge_agent.agent.peak_demand import captured_at
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.client.load_profile import ProfileReader
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

pytestmark = pytest.mark.timeout(90)

NOW = dt.datetime(2026, 3, 20, 9, 7, 30, tzinfo=dt.UTC)
PEAK = "1.0.1.6.0.255"
ENERGY = "1.0.1.8.0.255"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self.now

    def posix(self) -> float:
        return self().timestamp()


@pytest.fixture
def meter():
    clock = Clock(NOW)
    station = SimulatedMeterStation(SimulatorOptions(seed=5), clock=clock)
    server = MeterServer([station.station], idle_timeout=120.0)
    _, port = server.start_tcp("127.0.0.1", 0)
    yield station, port, clock
    server.stop()


def test_the_register_is_the_largest_quarter_hour_of_the_month_in_the_profile(
        tmp_path, meter) -> None:
    _, port, _ = meter
    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="m", state_dir=tmp_path)
    with client:
        (peak,) = client.read([Obis.parse(PEAK)])
        captured = client.get(Obis.parse(PEAK), 4, 5)
        # The month began at local midnight of 1 March (UTC+1): 28 Feb 23:00 UTC.
        start = dt.datetime(2026, 2, 28, 23, 0, tzinfo=dt.UTC)
        rows = list(ProfileReader(client).rows(start, NOW))
    assert peak.unit == "W" and peak.class_id == 4
    steps = [((b[ENERGY] - a[ENERGY]) * 4, b["timestamp"]) for a, b in itertools.pairwise(rows)]
    watts, at = max(steps, key=lambda step: step[0])
    # Profile values are whole Wh: one count of each of two rows, times four.
    assert abs(peak.value - watts) <= 8
    assert captured_at(captured) == at


@pytest.mark.mosquitto
def test_peak_demand_is_published_with_its_capture_time(tmp_path, mosquitto, meter) -> None:
    station, port, clock = meter
    expected = station.model.maximum_demand.peak(station.model.meter.now())
    config = write_config(tmp_path, mosquitto, f"""\
- id: kitchen
  transport: {{tcp: "127.0.0.1:{port}"}}
  poll: [{{name: fast, interval: 1h, objects: [{PEAK}, {ENERGY}]}}]
  clock: false
  events: false
""")
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    agent = make_agent(config, wall_clock=clock.posix).start()
    try:
        assert watcher.wait_for(lambda ms: any(m.topic == "dlms/pi/kitchen/state" for m in ms))
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    (message,) = watcher.on(f"dlms/pi/kitchen/{PEAK}")
    payload = json.loads(message.payload)
    assert payload["value"] == round(expected.watts) and payload["unit"] == "W"
    assert payload["ts"] == expected.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert expected.at < NOW - dt.timedelta(minutes=15)  # a capture time, not the read
    energy = json.loads(watcher.on(f"dlms/pi/kitchen/{ENERGY}")[0].payload)
    assert energy["ts"] != payload["ts"]
    info = json.loads(watcher.on("dlms/pi/kitchen/info")[-1].payload)
    (listed,) = [o for o in info["objects"] if o["obis"] == PEAK]
    assert (listed["class_id"], listed["unit"], listed["device_class"],
            listed["state_class"]) == (4, "W", "power", "measurement")
