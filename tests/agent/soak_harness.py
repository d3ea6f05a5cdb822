"""The fault soak's rig: agent <-> emulated serial line <-> simulated meter, and a broker.

Shared by tests/agent/test_fault_soak.py (bounded, in CI) and bench/bench_soak.py (long).

The meter's clock is frozen, so each register has exactly one right value (a clean read of
a twin meter over TCP says which); a damaged frame that got through the HDLC checks would
publish another. A poll counts as **good** when its ``state`` snapshot holds every polled
object with its right value.

**Fault classes** (:data:`FAULT_CLASSES`): the line's (bit flips, dropped and duplicated
bytes, truncated bursts, silences; edge_agent/transport/line_emulator.py) and the
simulator's ``--fault`` kinds (edge_agent/simulator/faults.py). An **episode** of a class
waits for a good poll, arms the fault so that it damages exactly one burst of the line or
one answer of the meter (one shot), and measures the **recovery time**: from the end of
the fault (the damaged burst; a silence or a delayed answer ends when it is over) to the
arrival at the broker of the next good poll.

**Readings lost**: every snapshot the agent queued for publication must reach the broker
(QoS 1; the contract loses nothing once queued). Polls the schedule wanted while the meter
could not be read are *missed*, not lost: the agent backs off and reads again, and the
next good poll carries the meter's values then.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from daemon_harness import FAST_BACKOFF, Subscriber, make_agent, write_config

from edge_agent.agent.scheduler import BackOff
from edge_agent.client.client import MeterClient
from edge_agent.client.connection import ConnectionSettings
from edge_agent.dlms.association.client import ClientSettings
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.link.hdlc.frame import DEFAULT_MAX_INFO_LENGTH, HdlcParameters
from edge_agent.simulator.faults import FAULTS, Fault, FaultInjector, FaultKind
from edge_agent.simulator.meter import SimulatedMeterStation, SimulatorOptions
from edge_agent.simulator.server import MeterServer
from edge_agent.transport.line_emulator import EmulatedLine, LineFaults

FROZEN = dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
OBJECTS = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255",
           "1.0.52.7.0.255", "1.0.72.7.0.255", "0.0.96.1.0.255")
BAUD = 38400
METER = "noisy"
SEED = 4
INTERVAL = 1.0  # seconds between polls
TIMEOUT = 0.3  # the agent's HDLC time-out (config ``timeout``)
SILENCE = 1.5  # a silence holds a burst back longer than an exchange's time-outs (4 x 0.3 s)
DELAY = 2.0  # so does a delayed answer of the meter
CLEAN = LineFaults()
FIRE_WAIT = 10.0  # seconds an armed fault may wait for its opportunity
WARM_UP_POLLS = 3  # good polls before the first fault
# Exchanges of a poll after a failure, each with every HDLC retransmission: DISC, SNRM,
# AARQ, the GET-with-list and its answer's segments (IEC 62056-46 6.4.4.4.3.3 retries).
EXCHANGES_PER_POLL = 6


def recovery_bound(duration: float, retries: int, *, timeout: float = TIMEOUT,
                   interval: float = INTERVAL, backoff: BackOff = FAST_BACKOFF) -> float:
    """A generous upper bound of a recovery, from the configuration: the fault's own
    length, then two failed polls (every exchange timing out through all its retries) each
    followed by the longest back-off, then the next slot of the schedule."""
    exchange = timeout * (retries + 1)
    failed_poll = EXCHANGES_PER_POLL * exchange + backoff.maximum * (1 + backoff.jitter)
    return duration + 2 * failed_poll + interval


@dataclass(frozen=True, slots=True)
class FaultClass:
    """One way the line or the meter fails: ``line`` faults damage one burst; ``meter``
    names the simulator's fault kinds, each fired once (``refuse`` needs the association
    lost first, so it goes with ``close``)."""

    name: str
    line: LineFaults | None = None
    meter: tuple[str, ...] = ()
    duration: float = 0.0  # seconds the fault lasts after it fired


FAULT_CLASSES: dict[str, FaultClass] = {c.name: c for c in (
    FaultClass("line: bit flips", line=LineFaults(bit_error_rate=0.02)),
    FaultClass("line: dropped bytes", line=LineFaults(drop_rate=0.05)),
    FaultClass("line: duplicated bytes", line=LineFaults(duplicate_rate=0.05)),
    FaultClass("line: truncated burst", line=LineFaults(truncate_rate=1.0)),
    FaultClass("line: silence", line=LineFaults(silence_rate=1.0, silence=SILENCE),
               duration=SILENCE),
    FaultClass("meter: drop", meter=("drop",)),
    FaultClass("meter: delay", meter=("delay",), duration=DELAY),
    FaultClass("meter: fcs", meter=("fcs",)),
    FaultClass("meter: stale", meter=("stale",)),
    FaultClass("meter: garbage", meter=("garbage",)),
    FaultClass("meter: close", meter=("close",)),
    FaultClass("meter: refuse", meter=("close", "refuse")),
    FaultClass("meter: trailing", meter=("trailing",)),
)}
# The simulator's ``counter`` kind has no opportunity here: the agent reads the frame
# counter only for a ciphered association (first use of a key, or after the meter refused
# its invocation counter), and its counter store never goes down.
NOT_EXERCISED = {"counter": "fires only on a ciphered association's frame-counter read"}


def clean_read(state_dir: Path) -> dict[str, object]:
    """The values a twin of the meter (same seed, same frozen clock) gives over TCP."""
    twin = SimulatedMeterStation(SimulatorOptions(seed=SEED), clock=lambda: FROZEN)
    server = MeterServer([twin.station])
    address = server.start_tcp("127.0.0.1", 0)
    try:
        with MeterClient(ConnectionSettings(tcp=address), ClientSettings(), meter_id="twin",
                         state_dir=state_dir, frame_counter=None) as meter:
            readings = meter.read([Obis.parse(code) for code in OBJECTS])
    finally:
        server.stop()
    return {reading.obis.dotted: reading.value for reading in readings}


class OneShotLine(EmulatedLine):
    """An emulated line whose faults given to :meth:`arm` damage one chunk of bytes, then
    stop (the faults it was made with stay on)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fired = threading.Event()
        self.fault_end = 0.0
        self._armed: LineFaults | None = None
        self._arm_lock = threading.Lock()

    def arm(self, faults: LineFaults) -> None:
        with self._arm_lock:
            self.fired.clear()
            self._armed = self.faults = faults

    def disarm(self) -> None:
        with self._arm_lock:
            self._armed, self.faults = None, CLEAN

    def _damage(self, data: bytes, new_burst: bool) -> tuple[bytes, float]:
        used = self.faults
        out, hold = super()._damage(data, new_burst)
        if used is self._armed and (out != data or hold):
            with self._arm_lock:
                if self._armed is used:
                    self._armed, self.faults = None, CLEAN
                    self.fault_end = time.monotonic() + hold
                    self.fired.set()
        return out, hold


