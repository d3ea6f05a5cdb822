"""Load-profile rows on MQTT: a simulated meter over TCP, a real Mosquitto, an injected clock.

The first run publishes the backfill (a day of 15-minute rows: 96) in time order, not
retained, QoS 1, one message per row with the contract's payload; a restart with the
same state dir and the clock 30 minutes on publishes exactly the two rows captured since.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import logging
import signal
import subprocess
import sys
import time

import pytest
from daemon_harness import (
    FAST_BACKOFF,
    Recorder,
    Subscriber,
    WorldClock,
    capture_times,
    fast_config,
    make_agent,
    wait_until,
    write_config,
)

from edge_agent.agent.config_model import ProfileConfig
from edge_agent.agent.daemon import Agent
from edge_agent.agent.load_profile_feed import PUBLISHED_FACT, ProfileFeed, ProfileRow
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.errors import TransportError
from edge_agent.mqtt.publisher import DEFAULT_WINDOW
from edge_agent.mqtt.queue import OfflineQueue
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.state.facts import FactStore

PROFILE = "1.0.99.1.0.255"
TOPIC = f"dlms/pi/kitchen/profile/{PROFILE}"
ENERGY = "1.0.1.8.0.255"
COLUMNS = {ENERGY: "Wh", "1.0.2.8.0.255": "Wh", "1.0.3.8.0.255": "varh",
           "1.0.4.8.0.255": "varh"}
STEP = dt.timedelta(minutes=15)
START = dt.datetime(2026, 3, 10, 12, 7, 30, tzinfo=dt.UTC)  # between two capture times




@pytest.fixture
def clock() -> WorldClock:
    return WorldClock(START)


@pytest.fixture
def meter(clock):
    station = SimulatedMeterStation(SimulatorOptions(seed=7), clock=clock)
    server = MeterServer([station.station], idle_timeout=120.0)
    _, port = server.start_tcp("127.0.0.1", 0)
    yield station, port
    server.stop()


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def run_once(config, clock: WorldClock, watcher: Subscriber, rows: int) -> list[bytes]:
    """Start an agent, wait for ``rows`` profile rows on the broker, stop it; returns
    what the agent queued on the profile topic."""
    agent = make_agent(config, wall_clock=clock.posix)
    recorder = Recorder(agent)
    agent.start()
    try:
        assert watcher.wait_for(lambda ms: sum(m.topic == TOPIC for m in ms) >= rows), (
            f"expected {rows} rows, got {len(watcher.on(TOPIC))}")
    finally:
        assert agent.stop(timeout=5.0)
    return recorder.on(TOPIC)


def test_backfill_then_only_new_rows_after_restart(tmp_path, mosquitto, meter,
                                                   clock) -> None:
    station, port = meter
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: []
          profiles: [{{obis: {PROFILE}, interval: 1h, backfill: 1d}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    try:
        queued = run_once(config, clock, watcher, 96)
        received = watcher.on(TOPIC)
        assert len(queued) == len(received) == 96  # backfill / capture period
        assert all(m.qos == 1 and not m.retain for m in received)
        rows = [json.loads(m.payload) for m in received]
        # Oldest first: the first capture time after now - 1 d, up to the last before now.
        first = dt.datetime(2026, 3, 9, 12, 15, tzinfo=dt.UTC)
        assert [ts(r["ts"]) for r in rows] == [first + i * STEP for i in range(96)]
        model = station.model
        for row in rows:
            assert set(row) == {"ts", "values", "units", "status"}
            assert row["units"] == COLUMNS and set(row["values"]) == set(COLUMNS)
            assert isinstance(row["status"], int)
            # The meter's own register at the row's time (the load profile captures it).
            when = model.meter.to_world(ts(row["ts"]))
            assert row["values"][ENERGY] == int(model.register_values[bytes(Obis.parse(ENERGY))](when))
        energies = [r["values"][ENERGY] for r in rows]
        assert energies == sorted(energies) and energies[0] < energies[-1]
        mark = FactStore(tmp_path / "state").get_fact("kitchen", PUBLISHED_FACT)
        assert ts(mark[PROFILE]) == first + 95 * STEP
        assert watcher.on("dlms/pi/kitchen/health")[-1].payload.startswith(b'{"state":"ok"')

        # Restart 30 minutes later with the same state dir: the two new rows, nothing else.
        clock.advance(dt.timedelta(minutes=30))
        queued = run_once(config, clock, watcher, 98)
        assert [ts(json.loads(p)["ts"]) for p in queued] == [first + 96 * STEP,
                                                            first + 97 * STEP]
        assert len(watcher.on(TOPIC)) == 98
    finally:
        watcher.close()


def profile_config(tmp_path, mosquitto, port: int, profile: str):
    return write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: [{{name: energy, interval: 1h, objects: [{ENERGY}]}}]
          profiles: [{{obis: {profile}, interval: 1h, backfill: 1h}}]
        """)


