"""The standard load profile is published by default: a simulated meter over TCP, a real
Mosquitto, an injected clock.

A polled meter whose config names no ``profiles`` publishes 1.0.99.1.0.255 (as far back
as the meter keeps rows), so that a fresh install has the meter's past weeks; a meter
without that object drops it with one info line and ``info`` does not list it;
``profiles: []`` turns it off.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from daemon_harness import Recorder, Subscriber, WorldClock, make_agent, wait_until, write_config

from edge_agent.agent.config import load_config
from edge_agent.agent.config_model import DEFAULT_PROFILE, ProfileConfig
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.meter_models import CURRENT_ASSOCIATION, LOAD_PROFILE
from edge_agent.simulator.server import MeterServer

pytestmark = pytest.mark.timeout(120)

START = dt.datetime(2026, 3, 10, 12, 7, 30, tzinfo=dt.UTC)
TOPIC = f"dlms/pi/kitchen/profile/{DEFAULT_PROFILE}"
INFO = "dlms/pi/kitchen/info"
ENERGY = "1.0.1.8.0.255"
METER_LINES = """\
- id: kitchen
  transport: {{tcp: "127.0.0.1:{port}"}}
  poll: [{{name: fast, interval: 1h, objects: [{energy}]}}]
  clock: false
  events: false
{extra}"""


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


def config(tmp_path: Path, broker, port: int, extra: str = "", top: str = "") -> Path:
    return write_config(tmp_path, broker, METER_LINES.format(port=port, energy=ENERGY,
                                                              extra=extra), extra=top)


# --- config ----------------------------------------------------------------------------


def load(tmp_path: Path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\n{text}")
    return load_config(path)


POLLED = '- id: m\n  transport: {tcp: "127.0.0.1:4059"}\n'


def test_a_polled_meter_without_profiles_gets_the_standard_load_profile(tmp_path) -> None:
    (meter,) = load(tmp_path, "meters:\n" + POLLED).meters
    assert meter.profiles == (ProfileConfig("1.0.99.1.0.255", 900.0, None, None,
                                            implicit=True),)


@pytest.mark.parametrize("text", [
    "profiles: []\nmeters:\n" + POLLED,  # off for every meter
    "meters:\n" + POLLED + "  profiles: []\n",  # off for this one
])
def test_profiles_empty_turns_the_default_off(tmp_path, text: str) -> None:
    (meter,) = load(tmp_path, text).meters
    assert meter.profiles == ()


def test_configured_profiles_replace_the_default_and_are_not_implicit(tmp_path) -> None:
    text = ("profiles: [{obis: 1.0.99.2.0.255}]\nmeters:\n" + POLLED
            + '- id: n\n  transport: {tcp: "127.0.0.1:4060"}\n'
            + "  profiles: [{obis: 1.0.99.1.0.255, interval: 1h}]\n"
            + "- id: p\n  push: {format: hdlc, port: 4061}\n")
    own_default, own, push = load(tmp_path, text).meters
    assert [(p.obis, p.implicit) for p in own_default.profiles] == [("1.0.99.2.0.255", False)]
    assert [(p.obis, p.interval, p.implicit) for p in own.profiles] == [
        ("1.0.99.1.0.255", 3600.0, False)]
    assert push.profiles == ()  # pushes carry no profile


# --- through the simulator -------------------------------------------------------------


@pytest.mark.mosquitto
def test_default_config_publishes_the_load_profile_and_lists_it(tmp_path, mosquitto, meter,
                                                                clock) -> None:
    """No ``profiles`` in the config: rows of 1.0.99.1.0.255 go out on its topic, oldest
    first, from as far back as the meter keeps them; ``info`` lists the profile (Home
    Assistant asks replays and makes statistics for listed profiles only)."""
    station, port = meter
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    agent = make_agent(config(tmp_path, mosquitto, port), wall_clock=clock.posix)
    recorder = Recorder(agent)
    agent.start()
    try:
        assert watcher.wait_for(lambda ms: sum(m.topic == TOPIC for m in ms) >= 96), (
            f"got {len(watcher.on(TOPIC))} rows")
        assert watcher.wait_for(lambda ms: any(m.topic == INFO for m in ms))
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    rows = [json.loads(payload) for payload in recorder.on(TOPIC)]
    stamps = [dt.datetime.fromisoformat(row["ts"]) for row in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    capacity = station.model.load_profile.profile_entries
    assert START - stamps[0] >= dt.timedelta(minutes=15) * (capacity - 96 * 2)  # weeks back
    assert all(ENERGY in row["values"] for row in rows)
    info = json.loads(watcher.on(INFO)[-1].payload)
    assert info["profiles"] == [DEFAULT_PROFILE]


@pytest.mark.mosquitto
@pytest.mark.parametrize("object_list", [True, False])
def test_a_meter_without_the_load_profile_drops_the_default_quietly(
        tmp_path, mosquitto, meter, clock, caplog, object_list: bool) -> None:
    """The meter has no 1.0.99.1.0.255: not in its association view, or -- a meter whose
    object list cannot be read -- refused with object-undefined at the first read. The
    default profile goes with one info line (not a warning, not repeated, no health
    problem); ``info`` lists no profile; the values go on."""
    station, port = meter
    del station.model.objects[LOAD_PROFILE]
    if not object_list:
        del station.model.objects[CURRENT_ASSOCIATION]
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    path = config(tmp_path, mosquitto, port).read_text().replace(
        "interval: 1h, objects", "interval: 1s, objects")
    (tmp_path / "config.yaml").write_text(path)
    agent = make_agent(tmp_path / "config.yaml", wall_clock=clock.posix)
    schedule = agent.lanes[0].schedule.meters[0]
    caplog.set_level(logging.INFO, logger="edge_agent.agent.meter_worker")
    agent.start()
    try:
        # Three polls: the profile was due at the first; nothing comes of it later.
        assert watcher.wait_for(lambda ms: sum(m.topic == f"dlms/pi/kitchen/{ENERGY}"
                                               for m in ms) >= 3)
        assert wait_until(lambda: any(m.topic == INFO for m in watcher.messages))
        assert schedule.failures == 0
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    assert not watcher.on(TOPIC)
    infos = [json.loads(m.payload) for m in watcher.on(INFO)]
    assert infos[-1]["profiles"] == []
    if object_list:  # known before the first info: never listed
        assert all(info["profiles"] == [] for info in infos)
    dropped = [r for r in caplog.records if DEFAULT_PROFILE in r.getMessage()
               and r.name == "edge_agent.agent.meter_worker"]
    assert len(dropped) == 1, [r.getMessage() for r in dropped]
    assert dropped[0].levelno == logging.INFO
    assert "default load profile is not published" in dropped[0].getMessage()
    assert all(b'"state":"ok"' in m.payload for m in watcher.on("dlms/pi/kitchen/health"))


@pytest.mark.mosquitto
def test_profiles_empty_publishes_no_profile(tmp_path, mosquitto, meter, clock) -> None:
    _, port = meter
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/#"])
    agent = make_agent(config(tmp_path, mosquitto, port, "  profiles: []\n"),
                       wall_clock=clock.posix)
    agent.start()
    try:
        assert watcher.wait_for(lambda ms: any(m.topic == INFO for m in ms))
        assert "profile 1.0.99.1.0.255" not in agent.lanes[0].schedule.meters[0].due
    finally:
        agent.stop(timeout=5.0)
        watcher.close()
    assert not watcher.on(TOPIC)
    assert json.loads(watcher.on(INFO)[-1].payload)["profiles"] == []
