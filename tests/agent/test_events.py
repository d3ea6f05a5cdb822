"""Event logs on MQTT: a simulated meter over TCP, a real Mosquitto, an injected clock.

The simulator's standard event log (0.0.99.98.0.255) holds its last 100 events: power
failures from its household curve and the clock settings clients made. The agent reads
it by entry from the last event seen; the tests compare what reached the broker with the
meter's own log, computed from the same model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from daemon_harness import (
    Recorder,
    Subscriber,
    WorldClock,
    make_agent,
    payloads,
    wait_until,
    write_config,
)

from edge_agent.agent.clock_and_events import EVENTS_SEEN
from edge_agent.dlms.cosem.event_codes import EVENT_CODES, event_code
from edge_agent.mqtt.queue import QUEUE_FILE
from edge_agent.simulator.event_log import CAPACITY, EventLogSource
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.model import RecordedEvent
from edge_agent.simulator.objects import Request
from edge_agent.simulator.power_failure_log import PowerFailureSource
from edge_agent.simulator.server import MeterServer
from edge_agent.state.facts import FactStore

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

START = dt.datetime(2026, 3, 10, 12, 0, 0, tzinfo=dt.UTC)
LOG = "0.0.99.98.0.255"
TOPIC = "dlms/pi/kitchen/event"




@pytest.fixture
def clock() -> WorldClock:
    return WorldClock(START)


@pytest.fixture
def meter(clock):
    station = SimulatedMeterStation(SimulatorOptions(seed=11), clock=clock)
    server = MeterServer([station.station], idle_timeout=120.0)
    _, port = server.start_tcp("127.0.0.1", 0)
    yield station, port
    server.stop()


def meter_log(station: SimulatedMeterStation) -> list[tuple[str, int]]:
    """The meter's log now, oldest first: (time stamp ISO UTC, code)."""
    meter = station.model.meter
    entries = EventLogSource(meter).entries(Request(meter.now(), meter.world_now(), None))
    return [(e.when.strftime("%Y-%m-%dT%H:%M:%SZ"), e.code) for e in entries]


def config(tmp_path: Path, broker, port: int, backfill: str, logs: str = f"[{LOG}]") -> Path:
    password = tmp_path / "lls"
    password.write_text("00000000")
    os.chmod(password, 0o600)
    return write_config(tmp_path, broker, f"""\
- id: kitchen
  transport: {{tcp: "127.0.0.1:{port}"}}
  addresses: {{client: 1}}
  security: {{auth: low, keys: {{password: {{file: {password}}}}}}}
  poll: []
  clock: false
  events: {{interval: 1h, backfill: {backfill}, logs: {logs}}}
""")


def run_once(path: Path, clock: WorldClock, watcher: Subscriber, total: int) -> list[dict]:
    """Start an agent, wait until the broker has ``total`` events in all, stop it;
    returns the events this agent queued."""
    agent = make_agent(path, wall_clock=clock.posix)
    recorder = Recorder(agent)
    agent.start()
    try:
        assert watcher.wait_for(lambda ms: sum(m.topic == TOPIC for m in ms) >= total), (
            f"expected {total} events, got {len(watcher.on(TOPIC))}")
        # One look per interval (1 h): nothing more comes in this run.
        assert agent.lanes[0].schedule.meters[0].failures == 0
    finally:
        assert agent.stop(timeout=5.0)
    return [json.loads(p) for p in recorder.on(TOPIC)]


def seen(events: list[dict]) -> list[tuple[str, int]]:
    return [(e["ts"], e["code"]) for e in events]