class OneShotFaults:
    """Arms the simulator's fault kinds so that each fires once (rate 1, then removed)."""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self.fired = threading.Event()
        self.fired_at = 0.0

    def arm(self, names: tuple[str, ...]) -> None:
        with self._lock:
            self.fired.clear()
            self._pending = set(names)
            self.injector.faults = tuple(Fault(self._once(FAULTS[name])) for name in names)

    def disarm(self) -> None:
        with self._lock:
            self._pending.clear()
            self.injector.faults = ()

    def _once(self, kind: FaultKind) -> FaultKind:
        def apply(*args):
            with self._lock:
                if kind.name not in self._pending:
                    return None
                changed = kind.apply(*args)
                if changed is not None:  # fired (rate 1 always draws)
                    self._pending.discard(kind.name)
                    self.injector.faults = tuple(
                        f for f in self.injector.faults if f.kind.name != kind.name)
                    if not self._pending:
                        self.fired_at = time.monotonic()
                        self.fired.set()
                return changed
        return dataclasses.replace(kind, apply=apply)


class TimedRecorder:
    """Every message the agent queued for publication, with when (wraps its publisher)."""

    def __init__(self, agent) -> None:
        self.queued: list[tuple[float, str, bytes]] = []
        self._lock = threading.Lock()
        publish_many = agent.publisher.publish_many

        def recording(messages, marks=None):
            batch = list(messages)
            now = time.monotonic()
            with self._lock:
                self.queued += [(now, topic, payload) for topic, payload, _, _ in batch]
            return publish_many(batch, marks)

        agent.publisher.publish_many = recording

    def on(self, topic: str) -> list[tuple[float, bytes]]:
        with self._lock:
            return [(at, payload) for at, t, payload in self.queued if t == topic]


class TimedSubscriber(Subscriber):
    """The tests' subscriber, noting when each message arrived (monotonic seconds)."""

    def __init__(self, *args, **kwargs) -> None:
        self.arrived: list[float] = []
        super().__init__(*args, **kwargs)

    def _on_message(self, client, userdata, message) -> None:
        with self._cond:  # an RLock: the base class appends the message under it too
            self.arrived.append(time.monotonic())
            super()._on_message(client, userdata, message)

    def timed(self, topic: str) -> list[tuple[float, bytes]]:
        with self._cond:
            return [(at, m.payload) for at, m in zip(self.arrived, self.messages, strict=True)
                    if m.topic == topic and not m.retain]


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float  # arrival at the broker's subscriber, monotonic seconds
    values: dict[str, object]


