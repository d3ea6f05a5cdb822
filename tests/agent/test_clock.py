"""The meter's clock on MQTT, and clock_sync: a simulated meter over TCP, a real Mosquitto.

The simulator and the agent share one injected world clock, so the drift the agent
publishes is exactly the offset the test gives the meter's clock: its sign says who is
ahead. clock_sync moves the meter's clock only within its bounds, and never when the
meter handles daylight saving otherwise than configured.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
import zoneinfo
from pathlib import Path

import pytest
from daemon_harness import Subscriber, WorldClock, make_agent, write_config

from edge_agent.agent.clock_and_events import ClockWatch, ZoneSeason, plan_sync
from edge_agent.agent.config import load_config
from edge_agent.agent.config_model import ClockConfig, ClockSyncConfig, EventsConfig
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.clock import CLOCK, ClockReading, shifted_time, status_names
from edge_agent.dlms.encoding.date_time import ClockStatus, CosemDateTime
from edge_agent.dlms.errors import ConfigError
from edge_agent.dlms.secret import Secret
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

pytestmark = pytest.mark.timeout(90)

START = dt.datetime(2026, 3, 10, 12, 0, 0, tzinfo=dt.UTC)  # winter time in the meter's zone
TOPIC = "dlms/pi/kitchen/clock"
EVENT_TOPIC = "dlms/pi/kitchen/event"




@pytest.fixture(autouse=True)
def host_next_to_the_meter(monkeypatch):
    """The host's zone is the simulated meter's (Vienna rules): without a configured
    ``timezone`` the agent compares the meter's summer time with the host's, and a test
    must not depend on where it runs."""
    monkeypatch.setenv("TZ", "Europe/Vienna")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def clock() -> WorldClock:
    return WorldClock(START)


@pytest.fixture
def meter(clock):
    station = SimulatedMeterStation(SimulatorOptions(seed=3), clock=clock)
    server = MeterServer([station.station], idle_timeout=120.0)
    _, port = server.start_tcp("127.0.0.1", 0)
    yield station, port
    server.stop()


def management(tmp_path: Path) -> str:
    """The simulator's management client (SAP 1, LLS): it may shift the clock."""
    password = tmp_path / "lls"
    password.write_text("00000000")
    os.chmod(password, 0o600)
    return f"""  addresses: {{client: 1}}
  security: {{auth: low, keys: {{password: {{file: {password}}}}}}}
"""


def config(tmp_path, broker, port: int, extra: str = "", client: str = "") -> Path:
    return write_config(tmp_path, broker, f"""\
- id: kitchen
  transport: {{tcp: "127.0.0.1:{port}"}}
  poll: []
  events: false
{client}{extra}""")


def clock_message(tmp_path, broker, port: int, clock: WorldClock, extra: str = "",
                  client: str = "") -> tuple[dict, Subscriber]:
    """Run the agent until it published the clock once; its payload, and the watcher."""
    watcher = Subscriber(broker.host, broker.port, ["dlms/#"])
    agent = make_agent(config(tmp_path, broker, port, extra, client),
                       wall_clock=clock.posix).start()
    try:
        assert watcher.wait_for(lambda ms: any(m.topic == TOPIC for m in ms))
    finally:
        agent.stop(timeout=5.0)
    (message,) = watcher.on(TOPIC)
    assert message.qos == 1
    late = Subscriber(broker.host, broker.port, [TOPIC])  # retained: a late subscriber has it
    try:
        assert late.wait_for(lambda ms: bool(ms))
    finally:
        late.close()
    assert late.messages[0].retain and late.messages[0].payload == message.payload
    return json.loads(message.payload), watcher


