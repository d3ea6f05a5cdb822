"""Load-profile rows on MQTT: a simulated meter over TCP, a real Mosquitto, an injected clock.

The first run publishes the backfill (a day of 15-minute rows: 96) in time order, not
retained, QoS 1, one message per row with the contract's payload; a restart with the
same state dir and the clock 30 minutes on publishes exactly the two rows captured since.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from daemon_harness import Recorder, Subscriber, make_agent, wait_until, write_config

from edge_agent.agent.config_model import ProfileConfig
from edge_agent.agent.load_profile_feed import PUBLISHED_FACT, ProfileFeed, ProfileRow
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.errors import TransportError
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.association.client import ClientSettings
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


class Clock:
    """The world's time, shared by the simulated meter and the agent's wall clock."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self.now

    def posix(self) -> float:
        return self().timestamp()

    def advance(self, by: dt.timedelta) -> None:
        with self._lock:
            self.now += by


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def meter(clock):
    station = SimulatedMeterStation(SimulatorOptions(seed=7), clock=clock)
    server = MeterServer([station.station], idle_timeout=120.0)
    _, port = server.start_tcp("127.0.0.1", 0)
    yield station, port
    server.stop()


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def run_once(config, clock: Clock, watcher: Subscriber, rows: int) -> list[bytes]:
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
        assert feed.collect(client, profile, lambda obis, rows: published.append(rows)) > 0
    times = [row.ts for rows in published for row in rows]
    # 2 days back from 12:07:30: 12:15 two days ago up to 12:00 today, each once, in order.
    first = START.replace(minute=15, second=0) - dt.timedelta(days=2)
    assert times == [first + i * STEP for i in range(192)]
    assert all(isinstance(r.status, int) and set(r.units) == set(COLUMNS)
               for rows in published for r in rows)
