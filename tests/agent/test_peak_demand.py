"""The month's peak demand on MQTT: the simulator's maximum demand register (class 4,
1.0.1.6.0.255) published with its capture time as ``ts``; the register itself checked
against the meter's own load profile (the largest 15-minute energy step, times four)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from zoneinfo import ZoneInfo

import pytest
from daemon_harness import Subscriber, WorldClock, make_agent, write_config

from edge_agent.agent.config_model import ProfileConfig
from edge_agent.agent.load_profile_feed import ProfileFeed, ProfileRow
from edge_agent.agent.peak_demand import Peak, ProfilePeak, captured_at
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.client.load_profile import ProfileReader
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.simulator.loadprofile import CaptureObject, Column
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.state.facts import FactStore

pytestmark = pytest.mark.timeout(90)

NOW = dt.datetime(2026, 3, 20, 9, 7, 30, tzinfo=dt.UTC)
PEAK = "1.0.1.6.0.255"
ENERGY = "1.0.1.8.0.255"




@pytest.fixture
def meter():
    clock = WorldClock(NOW)
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


@pytest.mark.mosquitto
def test_without_the_register_the_peak_comes_from_the_load_profile(tmp_path, mosquitto,
                                                                   meter) -> None:
    """The register is not polled: the agent computes the month's peak from the profile
    rows it publishes, on the register's topic, and it equals the meter's own register."""
    station, port, clock = meter
    expected = station.model.maximum_demand.peak(station.model.meter.now())
    config = write_config(tmp_path, mosquitto, f"""\
- id: kitchen
  transport: {{tcp: "127.0.0.1:{port}"}}
  poll: [{{name: fast, interval: 1h, objects: [{ENERGY}]}}]
  profiles: [{{obis: 1.0.99.1.0.255, interval: 1h, backfill: 25d}}]
  clock: false
  events: false