@pytest.mark.mosquitto
@pytest.mark.parametrize("offset", [20, -45])
def test_drift_is_meter_minus_agent(tmp_path, mosquitto, meter, clock, offset: int) -> None:
    station, port = meter
    station.model.meter.clock_offset = dt.timedelta(seconds=offset)
    payload, watcher = clock_message(tmp_path, mosquitto, port, clock)
    watcher.close()
    assert payload["drift"] == offset  # positive: the meter is ahead
    assert payload["agent_time"] == payload["ts"] == "2026-03-10T12:00:00Z"
    meter_time = START + dt.timedelta(seconds=offset)
    assert payload["meter_time"] == meter_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Vienna-like winter time: local = UTC + 1 h, deviation -60 (UTC = local + deviation).
    assert payload["meter_local_time"] == (meter_time + dt.timedelta(hours=1)).replace(
        tzinfo=None).isoformat()
    assert payload["deviation"] == -60 and payload["time_zone"] == -60
    assert payload["status"] == [] and payload["status_raw"] == 0
    assert payload["daylight_saving"]["enabled"] is True
    assert payload["daylight_saving"]["active"] is False
    assert payload["daylight_saving"]["deviation"] == 60
    assert payload["clock_base"] == "internal_crystal"
    assert payload["sync"] == {"enabled": False}
    assert station.model.meter.clock_offset == dt.timedelta(seconds=offset)  # untouched


@pytest.mark.mosquitto
def test_summer_time_shows_in_status_and_deviation(tmp_path, mosquitto, meter, clock) -> None:
    _, port = meter
    clock.now = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
    payload, watcher = clock_message(tmp_path, mosquitto, port, clock)
    watcher.close()
    assert payload["status"] == ["daylight_saving_active"] and payload["status_raw"] == 0x80
    assert payload["deviation"] == -120 and payload["daylight_saving"]["active"] is True
    assert payload["meter_local_time"] == "2026-07-01T12:00:00" and payload["drift"] == 0


@pytest.mark.mosquitto
def test_sync_shifts_the_clock_within_bounds_and_the_meter_logs_it(tmp_path, mosquitto, meter,
                                                                   clock) -> None:
    station, port = meter
    station.model.meter.clock_offset = dt.timedelta(seconds=17)
    extra = "  clock_sync: {max_step: 30s}\n  events: {backfill: 1h}\n"
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    text = config(tmp_path, mosquitto, port, extra, management(tmp_path)).read_text()
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("  events: false\n", ""))
    agent = make_agent(path, wall_clock=clock.posix).start()
    try:
        assert watcher.wait_for(lambda ms: any(m.topic == TOPIC for m in ms))
        # The events run after the clock in the same turn: the meter's own record of it.
        assert watcher.wait_for(lambda ms: sum(m.topic == EVENT_TOPIC for m in ms) >= 2)
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    payload = json.loads(watcher.on(TOPIC)[0].payload)
    assert payload["drift"] == 17
    assert payload["sync"] == {"enabled": True, "result": "shifted", "step": -17,
                               "message": "shift_time by -17 s"}
    assert station.model.meter.clock_offset == dt.timedelta(0)
    events = [json.loads(m.payload) for m in watcher.on(EVENT_TOPIC)]
    assert [(e["code"], e["name"], e["ts"]) for e in events] == [
        (4, "clock_adjusted_old_time", "2026-03-10T12:00:17Z"),
        (5, "clock_adjusted_new_time", "2026-03-10T12:00:00Z")]


@pytest.mark.mosquitto
def test_sync_leaves_a_drift_beyond_max_step_alone(tmp_path, mosquitto, meter, clock) -> None:
    station, port = meter
    station.model.meter.clock_offset = dt.timedelta(seconds=-95)
    payload, watcher = clock_message(tmp_path, mosquitto, port, clock,
                                     "  clock_sync: {max_step: 1m}\n", management(tmp_path))
    watcher.close()
    assert payload["drift"] == -95
    assert payload["sync"]["result"] == "out_of_bounds" and payload["sync"]["step"] is None
    assert "exceeds max_step 60 s" in payload["sync"]["message"]
    assert station.model.meter.clock_offset == dt.timedelta(seconds=-95)
    assert not station.model.meter.recorded_events


@pytest.mark.mosquitto
def test_sync_never_touches_a_meter_that_handles_dst_otherwise(tmp_path, mosquitto, meter,
                                                               clock) -> None:
    """The meter does not switch to summer time itself (daylight_savings_enabled false)
    but the config says it does: no sync, whatever the drift."""
    station, port = meter
    station.model.meter.eu_dst = False
    station.model.meter.clock_offset = dt.timedelta(seconds=10)
    payload, watcher = clock_message(tmp_path, mosquitto, port, clock,
                                     "  clock_sync: {max_step: 30s}\n", management(tmp_path))
    watcher.close()
    assert payload["daylight_saving"]["enabled"] is False
    assert payload["sync"]["result"] == "refused"
    assert "daylight_savings_enabled false" in payload["sync"]["message"]
    assert station.model.meter.clock_offset == dt.timedelta(seconds=10)


