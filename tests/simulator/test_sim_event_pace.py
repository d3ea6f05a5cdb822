"""An event log that grows while the simulator runs (``--events-every``), and the clock's
daylight-saving status bit."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sim_io import CLI, cli, simulator
from sim_support import START, make, request

from edge_agent import children
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.interface_classes import entry_descriptor
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.date_time import date_time_from_octets
from edge_agent.dlms.secret import Secret
from edge_agent.simulator.event_log import (
    CAPACITY,
    EVENT_LOG_LN,
    PACED_EVENTS,
    EventCode,
    EventPace,
    parse_every,
)
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.meter_models import ln

pytestmark = pytest.mark.timeout(60)

PACED_CODES = {code for group in PACED_EVENTS for code in group}
LOG = Obis.parse("0.0.99.98.0.255")
ENTRIES_IN_USE = 7


def rows(sim) -> list[tuple[datetime, int]]:
    buffer = sim.objects[EVENT_LOG_LN].attributes[2].get(request(sim))
    return [(date_time_from_octets(r[0]).to_datetime().astimezone(UTC), int(r[1]))
            for r in buffer]


# --- the pace -----------------------------------------------------------------------------


def test_paced_events_come_at_multiples_of_the_interval_after_the_start() -> None:
    sim, clock = make(seed=5)
    before = rows(sim)
    sim.meter.event_pace = EventPace.starting(START, 600)
    assert rows(sim) == before  # nothing before the start
    clock.advance(minutes=35)  # 12:07:30 -> 12:42:30 UTC: grid points 12:10 .. 12:40
    after = rows(sim)
    new = after[len(after) - 6:]
    assert after[:len(after) - 6] == before[6:]  # the full log lost its six oldest
    # Grid points counted from the installation (2014-12-31 23:00 UTC): 12:10 is an odd one.
    assert [(when.strftime("%H:%M:%S"), code) for when, code in new] == [
        ("12:10:00", 11), ("12:20:00", 4), ("12:20:00", 5), ("12:30:00", 11),
        ("12:40:00", 4), ("12:40:00", 5)]
    # Nothing measured or kept changes: the clock runs on, nothing is recorded.
    assert sim.meter.clock_offset == timedelta(0) and sim.meter.recorded_events == []


def test_the_pace_is_deterministic_and_keeps_the_capacity() -> None:
    first, clock_one = make(seed=5)
    second, clock_two = make(seed=5)
    for sim, clock in ((first, clock_one), (second, clock_two)):
        sim.meter.event_pace = EventPace.starting(START, 60)
        clock.advance(hours=5)
    logged = rows(first)
    assert logged == rows(second) and len(logged) == CAPACITY
    assert {code for _, code in logged} <= PACED_CODES  # 300 grid points: only those left
    assert [when for when, _ in logged] == sorted(when for when, _ in logged)


def test_a_cleared_log_fills_again_from_the_clearing_on() -> None:
    sim, clock = make(seed=5)
    sim.meter.event_pace = EventPace.starting(START, 600)
    log = sim.objects[EVENT_LOG_LN]
    clock.advance(minutes=5)
    log.methods[1](request(sim), 0)  # reset (Blue Book 4.3.6 method 1)
    assert [code for _, code in rows(sim)] == [EventCode.EVENT_LOG_CLEARED]
    clock.advance(minutes=20)
    assert [code for _, code in rows(sim)] == [EventCode.EVENT_LOG_CLEARED, 4, 5, 11]


def test_off_by_default_in_the_library_and_ten_minutes_on_the_command_line() -> None:
    assert SimulatedMeterStation(SimulatorOptions()).model.meter.event_pace is None
    result = cli("simulate", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--events-every DURATION" in text and "default 10m; 0: off" in text


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0), ("90", 90.0), ("30s", 30.0), ("10m", 600.0), ("2min", 120.0), ("1h", 3600.0),
    ("1d", 86400.0), ("0.5s", 0.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("", "30s, 10m"), ("ten", "30s, 10m"), ("5w", "30s, 10m"), ("-1m", "30s, 10m"),
    ("0.001", "more often than every 0.01 s")])
def test_bad_durations_say_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_every(text)


# --- over TCP, in real time ---------------------------------------------------------------


def management_client(port: int, tmp_path: Path) -> MeterClient:
    """The management client (SAP 1, LLS): the event log is in its view."""
    return MeterClient(ConnectionSettings(tcp=("127.0.0.1", port), client_sap=1),
                       ClientSettings(authentication="low",
                                      password=Secret(b"00000000", "LLS password")),
                       meter_id="m", state_dir=tmp_path)


def test_entries_in_use_grow_over_a_tcp_session_while_the_simulator_runs(tmp_path) -> None:
    """A meter installed the day before (its log holds a few events, not 100) on a clock
    that runs in real time, an event every 0.2 s: one association sees the log grow."""
    started = time.monotonic()
    world = datetime(2015, 1, 2, 12, 0, tzinfo=UTC)
    station = SimulatedMeterStation(
        SimulatorOptions(events_every=0.2),
        clock=lambda: world + timedelta(seconds=time.monotonic() - started))
    with simulator(station=station) as (_, _, port), management_client(port, tmp_path) as client:
        first = int(client.get(LOG, 7, ENTRIES_IN_USE))
        time.sleep(1.5)
        second = int(client.get(LOG, 7, ENTRIES_IN_USE))
        newest = client.get(LOG, 7, 2, entry_descriptor(second, second))
    elapsed = time.monotonic() - started
    assert first < CAPACITY
    # 1.5 s at one grid point per 0.2 s: 7 or 8 points, 1 or 2 events each.
    assert 10 <= second - first <= min(int(elapsed / 0.2) * 2 + 2, CAPACITY - first)
    assert int(newest[0][1]) in PACED_CODES


def test_the_command_line_option_reaches_the_meter(tmp_path) -> None:
    process = children.spawn([*CLI, "simulate", "--tcp", "127.0.0.1:0", "--events-every", "0.5s",
                              "--state-dir", str(tmp_path / "meter")],
                             stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines = []
    try:
        for line in process.stderr:
            lines.append(line)
            if match := re.search(r"listening on [0-9.]+:(\d+)", line):
                port = int(match.group(1))
                break
        else:
            raise AssertionError("the simulator did not start: " + "".join(lines))
        assert "an event every 0.5 s" in "".join(lines)
        with management_client(port, tmp_path / "client") as client:
            newest = []
            for _ in range(2):
                entries = int(client.get(LOG, 7, ENTRIES_IN_USE))  # 100: a full log
                newest.append(client.get(LOG, 7, 2, entry_descriptor(entries, entries))[0])
                time.sleep(1.1)
    finally:
        children.stop(process)
    (stamp_one, code_one), (stamp_two, code_two) = newest
    assert {int(code_one), int(code_two)} <= PACED_CODES
    assert date_time_from_octets(stamp_two).to_datetime() > \
        date_time_from_octets(stamp_one).to_datetime()


# --- the clock's status ------------------------------------------------------------------


@pytest.mark.parametrize("style", ["full", "local", "bare"])
@pytest.mark.parametrize(("now", "status"), [
    (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), 0x00),
    (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), 0x00),  # 01:59:59 CET
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 0x80),  # 03:00 CEST
    (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), 0x80),
    (datetime(2026, 10, 25, 0, 59, 59, tzinfo=UTC), 0x80),  # 02:59:59 CEST
    (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 0x00),  # 02:00 CET, the hour again
])
def test_the_clock_status_says_daylight_saving_active_in_summer_time(
        now: datetime, status: int, style: str) -> None:
    """Clock attribute 4 (Blue Book 4.5.1, status bit 7): in the meter's summer time
    whatever style its date-times are written in (a "bare" time stamp has no status byte,
    the clock still has a status)."""
    sim, _ = make(profile="generic", now=now)
    sim.meter.time_stamp_style = style
    clock = sim.objects[ln("0.0.1.0.0.255")]
    assert int(clock.attributes[4].get(request(sim))) == status
    if style != "bare":
        time_stamp = date_time_from_octets(clock.attributes[2].get(request(sim)))
        assert time_stamp.status == status