@dataclass(frozen=True, slots=True)
class Episode:
    """One fault of a class: when it fired and ended, when the next good poll arrived
    (None: not within the bound; ``fired`` None: the fault found no opportunity)."""

    fault: str
    armed: float
    fired: float | None
    end: float | None
    recovered: float | None
    bound: float

    @property
    def recovery(self) -> float | None:
        if self.end is None or self.recovered is None:
            return None
        return self.recovered - self.end


@dataclass(slots=True)
class Tally:
    """Per fault class (or line condition): what the soak saw."""

    polls: int = 0  # snapshots published
    expected: float = 0.0  # polls the schedule wanted in the same time
    wrong: int = 0  # published values that differ from the meter's
    missing: int = 0  # polled objects absent from a published snapshot
    lost: int = 0  # snapshots the agent queued that never reached the broker
    recoveries: list[float] = field(default_factory=list)
    outages: list[float] = field(default_factory=list)  # times without a good poll
    unrecovered: int = 0
    no_opportunity: int = 0

    @property
    def missed(self) -> int:
        return max(0, round(self.expected) - self.polls)

    def line(self, name: str) -> str:
        times = sorted(self.recoveries)
        recovery = (f"recovery p50 {statistics.median(times):5.2f} s, max {times[-1]:5.2f} s "
                    f"({len(times)} faults)" if times else "recovery -")
        if self.outages:
            recovery += (f"; {len(self.outages)} outages, longest "
                         f"{max(self.outages):5.2f} s without a good poll")
        extra = f", {self.unrecovered} NOT recovered" if self.unrecovered else ""
        extra += f", {self.no_opportunity} found no opportunity" if self.no_opportunity else ""
        return (f"{name:24s} polls {self.polls:5d} (missed {self.missed:4d}), "
                f"wrong {self.wrong}, lost {self.lost}, values missing {self.missing}, "
                f"{recovery}{extra}")


class SoakRig:
    """The running rig; make it with :func:`soak_rig`."""

    def __init__(self, line: OneShotLine, meter_faults: OneShotFaults, agent, recorder: TimedRecorder,
                 watcher: TimedSubscriber, right: dict[str, object], retries: int) -> None:
        self.line = line
        self.meter_faults = meter_faults
        self.agent = agent
        self.recorder = recorder
        self.watcher = watcher
        self.right = right
        self.retries = retries
        self.topic = f"dlms/pi/{METER}/state"
        self.windows: list[tuple[float, float, Tally]] = []  # what each tally covers
        self.warmed = False

    def count_lost(self) -> list[float]:
        """Snapshots lost (see :meth:`lost`), each also counted in the tally whose window
        it was queued in."""
        lost = self.lost()
        for at in lost:
            for since, until, tally in self.windows:
                if since <= at <= until:
                    tally.lost += 1
                    break
        return lost

    def snapshots(self, since: float = 0.0, until: float = float("inf")) -> list[Snapshot]:
        return [Snapshot(at, {code: v["value"] for code, v in json.loads(payload)["values"].items()})
                for at, payload in self.watcher.timed(self.topic) if since <= at <= until]

    def good(self, snapshot: Snapshot) -> bool:
        return snapshot.values == self.right

    def wait_good(self, after: float, timeout: float) -> float | None:
        """Arrival time of the first good snapshot after ``after``, waiting up to
        ``timeout`` seconds from now; None if none came."""
        deadline = time.monotonic() + timeout
        while True:
            good = [s.at for s in self.snapshots(since=after) if self.good(s)]
            if good:
                return good[0]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def episode(self, fault: FaultClass) -> Episode:
        bound = recovery_bound(fault.duration, self.retries)
        # Start right after a good poll, so that the fault falls on the next poll's traffic.
        ready = self.wait_good(time.monotonic(), bound)
        armed = time.monotonic() if ready is None else ready
        source: OneShotLine | OneShotFaults
        if fault.line is not None:
            source = self.line
            self.line.arm(fault.line)
        else:
            source = self.meter_faults
            self.meter_faults.arm(fault.meter)
        if not source.fired.wait(FIRE_WAIT):
            source.disarm()
            return Episode(fault.name, armed, None, None, None, bound)
        if isinstance(source, OneShotLine):
            fired, end = source.fault_end - fault.duration, source.fault_end
        else:
            fired = source.fired_at
            end = fired + fault.duration
        recovered = self.wait_good(end, max(0.0, end - time.monotonic()) + bound)
        return Episode(fault.name, armed, fired, end, recovered, bound)

    def tally(self, tally: Tally, since: float, until: float) -> None:
        """Add the snapshots that arrived within [since, until] to ``tally``."""
        self.windows.append((since, until, tally))
        snapshots = self.snapshots(since, until)
        tally.polls += len(snapshots)
        tally.expected += (until - since) / INTERVAL
        for snapshot in snapshots:
            tally.wrong += sum(1 for code, value in snapshot.values.items()
                               if code in self.right and value != self.right[code])
            tally.missing += len(set(self.right) - set(snapshot.values))

    def add_outages(self, tally: Tally, since: float, until: float) -> None:
        """Times within [since, until] without a good poll for longer than 1.5 intervals
        (under continuous noise, where faults have no single end to measure from)."""
        good = [since, *(s.at for s in self.snapshots(since, until) if self.good(s)), until]
        tally.outages += [b - a for a, b in itertools.pairwise(good) if b - a > 1.5 * INTERVAL]

    def add_episode(self, tally: Tally, episode: Episode) -> None:
        if episode.fired is None:
            tally.no_opportunity += 1
            return
        until = episode.recovered if episode.recovered is not None else time.monotonic()
        self.tally(tally, episode.armed, until)
        if episode.recovery is None:
            tally.unrecovered += 1
        else:
            tally.recoveries.append(episode.recovery)

    def wrong_values(self) -> list[tuple[str, object]]:
        return [(code, value) for snapshot in self.snapshots() for code, value
                in snapshot.values.items() if value != self.right.get(code, value)]

    def lost(self, timeout: float = 10.0) -> list[float]:
        """When each snapshot that the agent queued but the broker's subscriber never got
        was queued (waits up to ``timeout`` for the last ones in flight); empty: none lost."""
        deadline = time.monotonic() + timeout
        while True:
            delivered: dict[bytes, int] = {}
            for _, payload in self.watcher.timed(self.topic):
                delivered[payload] = delivered.get(payload, 0) + 1
            missing = []
            for at, payload in self.recorder.on(self.topic):
                if delivered.get(payload, 0):
                    delivered[payload] -= 1
                else:
                    missing.append(at)
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.05)


