"""`dlms-edge run` killed with SIGKILL again and again, then started again each time:

* during a 30-day load-profile backfill: the state dir's SQLite files pass
  ``PRAGMA integrity_check`` after every kill, and in the end every row of the meter has
  arrived, in order; a row comes twice only when it was in flight to the broker at a kill
  (QoS 1 re-sends it), at most the publisher's window per kill;
* polling a meter with security suite 1 (authenticated encryption, HLS-5): the simulated
  meter logs every client invocation counter it receives; none arrives twice, none is
  refused;
* publishing to a real Mosquitto, half of the kills while the broker is stopped (SIGSTOP)
  so that readings wait in the offline queue: integrity ok after every kill, and every
  message the queue held at a kill reaches the subscriber after the restart.

Kill moments are random (the seed is in every failure message). The bounded runs (5 or
6 kills each) are part of every test run; DLMS_EDGE_SOAK=1 runs 25 kills of each.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_harness import Subscriber, capture_times, tcp_meter, wait_until, write_config

from edge_agent.keystore import DEFAULT_CLIENT_SYSTEM_TITLE
from edge_agent.mqtt.publisher import DEFAULT_WINDOW
from edge_agent.mqtt.queue import QUEUE_FILE
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer

PROFILE = "1.0.99.1.0.255"
PROFILE_TOPIC = f"dlms/pi/kitchen/profile/{PROFILE}"
ENERGY = "1.0.1.8.0.255"
STEP = dt.timedelta(minutes=15)
SOAK = os.environ.get("DLMS_EDGE_SOAK") == "1"
soak_only = pytest.mark.skipif(not SOAK, reason="soak run: set DLMS_EDGE_SOAK=1")


class Run:
    """``dlms-edge run --config CONFIG`` as a child process, killed or stopped by pid; its
    stderr goes to ``agent-N.log`` beside the config (the tail is in failure messages)."""

    def __init__(self, config: Path) -> None:
        number = len(list(config.parent.glob("agent-*.log")))
        self.log = config.parent / f"agent-{number}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL, stderr=log)

    def kill(self) -> bool:
        """SIGKILL; whether it was still running (had not died on its own)."""
        running = self.process.poll() is None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        return running

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                assert self.process.wait(timeout=15) == 0, self.stderr()
            finally:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait()

    def stderr(self) -> str:
        state = "running" if self.process.poll() is None else f"exit {self.process.returncode}"
        return f"[{state}] " + self.log.read_text(errors="replace")[-2000:]


def integrity(state_dir: Path) -> dict[str, str]:
    """``PRAGMA integrity_check`` of every SQLite file in the state dir, by name."""
    found = {}
    for path in sorted(state_dir.rglob("*.sqlite3")):
        with sqlite3.connect(path) as db:
            found[path.name] = db.execute("PRAGMA integrity_check").fetchone()[0]
    return found


def queued(state_dir: Path) -> list[tuple[str, bytes]]:
    """The messages the offline queue holds (not acknowledged by the broker), in order."""
    path = state_dir / QUEUE_FILE
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return [(topic, bytes(payload)) for topic, payload in
                db.execute("SELECT topic, payload FROM message ORDER BY id")]


def settled(watcher: Subscriber, topic: str, quiet: float = 0.5, bound: float = 10.0) -> int:
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


def new_seed() -> tuple[int, random.Random]:
    seed = int.from_bytes(os.urandom(4), "big")
    return seed, random.Random(seed)


# --- (a) backfill ---------------------------------------------------------------------------

def backfill_kill_loop(tmp_path: Path, mosquitto, kills: int) -> None:
    seed, rng = new_seed()
    station = SimulatedMeterStation(SimulatorOptions(seed=7))
    server = MeterServer([station.station], idle_timeout=120.0)
    _, port = server.start_tcp("127.0.0.1", 0)
    days = 30 if kills <= 6 else 90
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll: []
          profiles: [{{obis: {PROFILE}, interval: 1h, backfill: {days}d}}]
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, [PROFILE_TOPIC])
    total = days * 96
    spacing = total // 2 // kills  # the kills spread over the first half
    kill_points: list[int] = []  # rows at the subscriber when each killed run had settled
    run = Run(config)
    try:
        for number in range(kills):
            # Rows this run publishes before its kill: the kill falls mid-backfill.
            target = max((number + 1) * spacing - rng.randrange(spacing // 2),
                         (kill_points[-1] if kill_points else 0) + 40)
            assert watcher.wait_count(PROFILE_TOPIC, target, 60.0), (seed, run.stderr())
            time.sleep(rng.uniform(0.0, 0.1))
            assert run.kill(), f"seed {seed}: the agent died before kill {number + 1}: {run.stderr()}"
            kill_points.append(settled(watcher, PROFILE_TOPIC))
            assert set(integrity(tmp_path / "state").values()) == {"ok"}, (
                f"seed {seed}, kill {number + 1}: {integrity(tmp_path / 'state')}")
            rows = len({m.payload for m in watcher.on(PROFILE_TOPIC)})
            assert rows < total - 96, f"seed {seed}: the backfill ended before kill {number + 1}"
            run = Run(config)
        now = dt.datetime.now(dt.UTC)
        newest = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
        assert watcher.wait_for(lambda ms: bool(ms) and dt.datetime.fromisoformat(
            json.loads(ms[-1].payload)["ts"]) >= newest, 90.0), (seed, run.stderr())
        run.stop()
    finally:
        run.kill()
        server.stop()
        watcher.close()
    stamps = [dt.datetime.fromisoformat(json.loads(m.payload)["ts"])
              for m in watcher.on(PROFILE_TOPIC)]
    distinct = list(dict.fromkeys(stamps))
    assert distinct == capture_times(station, distinct[0], distinct[-1]), (
        f"seed {seed}: rows missing or out of order")
    assert distinct[0] <= newest - dt.timedelta(days=days) + STEP
    # A repeat comes after a kill, and is a row that had arrived before that kill.
    seen: set[dt.datetime] = set()
    repeats = 0
    for index, stamp in enumerate(stamps):
        if stamp in seen:
            repeats += 1
            before = [point for point in kill_points if point <= index]
            assert before, f"seed {seed}: row {stamp} twice before any kill"
            assert stamp in set(stamps[:before[-1]]), f"seed {seed}: {stamp} repeated"
        seen.add(stamp)
    assert repeats <= kills * DEFAULT_WINDOW, f"seed {seed}: {repeats} repeats"
    print(f"backfill: {kills} kills at rows {kill_points}, {len(distinct)} rows, "
          f"{repeats} repeats (seed {seed})")


@pytest.mark.timeout(240)
def test_backfill_killed_six_times_keeps_every_row_once_in_order(tmp_path, mosquitto) -> None:
    backfill_kill_loop(tmp_path, mosquitto, 6)


@pytest.mark.slow
@pytest.mark.timeout(900)
@soak_only
def test_backfill_killed_25_times(tmp_path, mosquitto) -> None:
    backfill_kill_loop(tmp_path, mosquitto, 25)


# --- (b) a ciphered meter ---------------------------------------------------------------------

def counters(log: Path) -> list[tuple[str, int, str, str]]:
    """The simulator's counter log: (system title, invocation counter, where, verdict)."""
    if not log.exists():
        return []
    entries = []
    for line in log.read_text(encoding="ascii").splitlines():
        title, counter, where, verdict = line.split()
        entries.append((title, int(counter), where, verdict))
    return entries