@pytest.mark.mosquitto
def test_sync_refused_without_the_right_to_shift(tmp_path, mosquitto, meter, clock) -> None:
    """The public client may read the clock but neither shift nor write it."""
    station, port = meter
    station.model.meter.clock_offset = dt.timedelta(seconds=10)
    payload, watcher = clock_message(tmp_path, mosquitto, port, clock,
                                     "  clock_sync: {max_step: 30s}\n")
    watcher.close()
    assert payload["sync"]["result"] == "refused" and "shift_time" in payload["sync"]["message"]
    assert station.model.meter.clock_offset == dt.timedelta(seconds=10)


# --- the decision, without a meter -----------------------------------------------------


def reading(status: int = 0, enabled: bool | None = True) -> ClockReading:
    return ClockReading(CosemDateTime(2026, 3, 10, 2, 13, 0, 5, 0, -60, status),
                        status=status, daylight_savings_enabled=enabled)


SYNC = ClockSyncConfig(max_step=30.0, min_step=2.0, daylight_saving=True)


@pytest.mark.parametrize(("drift", "result", "step"), [
    (1.4, "in_tolerance", None), (-1.9, "in_tolerance", None), (2.0, "shift", -2),
    (-12.6, "shift", 13), (30.0, "shift", -30), (30.5, "out_of_bounds", None),
    (-400.0, "out_of_bounds", None)])
def test_plan_sync_bounds_and_sign(drift: float, result: str, step: int | None) -> None:
    plan = plan_sync(reading(), drift, SYNC, may_shift=True, may_write=True)
    assert (plan.result, plan.step) == (result, step)


def test_plan_sync_writes_the_time_when_it_may_not_shift() -> None:
    plan = plan_sync(reading(), 5.0, SYNC, may_shift=False, may_write=True)
    assert (plan.result, plan.step) == ("set", -5)


@pytest.mark.parametrize(("status", "enabled", "configured", "why"), [
    (0, False, True, "does not switch"),
    (0, True, False, "switches"),
    (ClockStatus.DAYLIGHT_SAVING_ACTIVE, None, False, "daylight saving is active"),
    (ClockStatus.INVALID_VALUE, True, True, "invalid_value"),
    (ClockStatus.DOUBTFUL_VALUE, True, True, "doubtful_value"),
])
def test_plan_sync_refuses(status: int, enabled: bool | None, configured: bool,
                           why: str) -> None:
    sync = ClockSyncConfig(max_step=30.0, daylight_saving=configured)
    plan = plan_sync(reading(status, enabled), 5.0, sync, may_shift=True, may_write=True)
    assert plan.result == "refused" and plan.step is None and why in plan.message


VIENNA = ZoneSeason.at(START, zoneinfo.ZoneInfo("Europe/Vienna"))


@pytest.mark.parametrize(("active", "summer", "refused"), [
    (True, True, False), (False, False, False), (True, False, True), (False, True, True)])
def test_plan_sync_refuses_a_dst_bit_the_configured_zone_disagrees_with(
        active: bool, summer: bool, refused: bool) -> None:
    """``daylight_saving: true``: the status bit "daylight saving active" must say what
    the configured zone says at that moment (summer or standard time)."""
    status = ClockStatus.DAYLIGHT_SAVING_ACTIVE if active else 0
    season = ZoneSeason(summer, "Europe/Vienna (CEST)" if summer else "Europe/Vienna (CET)")
    plan = plan_sync(reading(status), 5.0, SYNC, may_shift=True, may_write=True,
                     season=season)
    if not refused:
        assert (plan.result, plan.step) == ("shift", -5)
        return
    assert plan.result == "refused" and plan.step is None
    assert f"daylight saving is {'active' if active else 'not active'}" in plan.message
    assert season.name in plan.message
    assert f"in {'summer' if summer else 'standard'} time" in plan.message