def test_a_refused_profile_is_a_health_problem_with_back_off(tmp_path, mosquitto, meter,
                                                             clock) -> None:
    """Configured with a register's OBIS, the profile read is refused by the meter
    (object-class-inconsistent): health access_denied, the lane backs off; the values
    read before it in the same poll were published."""
    _, port = meter
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    agent = make_agent(profile_config(tmp_path, mosquitto, port, ENERGY),
                       wall_clock=clock.posix).start()
    try:
        assert watcher.wait_for(lambda ms: any(m.topic == "dlms/pi/kitchen/health"
                                               and b'"access_denied"' in m.payload
                                               for m in ms))
        assert wait_until(lambda: agent.lanes[0].schedule.meters[0].failures >= 1)
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    assert watcher.on(f"dlms/pi/kitchen/{ENERGY}")
    assert not watcher.on(f"dlms/pi/kitchen/profile/{ENERGY}")
    health = json.loads(watcher.on("dlms/pi/kitchen/health")[-1].payload)
    assert health["code"] == "access_denied" and "class 7" in health["message"]
    assert FactStore(tmp_path / "state").get_fact("kitchen", PUBLISHED_FACT) is None


def test_a_profile_missing_from_the_object_list_is_skipped(tmp_path, mosquitto, meter,
                                                            clock) -> None:
    """1.0.99.2.0.255 is not in the association's object list: skipped with a warning,
    no rows and no problem; the meter's values keep coming."""
    _, port = meter
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    agent = make_agent(profile_config(tmp_path, mosquitto, port, "1.0.99.2.0.255"),
                       wall_clock=clock.posix).start()
    try:
        assert watcher.wait_for(lambda ms: any(m.topic == f"dlms/pi/kitchen/{ENERGY}"
                                               for m in ms))
        assert agent.lanes[0].schedule.meters[0].failures == 0
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    assert not watcher.on("dlms/pi/kitchen/profile/1.0.99.2.0.255")
    assert all(b'"state":"ok"' in m.payload for m in watcher.on("dlms/pi/kitchen/health"))


def test_catching_up_resumes_after_the_last_queued_chunk(tmp_path, meter, clock) -> None:
    """Rows go out a calendar day (one GET) at a time and the mark follows each handed-over
    chunk: when the second chunk cannot be handed over, the next look starts after the
    first, and every row is published exactly once."""
    _, port = meter
    feed = ProfileFeed(FactStore(tmp_path / "state"), "kitchen", clock.posix)
    profile = ProfileConfig(PROFILE, 900.0, 2 * 86400.0)
    published: list[list[ProfileRow]] = []

    def publish_then_fail(obis: str, rows: list[ProfileRow]) -> None:
        assert obis == PROFILE
        if len(published) == 1:
            raise TransportError("test: the queue's disk is gone")
        published.append(rows)

    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="kitchen", state_dir=tmp_path / "client")
    with client:
        with pytest.raises(TransportError):
            feed.collect(client, profile, publish_then_fail)
        ((*_, last),) = published
        assert feed.last(PROFILE) == last.ts
        count, more = feed.collect(client, profile, lambda obis, rows: published.append(rows))
        assert count > 0 and not more
    times = [row.ts for rows in published for row in rows]
    # 2 days back from 12:07:30: 12:15 two days ago up to 12:00 today, each once, in order.
    first = START.replace(minute=15, second=0) - dt.timedelta(days=2)
    assert times == [first + i * STEP for i in range(192)]
    assert all(isinstance(r.status, int) and set(r.units) == set(COLUMNS)
               for rows in published for r in rows)


# --- outages: every missing row once, in order -------------------------------------------


def stamps_on(watcher: Subscriber) -> list[dt.datetime]:
    return [ts(json.loads(m.payload)["ts"]) for m in watcher.on(TOPIC)]