""")
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    newest = b'"ts":"2026-03-20T09:00:00Z"'  # the last capture before NOW: caught up
    agent = make_agent(config, wall_clock=clock.posix).start()
    try:
        assert watcher.wait_for(lambda ms: any(m.topic.startswith("dlms/pi/kitchen/profile/")
                                               and newest in m.payload for m in ms),
                                timeout=60.0)
        assert watcher.wait_for(lambda ms: any(m.topic == f"dlms/pi/kitchen/{PEAK}"
                                               for m in ms))
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    last = json.loads(watcher.on(f"dlms/pi/kitchen/{PEAK}")[-1].payload)
    assert abs(last["value"] - expected.watts) <= 8 and last["unit"] == "W"
    assert last["ts"] == expected.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "load profile" in last["name"]
    info = json.loads(watcher.on("dlms/pi/kitchen/info")[-1].payload)
    (listed,) = [o for o in info["objects"] if o["obis"] == PEAK]
    assert (listed["class_id"], listed["device_class"], listed["state_class"]) == (
        7, "power", "measurement")


@dataclasses.dataclass(frozen=True)
class Row:
    ts: dt.datetime
    values: dict
    units: dict


def rows_of(start: dt.datetime, energies: list[float | None], step_minutes: int = 15,
            unit: str = "Wh") -> list[Row]:
    return [Row(start + dt.timedelta(minutes=step_minutes * i),
                {ENERGY: e} if e is not None else {}, {ENERGY: unit})
            for i, e in enumerate(energies)]


def test_profile_peak_is_the_largest_step_times_four_per_month() -> None:
    tracker = ProfilePeak(dt.UTC)
    start = dt.datetime(2026, 3, 31, 23, 0, tzinfo=dt.UTC)
    rows = rows_of(start, [1000, 1100, 1400, 1450, None, 1500, 1510, 1600])
    state, peak = tracker.observe(None, rows)
    # 23:00-23:15 +100 Wh, 23:15-23:30 +300 Wh (1200 W), 23:30-23:45 +50; no row at 00:00,
    # so 00:00-00:15 has no start; April begins with 00:15-00:30 +10 Wh, then +90 Wh.
    assert peak == Peak(360.0, start + dt.timedelta(minutes=105))
    assert state["month"] == "2026-04"
    # The same rows in two calls, carried by the state, give the same result.
    first, _ = tracker.observe(None, rows[:3])
    again, peak_again = tracker.observe(first, rows[3:])
    assert again == state and peak_again == peak
    # Nothing higher: no new peak to publish.
    state, none = tracker.observe(state, rows_of(start + dt.timedelta(hours=2), [1610, 1620]))
    assert none is None and state["watts"] == 360.0


def test_profile_peak_ignores_other_periods_and_converts_units() -> None:
    tracker = ProfilePeak(dt.UTC)
    start = dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)
    assert tracker.observe(None, rows_of(start, [1000, 3000, 9000], step_minutes=60))[1] \
        is None  # hourly rows are not 15-minute averages
    _, peak = tracker.observe(None, rows_of(start, [1.0, 1.5], unit="kWh"))
    assert peak == Peak(2000.0, start + dt.timedelta(minutes=15))


# --- a profile that captures the tariff registers only ---------------------------------------

T1, T2 = "1.0.1.8.1.255", "1.0.1.8.2.255"


def test_without_the_total_the_import_tariffs_are_summed() -> None:
    tracker = ProfilePeak(dt.UTC)
    start = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
    step = dt.timedelta(minutes=15)
    # Tariff 1 runs, then tariff 2 takes over: each register alone rises by at most
    # 200 Wh a period, their sum by 300 Wh (1200 W) in the period that ends at 06:30.
    t1 = [1000, 1200, 1300, 1300, 1300]
    t2 = [5000, 5000, 5200, 5350, 5450]
    rows = [Row(start + i * step, {T1: a, T2: b}, {T1: "Wh", T2: "Wh"})
            for i, (a, b) in enumerate(zip(t1, t2))]
    _, peak = tracker.observe(None, rows)
    assert peak == Peak(1200.0, start + 2 * step)
    # Units per register: a tariff in kWh counts as 1000 Wh each.
    mixed = [Row(r.ts, {T1: r.values[T1] / 1000, T2: r.values[T2]}, {T1: "kWh", T2: "Wh"})
             for r in rows]
    assert tracker.observe(None, mixed)[1] == peak
    # The export tariffs (1.0.2.8.x) and other channels are not import.
    export = [Row(r.ts, {**r.values, "1.0.2.8.1.255": 10**6 * i}, {**r.units,
                                                                  "1.0.2.8.1.255": "Wh"})
              for i, r in enumerate(rows)]
    assert tracker.observe(None, export)[1] == peak
    # A row whose tariff value is missing ends the run: the next period has no start.
    broken = [*rows[:2], Row(rows[2].ts, {T1: None, T2: 5200}, rows[2].units), *rows[3:]]
    assert tracker.observe(None, broken)[1] == Peak(800.0, start + step)
    # With the total captured, the total counts and the tariffs are not added to it.
    total = [Row(r.ts, {**r.values, ENERGY: 100 * i}, {**r.units, ENERGY: "Wh"})
             for i, r in enumerate(rows)]
    assert tracker.observe(None, total)[1] == Peak(400.0, start + step)


def test_a_profile_of_tariff_registers_gives_the_meters_own_peak(tmp_path, meter) -> None:
    """The simulated load profile captures 1.0.1.8.1.255 and 1.0.1.8.2.255 instead of the
    total: the peak computed from the rows the feed publishes equals the meter's own
    maximum demand register (the total's 15-minute steps, times four)."""
    station, port, clock = meter
    model = station.model
    buffer = model.load_profile

    def register(obis: str) -> Column:
        value = model.register_values[bytes(Obis.parse(obis))]
        return Column(CaptureObject(3, bytes(Obis.parse(obis)), 2),
                      lambda t, r: value(model.meter.to_world(t)))

    buffer.columns = (buffer.columns[0], register(T1), register(T2))
    expected = model.maximum_demand.peak(model.meter.now())
    feed = ProfileFeed(FactStore(tmp_path / "state"), "kitchen", clock.posix)
    rows: list[ProfileRow] = []
    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="kitchen", state_dir=tmp_path / "client")
    with client:
        feed.collect(client, ProfileConfig("1.0.99.1.0.255", 900.0, 20 * 86400.0),
                     lambda obis, chunk: rows.extend(chunk))
    assert rows and all(set(r.values) == {T1, T2} for r in rows)
    state, peak = ProfilePeak(ZoneInfo("Europe/Vienna")).observe(None, rows)
    assert state["month"] == "2026-03" and peak is not None
    # Whole Wh per register: the sum of two steps is off by under 2 Wh, times four.
    assert abs(peak.watts - expected.watts) < 8
    assert peak.at == expected.at