@pytest.mark.parametrize("summer", [True, False])
def test_plan_sync_a_status_not_specified_says_nothing_about_summer_time(summer: bool) -> None:
    unspecified = ClockReading(CosemDateTime(2026, 3, 10, 2, 13, 0, 5, 0, -60, None),
                               status=None, daylight_savings_enabled=True)
    assert unspecified.daylight_saving_active is None
    plan = plan_sync(unspecified, 5.0, SYNC, may_shift=True, may_write=True,
                     season=ZoneSeason(summer, "Europe/Vienna"))
    assert (plan.result, plan.step) == ("shift", -5)


def test_zone_season_follows_the_zone_rules() -> None:
    assert VIENNA.summer is False and VIENNA.name == "Europe/Vienna (CET)"
    july = ZoneSeason.at(dt.datetime(2026, 7, 1, tzinfo=dt.UTC), zoneinfo.ZoneInfo("Europe/Vienna"))
    assert july.summer is True and july.name == "Europe/Vienna (CEST)"
    assert ZoneSeason.at(dt.datetime(2026, 7, 1, tzinfo=dt.UTC), dt.UTC).summer is False
    host = ZoneSeason.at(dt.datetime(2026, 7, 1, tzinfo=dt.UTC), None)
    assert host.name.startswith("the host's zone (")


@pytest.mark.mosquitto
@pytest.mark.parametrize(("zone", "result"), [("Europe/Vienna", "shifted"), ("UTC", "refused"),
                                              ("Australia/Sydney", "refused")])
def test_sync_only_when_the_meters_summer_time_matches_the_configured_zone(
        tmp_path, mosquitto, meter, clock, zone: str, result: str) -> None:
    """In July the simulated meter (Vienna rules) sets its status bit "daylight saving
    active". Configured in Vienna it is shifted; configured in UTC (never summer time) or
    Sydney (winter in July) it is left alone, the message naming both sides."""
    station, port = meter
    clock.now = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
    station.model.meter.clock_offset = dt.timedelta(seconds=12)
    extra = ("  clock_sync: {max_step: 30s}\n"
             f"  profiles: [{{obis: 1.0.99.1.0.255, interval: 1d, backfill: 1h, "
             f"timezone: {zone}}}]\n")
    payload, watcher = clock_message(tmp_path, mosquitto, port, clock, extra,
                                     management(tmp_path))
    watcher.close()
    assert payload["status"] == ["daylight_saving_active"]
    assert payload["sync"]["result"] == result
    if result == "shifted":
        assert station.model.meter.clock_offset == dt.timedelta(0)
    else:
        message = payload["sync"]["message"]
        assert "daylight saving is active" in message and f"zone {zone} (" in message
        assert "in standard time" in message
        assert station.model.meter.clock_offset == dt.timedelta(seconds=12)


def test_status_names_follow_the_blue_book_bits() -> None:
    assert status_names(None) is None
    assert status_names(0x85) == ["invalid_value", "different_clock_base",
                                  "daylight_saving_active"]


# --- config ------------------------------------------------------------------------------


METER = "- id: m\n  transport: {tcp: \"127.0.0.1:4059\"}\n"


def load(tmp_path: Path, meter_lines: str):
    path = tmp_path / "c.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\nmeters:\n{meter_lines}")
    return load_config(path)


def test_clock_and_events_are_on_and_sync_off_by_default(tmp_path) -> None:
    (meter,) = load(tmp_path, METER).meters
    assert meter.clock == ClockConfig(3600.0, None)
    assert meter.events == EventsConfig(900.0, 86400.0, None)


def test_clock_sync_and_intervals_parse(tmp_path) -> None:
    (meter,) = load(tmp_path, METER + "  clock: {interval: 10m}\n"
                    "  clock_sync: {max_step: 30s, min_step: 5, daylight_saving: false}\n"
                    "  events: {interval: 1h, backfill: 7d, logs: [0.0.99.98.0.255]}\n").meters
    assert meter.clock == ClockConfig(600.0, ClockSyncConfig(30.0, 5.0, False))
    assert meter.events == EventsConfig(3600.0, 7 * 86400.0, ("0.0.99.98.0.255",))


def test_clock_and_events_switch_off(tmp_path) -> None:
    (meter,) = load(tmp_path, METER + "  clock: false\n  events: off\n").meters
    assert meter.clock is None and meter.events is None