def consecutive(stamps: list[dt.datetime], station) -> bool:
    """Each capture time of the meter between the first and the last, once, in order (the
    simulator captures nothing while it has no power: those gaps are the meter's)."""
    return stamps == capture_times(station, stamps[0], stamps[-1])


def test_agent_stopped_for_six_simulated_hours_publishes_every_missing_row_once(
        tmp_path, mosquitto, meter, clock) -> None:
    station, port = meter
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: []
          profiles: [{{obis: {PROFILE}, interval: 1h, backfill: 1d}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, [TOPIC])
    try:
        run_once(config, clock, watcher, 96)
        clock.advance(dt.timedelta(hours=6))  # the agent is down; the meter goes on
        queued = run_once(config, clock, watcher, 96 + 24)
        assert len(queued) == 24
        stamps = stamps_on(watcher)
        assert len(stamps) == 120 and consecutive(stamps, station)
        assert stamps[-1] == dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC)
    finally:
        watcher.close()


def test_broker_down_for_six_simulated_hours_loses_and_repeats_nothing(
        tmp_path, mosquitto_factory, meter, clock) -> None:
    """The agent keeps reading the meter while the broker is away; the rows wait in the
    durable queue and reach a persistent subscriber once each, in order."""
    station, port = meter
    broker = mosquitto_factory(persistence=True)
    config = write_config(tmp_path, broker, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: []
          profiles: [{{obis: {PROFILE}, interval: 1s, backfill: 1d}}]
        """)
    recorder = Subscriber(broker.host, broker.port, [TOPIC], client_id="recorder",
                          session=True)
    agent = make_agent(config, wall_clock=clock.posix)
    queued = Recorder(agent)
    agent.start()
    try:
        assert recorder.wait_count(TOPIC, 96)
        broker.stop()
        assert wait_until(lambda: not agent.publisher.connected)
        clock.advance(dt.timedelta(hours=6))
        assert wait_until(lambda: len(queued.on(TOPIC)) == 96 + 24)
        broker.start()
        assert wait_until(lambda: agent.publisher.connected)
        assert recorder.wait_for(lambda ms: sum(not m.dup for m in ms) >= 120)
    finally:
        assert agent.stop(timeout=5.0)
    time.sleep(0.3)
    recorder.close()
    # A broker restart may re-send to the recorder, flagged DUP, what it had not recorded
    # as acknowledged (MQTT 3.1.1 4.3.2); every DUP-clear message is one queued row.
    fresh = [m for m in recorder.messages if not m.dup]
    assert [m.payload for m in fresh] == queued.on(TOPIC)
    stamps = [ts(json.loads(m.payload)["ts"]) for m in fresh]
    assert len(stamps) == 120 and consecutive(stamps, station)


def test_history_waits_while_the_queue_fills_and_the_queue_drops_nothing(
        tmp_path, mosquitto_factory, meter, clock, caplog) -> None:
    """A week of backfill (672 rows) while the broker is away, into a queue bounded at 400
    messages: the rows wait on the meter once the queue is a quarter full, so the queue
    drops nothing (neither rows nor live values); with the broker back, every row arrives,
    once and in order."""
    station, port = meter
    broker = mosquitto_factory(persistence=True)
    path = write_config(tmp_path, broker, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: [{{name: fast, interval: 1, objects: [{ENERGY}]}}]
          profiles: [{{obis: {PROFILE}, interval: 1s, backfill: 7d}}]
        """)
    recorder = Subscriber(broker.host, broker.port, [TOPIC], client_id="recorder",
                          session=True)
    broker.stop()
    config = fast_config(path)
    config = dataclasses.replace(config, mqtt=dataclasses.replace(
        config.mqtt, queue_max_messages=400))
    agent = Agent(config, backoff=FAST_BACKOFF, wall_clock=clock.posix)
    queued = Recorder(agent)
    caplog.set_level(logging.INFO, logger="edge_agent.agent.meter_worker")
    agent.start()
    try:
        assert wait_until(lambda: "load profile rows wait" in caplog.text, 30.0)
        held = len(queued.on(TOPIC))
        time.sleep(3.0)  # live polls go on meanwhile; the profile looks every second
        assert len(queued.on(TOPIC)) == held < 672
        assert agent.publisher.queue.dropped_total == 0
        broker.start()
        assert wait_until(lambda: agent.publisher.connected)
        assert recorder.wait_for(lambda ms: sum(not m.dup for m in ms) >= 672, 60.0)
        assert agent.publisher.queue.dropped_total == 0
        assert "load profile rows go on" in caplog.text
    finally:
        assert agent.stop(timeout=5.0)
    time.sleep(0.3)
    recorder.close()
    fresh = [m for m in recorder.messages if not m.dup]
    assert [m.payload for m in fresh] == queued.on(TOPIC)
    stamps = [ts(json.loads(m.payload)["ts"]) for m in fresh]
    assert consecutive(stamps, station)
    assert stamps[0] <= START - dt.timedelta(days=7) + STEP and stamps[-1] > START - STEP