@contextmanager
def soak_rig(tmp_path: Path, broker, line_faults: LineFaults = CLEAN, *, retries: int = 3,
             seed: int = 11, max_info: int = DEFAULT_MAX_INFO_LENGTH) -> Iterator[SoakRig]:
    """Meter on one side of an emulated line, the agent on the other, polling every
    :data:`INTERVAL`; stops everything on exit. The meter grants HDLC information fields
    of ``max_info`` bytes (default: the standard's 128, IEC 62056-46 6.4.4.4.3.2) whatever
    the client proposes larger."""
    line = OneShotLine(baud=BAUD, latency=0.01, faults=line_faults, seed=seed)
    station = SimulatedMeterStation(SimulatorOptions(seed=SEED), clock=lambda: FROZEN)
    injector = FaultInjector.of((), seed=seed, delay=DELAY)
    server = MeterServer([station.station], faults=injector,
                         parameters=HdlcParameters(max_info_transmit=max_info,
                                                   max_info_receive=max_info))
    thread = threading.Thread(target=server.serve_serial, args=(line.path_a, BAUD),
                              daemon=True)
    thread.start()
    agent = None
    watcher = None
    try:
        assert server.serial_open.wait(10), f"the simulator did not open {line.path_a}"
        right = clean_read(tmp_path / "twin")
        config = write_config(tmp_path, broker, f"""\
            - id: {METER}
              transport: {{serial: {{device: {line.path_b}, baud: {BAUD}}}}}
              timeout: {TIMEOUT}
              retries: {retries}
              poll: [{{name: fast, interval: {INTERVAL:g}, objects: [{", ".join(OBJECTS)}]}}]
              profiles: []
            """)
        watcher = TimedSubscriber(broker.host, broker.port, [f"dlms/pi/{METER}/state"])
        agent = make_agent(config)
        recorder = TimedRecorder(agent)
        agent.start()
        yield SoakRig(line, OneShotFaults(injector), agent, recorder, watcher, right, retries)
    finally:
        if agent is not None:
            agent.stop()
        server.stop()
        thread.join(timeout=5)
        line.close()
        if watcher is not None:
            watcher.close()


def run_episodes(rig: SoakRig, classes: list[FaultClass], tallies: dict[str, Tally],
                 keep_going: Callable[[], bool] = lambda: True) -> list[Episode]:
    """One episode of each class in turn (while ``keep_going()``), added to ``tallies``."""
    episodes = []
    if not rig.warmed:
        # The first polls also read the clock and event logs once: not a recovery.
        for _ in range(WARM_UP_POLLS):
            rig.wait_good(time.monotonic(), recovery_bound(0.0, rig.retries))
        rig.warmed = True
    for fault in classes:
        if not keep_going():
            break
        episode = rig.episode(fault)
        rig.add_episode(tallies.setdefault(fault.name, Tally()), episode)
        episodes.append(episode)
    return episodes