@pytest.mark.parametrize(("lines", "key", "says"), [
    ("  clock_sync: {max_step: 20m}\n", "meters[0].clock_sync.max_step", "at most 900 s"),
    ("  clock_sync: {}\n", "meters[0].clock_sync.max_step", "required"),
    ("  clock_sync: {max_step: 10s, min_step: 20s}\n", "meters[0].clock_sync.min_step",
     "above max_step"),
    ("  clock: false\n  clock_sync: {max_step: 10s}\n", "meters[0].clock_sync",
     "needs the clock read"),
    ("  clock_sync: {max_step: soon}\n", "meters[0].clock_sync.max_step", "10s, 5m"),
    ("  clock_sync: {max_step: 10s, daylight_savings: true}\n",
     "meters[0].clock_sync.daylight_savings", "did you mean 'daylight_saving'"),
    ("  clock: 1h\n", "meters[0].clock", "expected a mapping ({interval: 1h})"),
    ("  events: {logs: [not-obis]}\n", "meters[0].events.logs", "OBIS"),
    ("  events: {interval: 1s}\n", "meters[0].events.interval", ">= 10"),
])
def test_config_errors_name_the_key_and_the_fix(tmp_path, lines: str, key: str,
                                                says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, METER + lines)
    problems = caught.value.problems  # type: ignore[attr-defined]
    assert any(p.startswith(f"{key}:") and says in p for p in problems), problems


def test_a_push_only_meter_cannot_have_a_clock(tmp_path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "- id: p\n  push: {format: hdlc, port: 5000}\n  clock: {}\n"
                       "  clock_sync: {max_step: 10s}\n")
    problems = caught.value.problems  # type: ignore[attr-defined]
    assert any(p.startswith("meters[0].clock_sync: needs a transport") for p in problems)
    assert any(p.startswith("meters[0].clock: needs a transport") for p in problems)


def test_sync_writes_the_time_where_only_the_write_is_granted(tmp_path, meter, clock) -> None:
    """An association view that grants writing the time (attribute 2) but not shift_time:
    the agent SETs the time read plus the step, with the meter's deviation and status."""
    station, port = meter
    station.model.meter.clock_offset = dt.timedelta(seconds=-8)
    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port), client_sap=1),
                         ClientSettings(authentication="low",
                                        password=Secret(b"00000000", "LLS password")),
                         meter_id="m", state_dir=tmp_path)
    published: list[bytes] = []
    with client:
        view = [dataclasses.replace(e, method_access=()) if e.logical_name == CLOCK else e
                for e in client.object_list()]
        watch = ClockWatch(ClockConfig(sync=ClockSyncConfig(max_step=30.0)), clock.posix, "m")
        assert watch.run(client, view, published.append)
    (payload,) = [json.loads(p) for p in published]
    assert payload["drift"] == -8
    assert payload["sync"] == {"enabled": True, "result": "set", "step": 8,
                               "message": "time set +8 s"}
    assert station.model.meter.clock_offset == dt.timedelta(0)


def test_shifted_time_keeps_deviation_and_status() -> None:
    read = ClockReading(CosemDateTime(2026, 3, 29, 7, 1, 59, 50, None, -60, 0))
    moved = shifted_time(read, 15)
    assert (moved.hour, moved.minute, moved.second, moved.hundredths) == (2, 0, 5, None)
    assert (moved.deviation, moved.status, moved.weekday) == (-60, 0, 7)


@pytest.mark.mosquitto
@pytest.mark.parametrize("timezone", ["Europe/Vienna", None])
def test_a_clock_without_deviation_is_read_in_the_meters_zone(tmp_path, mosquitto, meter,
                                                              clock, timezone) -> None:
    """A meter that leaves the deviation "not specified" shows local time only: with its
    profiles' timezone the drift is right; without, it is read in the host's zone."""
    station, port = meter
    station.model.meter.time_stamp_style = "local"
    zone = f", timezone: {timezone}" if timezone else ""
    payload, watcher = clock_message(
        tmp_path, mosquitto, port, clock,
        f"  profiles: [{{obis: 1.0.99.1.0.255, interval: 1h, backfill: 1h{zone}}}]\n")
    watcher.close()
    assert payload["deviation"] is None and payload["meter_local_time"] == "2026-03-10T13:00:00"
    if timezone:
        assert payload["drift"] == 0
    else:
        host = dt.datetime(2026, 3, 10, 13, 0).astimezone()  # local time in the host's zone
        assert payload["drift"] == (host - START).total_seconds()