def test_catching_up_weeks_leaves_room_for_live_polls(tmp_path, mosquitto, meter,
                                                      clock) -> None:
    """Three weeks of backfill go one chunk (a day) per lane turn: the live values of a
    one-second poll group are queued between the chunks, not after all of them. The
    lane's clock moves half a second per look, as if each chunk took that long on the
    line."""
    _, port = meter
    ticks = itertools.count()
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: [{{name: fast, interval: 1, objects: [{ENERGY}]}}]
          profiles: [{{obis: {PROFILE}, interval: 1h, backfill: 21d}}]
        """)
    agent = make_agent(config, wall_clock=clock.posix, clock=lambda: next(ticks) * 0.5)
    recorder = Recorder(agent)
    agent.start()
    try:
        assert wait_until(lambda: len(recorder.on(TOPIC)) >= 21 * 96 - 100, 60.0)
    finally:
        assert agent.stop(timeout=5.0)
    with recorder._lock:
        order = [topic for topic, _ in recorder.queued]
    last_row = max(i for i, topic in enumerate(order) if topic == TOPIC)
    first_row = order.index(TOPIC)
    values = [i for i, topic in enumerate(order) if topic == f"dlms/pi/kitchen/{ENERGY}"]
    assert values[0] < first_row  # the values first, then the first chunk
    assert sum(first_row < i < last_row for i in values) >= 10  # and between chunks


def test_default_backfill_is_what_the_meter_keeps(tmp_path, meter, clock) -> None:
    """Without ``backfill`` the first look reaches back entries × capture period: the
    simulated meter's 32 weeks."""
    _, port = meter
    feed = ProfileFeed(FactStore(tmp_path / "state"), "kitchen", clock.posix)
    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="kitchen", state_dir=tmp_path / "client")
    first: list[ProfileRow] = []
    with client:
        count, more = feed.collect(client, ProfileConfig(PROFILE, 900.0),
                                   lambda obis, rows: first.extend(rows), max_chunks=1)
    assert more and count == len(first) > 0
    assert START - dt.timedelta(days=224) <= first[0].ts < START - dt.timedelta(days=223)


def settled_count(watcher: Subscriber, topic: str, quiet: float = 0.5,
                  bound: float = 10.0) -> int:
    """How many messages ``watcher`` has on ``topic`` once none came for ``quiet`` s."""
    deadline = time.monotonic() + bound
    count = len(watcher.on(topic))
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = len(watcher.on(topic))
        if now == count:
            break
        count = now
    return count