def ciphered_kill_loop(tmp_path: Path, mosquitto, kills: int) -> None:
    seed, rng = new_seed()
    keys, log = tmp_path / "keys", tmp_path / "counters.log"
    server, _, port = tcp_meter(profile="t210d", keys_dir=str(keys), counter_log=str(log))
    for path in keys.iterdir():
        path.chmod(0o600)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: t210d
          transport: {{tcp: "127.0.0.1:{port}"}}
          addresses: {{client: 1}}
          security:
            suite: 1
            policy: authenc
            auth: hls-gmac
            keys: {{ek: {{file: {keys / "ek.hex"}}}, ak: {{file: {keys / "ak.hex"}}}}}
            system_title: "{DEFAULT_CLIENT_SYSTEM_TITLE.hex()}"
            pass3_signing: auto
            signing_key: {keys / "client.key.pem"}
            meter_certificate: {keys / "meter.crt.pem"}
          poll: [{{name: energy, interval: 1, objects: [{ENERGY}, 1.0.2.8.0.255]}}]
        """)
    topic = f"dlms/pi/t210d/{ENERGY}"
    watcher = Subscriber(mosquitto.host, mosquitto.port, [topic])
    spent_while_running = 0  # kills that fell after the run had sent counters
    run = Run(config)
    try:
        assert watcher.wait_count(topic, 1, 30.0), run.stderr()
        run.stop()
        for number in range(kills):
            before = len(counters(log))
            run = Run(config)
            if number % 3:  # once the meter has a counter of this run: mid-exchange
                assert wait_until(lambda: len(counters(log)) > before, 30.0), (  # noqa: B023
                    seed, run.stderr())
                time.sleep(rng.uniform(0.0, 0.5))
            else:  # anywhere from start-up to the first polls
                time.sleep(rng.uniform(0.3, 2.0))
            assert run.kill(), f"seed {seed}: the agent died before kill {number + 1}: {run.stderr()}"
            spent_while_running += len(counters(log)) > before
        arrived = len(watcher.on(topic))
        run = Run(config)
        assert watcher.wait_count(topic, arrived + 2, 30.0), (seed, run.stderr())
        run.stop()
    finally:
        run.kill()
        server.stop()
        watcher.close()
    entries = counters(log)
    received = collections.Counter((title, counter) for title, counter, _, _ in entries)
    twice = sorted(key for key, count in received.items() if count > 1)
    assert not twice, f"seed {seed}: invocation counters received more than once: {twice}"
    refused = [entry for entry in entries if entry[3] != "accepted"]
    assert not refused, f"seed {seed}: the meter refused counters: {refused}"
    assert spent_while_running >= kills * 2 // 3, (
        f"seed {seed}: only {spent_while_running} of {kills} kills came after counters were sent")
    print(f"ciphered: {kills} kills, {spent_while_running} after counters were sent, "
          f"{len(entries)} counters received, none twice, none refused (seed {seed})")


@pytest.mark.timeout(180)
def test_ciphered_polls_killed_six_times_never_reuse_a_counter(tmp_path, mosquitto) -> None:
    ciphered_kill_loop(tmp_path, mosquitto, 6)


@pytest.mark.slow
@pytest.mark.timeout(900)
@soak_only
def test_ciphered_polls_killed_25_times(tmp_path, mosquitto) -> None:
    ciphered_kill_loop(tmp_path, mosquitto, 25)


# --- (c) publishing -----------------------------------------------------------------------------

def publish_kill_loop(tmp_path: Path, mosquitto, kills: int) -> None:
    seed, rng = new_seed()
    server, _, port = tcp_meter(seed=5)
    config = write_config(tmp_path, mosquitto, f"""\
        - id: kitchen
          transport: {{tcp: "127.0.0.1:{port}"}}
          poll:
            - {{name: fast, interval: 1, objects: [{ENERGY}, 1.0.2.8.0.255, 1.0.32.7.0.255,
                1.0.31.7.0.255, 1.0.1.7.0.255]}}
        """)
    watcher = Subscriber(mosquitto.host, mosquitto.port, ["dlms/pi/#"])
    broker = mosquitto._process  # the fixture's broker process, to stop and continue it
    assert broker is not None
    state = tmp_path / "state"
    carried = 0  # messages the queue held at the kills
    checks: list[set[tuple[str, bytes]]] = []
    run = Run(config)
    try:
        assert watcher.wait_count(f"dlms/pi/kitchen/{ENERGY}", 1, 30.0), run.stderr()
        for number in range(kills):
            stalled = number % 2 == 0
            if stalled:  # the broker hears nothing: readings wait in the queue
                broker.send_signal(signal.SIGSTOP)
            try:
                time.sleep(rng.uniform(0.6, 2.0))
                assert run.kill(), (
                    f"seed {seed}: the agent died before kill {number + 1}: {run.stderr()}")
            finally:
                if stalled:
                    broker.send_signal(signal.SIGCONT)
            assert set(integrity(state).values()) == {"ok"}, (
                f"seed {seed}, kill {number + 1}: {integrity(state)}")
            held = set(queued(state))
            carried += len(held)
            checks.append(held)
            run = Run(config)
            # Everything the queue held at the kill reaches the subscriber.
            assert wait_until(lambda: held <= {  # noqa: B023 - called before held changes
                (m.topic, m.payload) for m in watcher.messages}, 30.0), (
                f"seed {seed}, kill {number + 1}: "
                f"{len(held - {(m.topic, m.payload) for m in watcher.messages})} of "
                f"{len(held)} queued messages never arrived")
        energy = f"dlms/pi/kitchen/{ENERGY}"
        assert watcher.wait_count(energy, len(watcher.on(energy)) + 1, 30.0), run.stderr()
        run.stop()
    finally:
        broker.send_signal(signal.SIGCONT)
        run.kill()
        server.stop()
        watcher.close()
    assert carried > 0, f"seed {seed}: no kill found messages in the queue"
    assert sum(bool(held) for held in checks) >= kills // 2, (
        f"seed {seed}: too few kills with a queue to carry over ({[len(h) for h in checks]})")
    assert queued(state) == [], "the last run stopped with messages left"
    print(f"publishing: {kills} kills, queue held {[len(h) for h in checks]} messages, "
          f"all arrived (seed {seed})")


@pytest.mark.timeout(180)
def test_publishing_killed_six_times_loses_nothing_queued(tmp_path, mosquitto) -> None:
    publish_kill_loop(tmp_path, mosquitto, 6)


@pytest.mark.slow
@pytest.mark.timeout(900)
@soak_only
def test_publishing_killed_25_times(tmp_path, mosquitto) -> None:
    publish_kill_loop(tmp_path, mosquitto, 25)