def test_backfill_then_only_new_events_after_restart(tmp_path, mosquitto, meter,
                                                     clock) -> None:
    station, port = meter
    path = config(tmp_path, mosquitto, port, "120d")
    whole = meter_log(station)
    assert len(whole) == CAPACITY  # the log is full: new events push the oldest out
    cutoff = (START - dt.timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = [e for e in whole if e[0] > cutoff]
    assert 3 <= len(expected) < CAPACITY
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    try:
        first = run_once(path, clock, watcher, len(expected))
        assert seen(first) == expected
        received = watcher.on(TOPIC)
        assert all(m.qos == 1 and not m.retain for m in received)
        for event in first:
            assert set(event) == {"ts", "log", "code", "name", "text", "status", "raw"}
            assert event["log"] == LOG and event["status"] == []
            assert event["name"] == event_code(event["code"]).name != "unknown"
            assert event["raw"] == {"0.0.1.0.0.255": event["ts"],
                                    "0.0.96.11.0.255": event["code"]}
        mark = FactStore(tmp_path / "state").get_fact("kitchen", EVENTS_SEEN)[LOG]
        assert mark["entry"] == CAPACITY and mark["event"][1] == expected[-1][1]

        # 90 days later, and a head end set the clock meanwhile: the power failures of
        # those days and the two clock events, each once; none of the first run again.
        clock.advance(dt.timedelta(days=45))
        station.model.meter.set_clock(station.model.meter.now() + dt.timedelta(seconds=30))
        clock.advance(dt.timedelta(days=45))
        later = meter_log(station)
        new = later[later.index(expected[-1]) + 1:]
        assert (clock.now - dt.timedelta(days=45)).strftime("%Y-%m-%d") in \
            " ".join(ts for ts, code in new if code in (4, 5))
        assert len(new) >= 4
        second = run_once(path, clock, watcher, len(expected) + len(new))
        assert seen(second) == new
        assert len(watcher.on(TOPIC)) == len(expected) + len(new)

        # A third start with nothing new publishes nothing.
        third = make_agent(path, wall_clock=clock.posix)
        recorder = Recorder(third)
        schedule = third.lanes[0].schedule.meters[0]
        due = schedule.due["events"]
        third.start()
        try:
            assert wait_until(lambda: schedule.due["events"] > due)  # it looked
        finally:
            assert third.stop(timeout=5.0)
        assert recorder.on(TOPIC) == []
    finally:
        watcher.close()


def test_a_restart_after_the_log_wrapped_past_the_mark_loses_nothing_newer(
        tmp_path, mosquitto, meter, clock) -> None:
    """Away for so long that more than the whole log (100 events) happened: the last event
    seen is gone from the log; the agent publishes the events newer than it (all that the
    log still holds), once."""
    station, port = meter
    path = config(tmp_path, mosquitto, port, "30d")
    before = meter_log(station)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    try:
        first_count = sum(1 for ts, _ in before
                          if ts > (START - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        if first_count:
            run_once(path, clock, watcher, first_count)
        else:  # nothing in the backfill: the mark starts at the newest entry anyway
            agent = make_agent(path, wall_clock=clock.posix).start()
            try:
                assert watcher.wait_for(lambda ms: bool(FactStore(
                    tmp_path / "state").get_fact("kitchen", EVENTS_SEEN)), timeout=10.0)
            finally:
                agent.stop(timeout=5.0)
        clock.advance(dt.timedelta(days=3 * 365))
        after = meter_log(station)
        assert before[-1] not in after  # wrapped past the mark
        again = run_once(path, clock, watcher, first_count + len(after))
        assert seen(again) == after
    finally:
        watcher.close()


def test_every_event_log_of_the_association_view(tmp_path, mosquitto, meter, clock) -> None:
    """``logs: all``: the standard event log and the power failure log (DSMR shape: the
    end of each long power failure and its duration, no code), each event once."""
    station, port = meter
    path = config(tmp_path, mosquitto, port, "400d", logs="all")
    meter_model = station.model.meter
    request = Request(meter_model.now(), meter_model.world_now(), None)
    cutoff = START - dt.timedelta(days=400)
    failures = [f for f in PowerFailureSource(meter_model).entries(request) if f.ended > cutoff]
    standard = [e for e in meter_log(station)
                if e[0] > cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert failures and standard
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    try:
        events = run_once(path, clock, watcher, len(failures) + len(standard))
    finally:
        watcher.close()
    assert seen([e for e in events if e["log"] == LOG]) == standard
    power = [e for e in events if e["log"] == "1.0.99.97.0.255"]
    assert [(e["ts"], e["raw"]["0.0.96.7.19.255"]) for e in power] == [
        (f.ended.strftime("%Y-%m-%dT%H:%M:%SZ"), f.seconds) for f in failures]
    assert all(e["code"] is None and e["name"] == "long_power_failure" for e in power)
    # Each failure also shows in the standard log: power up at the same instant.
    ups = {ts for ts, code in meter_log(station) if code == 2}
    assert {e["ts"] for e in power} <= ups


def test_every_code_of_the_table_has_a_distinct_name() -> None:
    assert len({e.name for e in EVENT_CODES.values()}) == len(EVENT_CODES)
    assert event_code(1).name == "power_down" and event_code(255).name == "event_log_cleared"
    unknown = event_code(240)
    assert unknown.name == "unknown" and "240" in unknown.text


def test_logs_the_association_cannot_read_are_skipped_not_a_problem(tmp_path, mosquitto,
                                                                     meter, clock) -> None:
    """The public client's view has no event log, and the load profile is no event log:
    both are skipped with a warning; the meter stays healthy and its values come."""
    _, port = meter
    path = write_config(tmp_path, mosquitto, f"""\
- id: kitchen
  transport: {{tcp: "127.0.0.1:{port}"}}
  poll: [{{name: fast, interval: 1h, objects: [1.0.1.8.0.255]}}]
  clock: false
  events: {{interval: 1h, logs: [{LOG}, 1.0.99.1.0.255]}}
""")
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    agent = make_agent(path, wall_clock=clock.posix)
    schedule = agent.lanes[0].schedule.meters[0]
    due = schedule.due["events"]
    agent.start()
    try:
        assert wait_until(lambda: schedule.due["events"] > due)  # the events group ran
        assert wait_until(lambda: watcher.on("dlms/pi/kitchen/1.0.1.8.0.255"))
        assert schedule.failures == 0
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    assert not watcher.on(TOPIC)
    assert all(b'"state":"ok"' in m.payload for m in watcher.on("dlms/pi/kitchen/health"))


def test_a_crash_between_the_queue_and_the_facts_repeats_and_skips_nothing(
        tmp_path, mosquitto, meter, clock, monkeypatch) -> None:
    """The events and the log's mark are committed to the durable queue (real SQLite) in
    one transaction; the facts' copy comes after. An agent that died in between (the
    facts never written) is restarted: the events it queued are not published again, and
    the events that happened meanwhile are published once."""
    station, port = meter
    path = config(tmp_path, mosquitto, port, "120d")
    cutoff = (START - dt.timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = [e for e in meter_log(station) if e[0] > cutoff]
    assert expected
    saved = FactStore.set

    def dies_before_the_facts(store, meter_id, **facts):
        if EVENTS_SEEN in facts:
            return store.get(meter_id)  # the process is gone: nothing written
        return saved(store, meter_id, **facts)

    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    try:
        with monkeypatch.context() as patch:
            patch.setattr(FactStore, "set", dies_before_the_facts)
            first = run_once(path, clock, watcher, len(expected))
        assert seen(first) == expected
        assert FactStore(tmp_path / "state").get_fact("kitchen", EVENTS_SEEN) is None
        queue = sqlite3.connect(tmp_path / "state" / QUEUE_FILE)
        try:
            (mark,), = queue.execute("SELECT value FROM mark WHERE key = ?",
                                     (f"events:{TOPIC}:{LOG}",)).fetchall()
        finally:
            queue.close()
        assert json.loads(mark)["event"][1] == expected[-1][1]

        clock.advance(dt.timedelta(days=30))
        later = meter_log(station)
        new = later[later.index(expected[-1]) + 1:]
        assert new  # the month brought events: the restart must publish them, once
        second = run_once(path, clock, watcher, len(expected) + len(new))
        assert seen(second) == new
        time.sleep(0.5)  # a late duplicate would show
        assert seen(payloads(watcher.on(TOPIC), TOPIC)) == expected + new
        # Now the facts have their copy too.
        copy = FactStore(tmp_path / "state").get_fact("kitchen", EVENTS_SEEN)[LOG]
        assert copy["event"][1] == new[-1][1]
    finally:
        watcher.close()


@pytest.mark.parametrize(("code", "name"), [
    (40, "terminal_cover_removed"), (42, "strong_dc_field_detected"),
    (46, "authentication_failures"), (47, "decryption_or_authentication_failure"),
    (48, "replay_attack"), (49, "unexpected_consumption"), (19, "passive_tariff_updated"),
    (105, "m_bus_1_new_device"), (136, "m_bus_4_permanent_error"), (241, "unknown")])
def test_the_table_names_the_events_in_the_payloads(tmp_path, mosquitto, meter, clock,
                                                    code: int, name: str) -> None:
    """The meter logs an event (here in its standard log, as the simulator keeps one);
    the payload carries the table's name and text for its code."""
    station, port = meter
    model = station.model.meter
    logged_at = START - dt.timedelta(minutes=5)
    model.recorded_events.append(RecordedEvent(logged_at, logged_at, code))
    path = config(tmp_path, mosquitto, port, "10m")
    watcher = Subscriber(mosquitto.host, mosquitto.port, [TOPIC])
    try:
        (event,) = run_once(path, clock, watcher, 1)
    finally:
        watcher.close()
    assert (event["code"], event["name"]) == (code, name)
    assert event["ts"] == logged_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert event["text"] == event_code(code).text and (str(code) in event["text"]) == (
        name == "unknown")