@pytest.mark.timeout(180)
def test_kill_9_mid_backfill_resumes_without_gap_or_duplicate(tmp_path, mosquitto) -> None:
    """`dlms-edge run` killed with SIGKILL while catching up 20 days, then started again:
    every row of the meter arrives, in order; a row appears twice only if it was in
    flight to the broker at the kill (QoS 1 re-sends it), never because it was read and
    queued twice."""
    station = SimulatedMeterStation(SimulatorOptions(seed=7))
    server = MeterServer([station.station], idle_timeout=120.0)
    _, port = server.start_tcp("127.0.0.1", 0)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: []
          profiles: [{{obis: {PROFILE}, interval: 1h, backfill: 20d}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, [TOPIC])
    command = [sys.executable, "-m", "edge_agent", "run", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert watcher.wait_count(TOPIC, 300, 60.0), process.stderr.read1()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        killed_at = settled_count(watcher, TOPIC)  # the broker may still be forwarding
        assert killed_at < 20 * 96 - 96, "the backfill ended before the kill"
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        now = dt.datetime.now(dt.UTC)
        newest = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
        assert watcher.wait_for(
            lambda ms: ms and ts(json.loads(ms[-1].payload)["ts"]) >= newest, 60.0)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        server.stop()
        watcher.close()
    stamps = stamps_on(watcher)
    distinct = list(dict.fromkeys(stamps))
    assert distinct == sorted(distinct) and consecutive(distinct, station)
    assert distinct[0] <= newest - dt.timedelta(days=20) + STEP
    repeats = len(stamps) - len(distinct)
    assert repeats <= DEFAULT_WINDOW  # at most what was in flight at the kill
    assert all(s in stamps[:killed_at] for s in stamps[killed_at:][:repeats])


def test_a_crash_between_queue_and_facts_sends_nothing_twice(tmp_path, meter, clock) -> None:
    """The queue notes the newest row in the transaction that queues the rows; a crash
    before the facts' copy is written (here: the write fails) costs nothing: the next
    look starts after what the queue holds."""
    _, port = meter
    queue = OfflineQueue(tmp_path / "queue.sqlite3")
    feed = ProfileFeed(FactStore(tmp_path / "state"), "kitchen", clock.posix)
    profile = ProfileConfig(PROFILE, 900.0, 2 * 86400.0)

    def publish(obis: str, rows: list[ProfileRow]) -> None:
        queue.append_many([(TOPIC, r.ts.isoformat().encode(), 1, False) for r in rows],
                          {obis: rows[-1].ts.isoformat()})

    def queued(obis: str) -> dt.datetime | None:
        text = queue.mark(obis)
        return None if text is None else ts(text)

    def crash(obis: str, moment: dt.datetime) -> None:
        raise OSError("test: the process died before the facts were written")

    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="kitchen", state_dir=tmp_path / "client")
    with client:
        feed._mark, mark = crash, feed._mark
        with pytest.raises(OSError):
            feed.collect(client, profile, publish, queued, max_chunks=1)
        feed._mark = mark
        assert feed.last(PROFILE) is None  # the facts know nothing of the first chunk
        more = True
        while more:
            _, more = feed.collect(client, profile, publish, queued, max_chunks=1)
    stamps = [ts(m.payload.decode()) for m in queue.peek(1000)]
    first = START.replace(minute=15, second=0) - dt.timedelta(days=2)
    assert stamps == [first + i * STEP for i in range(192)]
    queue.close()


def test_meter_away_for_six_simulated_hours_then_every_missing_row_once(
        tmp_path, mosquitto, clock) -> None:
    """The meter (or its line) is gone while six hours pass: health says unreachable, the
    lane backs off; once the meter answers again the 24 rows captured meanwhile follow,
    once each, in order."""
    station = SimulatedMeterStation(SimulatorOptions(seed=7), clock=clock)
    server = MeterServer([station.station], idle_timeout=120.0)
    _, port = server.start_tcp("127.0.0.1", 0)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          timeout: 1
          poll: []
          profiles: [{{obis: {PROFILE}, interval: 1s, backfill: 1d}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, [TOPIC, "dlms/pi/kitchen/health"])
    agent = make_agent(config, wall_clock=clock.posix)
    agent.start()
    try:
        assert watcher.wait_count(TOPIC, 96)
        server.stop()
        clock.advance(dt.timedelta(hours=6))
        assert watcher.wait_for(lambda ms: any(
            m.topic.endswith("/health") and b'"unreachable"' in m.payload for m in ms))
        server = MeterServer([station.station], idle_timeout=120.0)
        server.start_tcp("127.0.0.1", port)
        assert watcher.wait_count(TOPIC, 120)
        time.sleep(0.5)  # nothing more may come
    finally:
        assert agent.stop(timeout=5.0)
        server.stop()
        watcher.close()
    stamps = stamps_on(watcher)
    assert len(stamps) == 120 and consecutive(stamps, station)
    assert json.loads(watcher.on("dlms/pi/kitchen/health")[-1].payload)["state"] == "ok"


@pytest.mark.parametrize("style", ["local", "bare"])
def test_time_stamps_without_deviation_are_placed_in_the_profiles_time_zone(
        tmp_path, meter, clock, style) -> None:
    """A meter that sends its local time without deviation: the profile's ``timezone``
    places the rows (here CET, an hour east of the host's UTC), nothing shifted."""
    station, port = meter
    station.model.meter.time_stamp_style = style
    feed = ProfileFeed(FactStore(tmp_path / "state"), "kitchen", clock.posix)
    rows: list[ProfileRow] = []
    client = MeterClient(ConnectionSettings(tcp=("127.0.0.1", port)), ClientSettings(),
                         meter_id="kitchen", state_dir=tmp_path / "client")
    with client:
        feed.collect(client, ProfileConfig(PROFILE, 900.0, 3600.0, "Europe/Vienna"),
                     lambda obis, chunk: rows.extend(chunk))
    first = START.replace(minute=15, second=0) - dt.timedelta(hours=1)
    assert [r.ts.astimezone(dt.UTC) for r in rows] == [first + i * STEP for i in range(4)]


# --- replays: a subscriber that was away asks for rows again ------------------------------


def ask_again(watcher: Subscriber, payload: bytes, meter: str = "kitchen") -> None:
    watcher.client.publish(f"dlms/pi/{meter}/replay", payload, qos=1).wait_for_publish(10.0)


def test_a_subscriber_asks_for_rows_again(tmp_path, mosquitto, meter, clock, caplog) -> None:
    """The rows after `from` up to the newest published come again, flagged, in order, soon
    (the profile is due only hourly: the request hurries it); the cursor does not move, and
    requests the agent cannot serve are said and dropped."""
    _, port = meter
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: []
          profiles: [{{obis: {PROFILE}, interval: 1h, backfill: 1d}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    agent = make_agent(config, wall_clock=clock.posix)
    agent.start()
    try:
        assert watcher.wait_for(lambda ms: sum(m.topic == TOPIC for m in ms) >= 96)
        first = dt.datetime(2026, 3, 9, 12, 15, tzinfo=dt.UTC)
        info = json.loads(watcher.on("dlms/pi/kitchen/info")[-1].payload)
        assert info["profiles"] == [PROFILE]
        facts = FactStore(tmp_path / "state")
        # The facts' copy is written just after the rows are queued: let it settle.
        assert wait_until(lambda: ts(facts.get_fact("kitchen", PUBLISHED_FACT)[PROFILE])
                          == first + 95 * STEP)
        mark = facts.get_fact("kitchen", PUBLISHED_FACT)[PROFILE]

        for bad in (b"not json", b'{"profile": "1.0.99.1.0.255", "from": "yesterday"}',
                    b'{"profile": "1.0.99.2.0.255", "from": null}'):
            ask_again(watcher, bad)
        ask_again(watcher, b'{"profile": "1.0.99.1.0.255", "from": null}', meter="hall")
        ask_again(watcher, json.dumps({"profile": PROFILE,
                                       "from": (first + 10 * STEP).isoformat()}).encode())
        assert watcher.wait_for(lambda ms: sum(m.topic == TOPIC for m in ms) >= 96 + 85)
        time.sleep(0.5)  # nothing more may come
        rows = [json.loads(m.payload) for m in watcher.on(TOPIC)]
        assert len(rows) == 96 + 85
        again = rows[96:]
        assert all(row["replay"] is True for row in again)
        assert "replay" not in rows[0]
        assert [ts(row["ts"]) for row in again] == [first + i * STEP for i in range(11, 96)]
        assert again == [dict(row, replay=True) for row in rows[11:96]]  # the same values
        assert facts.get_fact("kitchen", PUBLISHED_FACT)[PROFILE] == mark
        assert agent.profile_mark("kitchen", PROFILE) == first + 95 * STEP
        said = caplog.text
        assert "expected a JSON object" in said and "expected 'from' as ISO 8601" in said
        assert "profile 1.0.99.2.0.255 is not published for this meter" in said
        assert "this agent polls no meter of that id" in said

        # From null: everything the backfill depth reaches, up to the newest row.
        ask_again(watcher, json.dumps({"profile": PROFILE, "from": None}).encode())
        assert watcher.wait_for(lambda ms: sum(m.topic == TOPIC for m in ms) >= 96 + 85 + 96)
        stamps = [ts(json.loads(m.payload)["ts"]) for m in watcher.on(TOPIC)][96 + 85:]
        assert stamps == [first + i * STEP for i in range(96)]
    finally:
        assert agent.stop(timeout=5.0)
        watcher.close()
