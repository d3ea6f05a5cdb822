"""Helpers for the daemon tests: configs, simulated meters, a recording MQTT subscriber.

The subscriber is the one of tests/mqtt (loaded from its conftest by path, since test
directories are not packages), so both suites judge the broker's output the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge_agent.agent.config import Config, load_config
from edge_agent.agent.daemon import Agent
from edge_agent.agent.scheduler import BackOff
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

_spec = importlib.util.spec_from_file_location(
    "mqtt_test_helpers", Path(__file__).parents[1] / "mqtt" / "conftest.py")
_helpers = sys.modules.setdefault("mqtt_test_helpers", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(_helpers)
Subscriber = _helpers.Subscriber
Received = _helpers.Received

class WorldClock:
    """The world's time, shared by a simulated meter and the agent's wall clock, moved on
    by the test."""

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


WAIT = 10.0  # upper bound of every wait
FAST_BACKOFF = BackOff(initial=0.2, maximum=1.6, factor=2.0, jitter=0.2)


PROFILE_STEP = dt.timedelta(minutes=15)  # the simulator's capture period


def capture_times(station: SimulatedMeterStation, first: dt.datetime,
                  last: dt.datetime) -> list[dt.datetime]:
    """The simulated meter's load-profile capture times from ``first`` to ``last``, every
    15 minutes, less those in a power failure (it captures nothing without power: those
    gaps are the meter's)."""
    meter, times, moment = station.model.meter, [], first
    while moment <= last:
        seconds = meter.curve.seconds(meter.to_world(moment))
        outage = meter.curve.outage(int(seconds // 86_400))
        if outage is None or not outage.start <= seconds % 86_400 < outage.end:
            times.append(moment)
        moment += PROFILE_STEP
    return times


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def write_config(tmp_path: Path, broker, meters: str, *, agent: str = "pi",
                 extra: str = "", name: str = "config.yaml") -> Path:
    """A config file for ``broker`` with the YAML list ``meters`` (already indented)."""
    text = textwrap.dedent(f"""\
        agent: {{id: {agent}}}
        state_dir: {tmp_path / "state"}
        mqtt: {{host: 127.0.0.1, port: {broker.port}, keepalive: 5}}
        """) + textwrap.dedent(extra) + "meters:\n" + textwrap.dedent(meters)
    path = tmp_path / name
    path.write_text(text)
    return path


def fast_config(path: Path) -> Config:
    """The config of ``path`` with quick MQTT reconnects (tests wait seconds, not minutes)."""
    config = load_config(path)
    return dataclasses.replace(config, mqtt=dataclasses.replace(
        config.mqtt, reconnect_min=0.1, reconnect_max=0.5))


def make_agent(path: Path, **options) -> Agent:
    options.setdefault("backoff", FAST_BACKOFF)
    return Agent(fast_config(path), **options)


def tcp_meter(*, tap=None, idle_timeout: float = 120.0,
              **options) -> tuple[MeterServer, SimulatedMeterStation, int]:
    """A simulated meter on a free 127.0.0.1 port: (server, station, port).

    ``idle_timeout``: seconds of silence after which the meter closes the connection.
    """
    station = SimulatedMeterStation(SimulatorOptions(**options))
    server = MeterServer([station.station], idle_timeout=idle_timeout,
                         **({"tap": tap} if tap else {}))
    _, port = server.start_tcp("127.0.0.1", 0)
    return server, station, port


def payloads(messages: list, topic: str) -> list[dict]:
    return [json.loads(m.payload) for m in messages if m.topic == topic]


class Recorder:
    """Everything an agent queued, per topic, in order (wraps its publisher)."""

    def __init__(self, agent: Agent) -> None:
        self.queued: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        publish_many = agent.publisher.publish_many

        def recording(messages, marks=None):
            batch = list(messages)
            with self._lock:
                self.queued += [(topic, payload) for topic, payload, _, _ in batch]
            return publish_many(batch, marks)

        agent.publisher.publish_many = recording

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload in self.queued if t == topic]


class FrameLog:
    """A simulator tap: every chunk received and frame sent, in order."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()

    def __call__(self, direction: str, data: bytes) -> None:
        with self._lock:
            self.frames.append((direction, bytes(data)))

    def apdus_received(self, tag: int) -> int:
        """Wrapper frames received whose APDU starts with ``tag`` (header: 8 bytes,
        IEC 62056-47 7.3.2)."""
        with self._lock:
            return sum(d == "rx" and data[8:9] == bytes([tag]) for d, data in self.frames)
