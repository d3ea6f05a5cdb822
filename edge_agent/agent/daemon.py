"""The agent: polls and listens to meters, publishes everything under the MQTT contract.

    agent = Agent(load_config("/etc/dlms-edge/config.yaml"))
    agent.start()
    ...                       # until SIGTERM
    agent.stop()              # release associations, meters offline, flush, status offline

The agent owns the :class:`~edge_agent.mqtt.publisher.Publisher` (every message goes
through the durable offline queue in the state dir, so a broker outage loses nothing),
one :class:`~edge_agent.agent.scheduler.Lane` per line (bus, serial port, TCP meter)
with a :class:`~edge_agent.agent.meter_worker.MeterWorker` per polled meter, and a push
listener per meter that pushes. Pollers and listeners report through these calls, the
only way anything reaches MQTT:

* :meth:`Agent.submit` -- readings: values, the state snapshot, and (when they changed)
  ``info``, ``health`` ok and ``availability`` online;
* :meth:`Agent.problem` -- a health code: ``health`` problem and ``availability`` offline;
* :meth:`Agent.identify` -- serial, maker, firmware, system title for ``info``;
* :meth:`Agent.profile_rows` -- load-profile rows, one message each (not retained);
* :meth:`Agent.publish_clock` / :meth:`Agent.publish_events` -- the meter's clock
  (retained) and its events, one message each (not retained), stored with the event
  log's mark in one transaction (:meth:`Agent.events_mark` reads it back).

A meter the broker still holds (a retained ``info`` under this agent) that the config no
longer has is cleared from the broker (:mod:`edge_agent.mqtt.forget`), once every
configured meter's id is known (a meter without ``id`` is named by its serial number,
learned at its first association), so that a configured meter is never cleared.

``info`` lists every object a meter has delivered so far (name, unit, Home Assistant
device and state class from :func:`edge_agent.dlms.cosem.obis.suggest`) and is published again
only when that list or the identity changes. Health and availability are published on
change only (retained), ``since`` being the moment the state began. The messages of one
submit go into the queue in one transaction and in contract order: info, health,
availability, values, state.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random as random_module
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from edge_agent import __version__
from edge_agent.agent.config_model import BusTransport, Config
from edge_agent.agent.load_profile_feed import ProfileRow
from edge_agent.agent.meter_worker import MeterIdentity, MeterWorker
from edge_agent.agent.peak_demand import MAXIMUM_DEMAND, PEAK_NAME, ProfilePeak
from edge_agent.agent.push_listener import PushListener
from edge_agent.agent.scheduler import BackOff, Lane
from edge_agent.agent.serial_line import SharedLine
from edge_agent.client.link import Tap, _no_tap
from edge_agent.client.profile_report import zone_named
from edge_agent.client.values import Reading
from edge_agent.dlms.cosem.obis import suggest
from edge_agent.dlms.errors import ConfigError, CounterError, DecodeError
from edge_agent.mqtt.discovery import discovery_messages
from edge_agent.mqtt.forget import forget_messages
from edge_agent.mqtt.payloads import (
    HEALTH_CODES,
    MeterInfo,
    ObjectInfo,
    ReplayRequest,
    health_payload,
    objects_info,
    profile_row_payload,
    state_payload,
    status_payload,
    value_payload,
)
from edge_agent.mqtt.publisher import Publisher
from edge_agent.mqtt.queue import OfflineQueue
from edge_agent.mqtt.topics import Topics
from edge_agent.state.counters import ensure_private_dir

log = logging.getLogger(__name__)

Message = tuple[str, bytes, int, bool]  # topic, payload, QoS, retain
DEFAULT_SHUTDOWN_TIMEOUT = 10.0  # seconds for lanes to finish and the queue to drain
HEALTH_OK_MESSAGE = "values received"
PROFILE_CLASS = 7  # the class_id in info of a value computed from a profile generic
# Load profile rows (backfill, replays) are read only while the durable queue is below
# this share of its bounds: the rest stays for the live values (MeterWorker.poll).
HISTORY_HIGH_WATER = 0.25
DEFAULT_BACKOFF = BackOff()  # 5 s doubling to 5 min, 20 % jitter


@dataclass(slots=True)
class _Published:
    """What the broker holds for one meter, to publish changes only."""

    identity: MeterIdentity = field(default_factory=MeterIdentity)
    objects: dict[str, ObjectInfo] = field(default_factory=dict)
    info: bytes | None = None
    health: tuple[str | None, str] | None = None  # (code, message)
    since: float = 0.0  # when the current health state began (POSIX seconds)
    available: bool | None = None


class Agent:
    """Everything ``dlms-edge run`` does; :meth:`start` it, :meth:`stop` it."""

    def __init__(self, config: Config, *, backoff: BackOff = DEFAULT_BACKOFF,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 random: Callable[[], float] = random_module.random,
                 tap: Tap = _no_tap) -> None:
        self.config = config
        self.wall_clock = wall_clock
        ensure_private_dir(config.state_dir)
        self.topics = Topics(config.mqtt.prefix, config.agent_id)
        self.publisher = Publisher(config.mqtt, config.agent_id, OfflineQueue.in_state_dir(
            config.state_dir, max_messages=config.mqtt.queue_max_messages,
            max_bytes=config.mqtt.queue_max_bytes), on_connection_change=self._connection_changed)
        self._lock = threading.Lock()
        self._published: dict[str, _Published] = {}
        self._reached_broker = False  # once connected, a later connection is a reconnection
        self._stale_infos: dict[str, bytes] = {}  # retained info of meters not (yet) known
        self.publisher.subscribe(f"{self.topics.base}/+/info", self._retained_info)
        self.publisher.subscribe(f"{self.topics.base}/+/replay", self._replay_requested)
        self._stop = threading.Event()
        self.lines: dict[str, SharedLine] = {}
        self.lanes = self._lanes(backoff, clock, wall_clock, random, tap)
        self.listeners = self._push_listeners(tap)
        self._started = False

    # --- construction -------------------------------------------------------------------

    def _lanes(self, backoff: BackOff, clock: Callable[[], float],
               wall_clock: Callable[[], float], random: Callable[[], float],
               tap: Tap) -> list[Lane]:
        """One lane per bus, per serial port and per TCP meter."""
        workers: dict[str, list[MeterWorker]] = {}
        for meter in self.config.meters:
            if meter.transport is None or not (meter.poll or meter.profiles or meter.clock
                                               or meter.events):
                continue
            line = None
            if isinstance(meter.transport, BusTransport):
                bus = self.config.bus(meter.transport.bus)
                line = self.lines.setdefault(bus.id, SharedLine(bus.id, bus.serial))
                lane = f"bus-{bus.id}"
            else:
                lane = f"meter-{meter.label}"
            workers.setdefault(lane, []).append(MeterWorker(
                meter, state_dir=self.config.state_dir, sink=self, line=line, tap=tap,
                wall_clock=wall_clock))
        return [Lane(name, targets, backoff=backoff, stop=self._stop, clock=clock,
                     random=random) for name, targets in workers.items()]

    def _push_listeners(self, tap: Tap) -> list[PushListener]:
        listeners = []
        for meter in self.config.meters:
            if meter.push is None:
                continue
            try:  # reads the meter's keys and counters: a bad file is this meter's problem only
                listeners.append(PushListener(meter, self.submit, self.problem, tap=tap,
                                              state_dir=self.config.state_dir))
            except (ConfigError, CounterError) as error:
                log.error("meter %s: cannot listen to its pushes: %s", meter.label, error,
                          extra={"meter": meter.label})
                if meter.id is not None:
                    self.problem(meter.id, "config_error", str(error))
        return listeners

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Self:
        self.publisher.start()
        for lane in self.lanes:
            lane.start()
        for listener in self.listeners:
            listener.start()
        self._started = True
        polled = sum(len(lane.targets) for lane in self.lanes)
        log.info("agent %s started: %d polled meter(s) on %d line(s), %d push listener(s); "
                 "MQTT %s:%d, topics %s", self.config.agent_id, polled, len(self.lanes),
                 len(self.listeners), self.config.mqtt.host, self.config.mqtt.port,
                 self.topics.all_topics())
        return self

    def stop(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> bool:
        """Stop polling, release associations, mark meters offline, flush the queue.

        Bounded by ``timeout`` seconds in all; True when every queued message reached
        the broker (what did not stays queued for the next start).
        """
        if self._stop.is_set():
            return False  # stopped already
        deadline = time.monotonic() + timeout
        self._stop.set()
        for lane in self.lanes:
            lane.wake()
        for listener in self.listeners:
            listener.stop()
        busy = [lane.name for lane in self.lanes
                if not lane.join(max(0.0, deadline - time.monotonic() - timeout / 2))]
        if busy:
            log.warning("still in a transaction at shutdown: %s", ", ".join(busy))
        for line in self.lines.values():
            line.shutdown()
        with self._lock:
            offline = [(self.topics.availability(meter_id), status_payload(False), 1, True)
                       for meter_id in self._known_meters()]
            self.publisher.publish_many(offline)
        if not self._started:
            self.publisher.queue.close()
            return False
        flushed = self.publisher.close(timeout=max(0.5, deadline - time.monotonic()))
        log.info("agent %s stopped; %s", self.config.agent_id,
                 "queue flushed" if flushed else
                 f"{len(self.publisher.queue)} message(s) stay queued for the next start")
        return flushed

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _known_meters(self) -> list[str]:
        ids = [m.id for m in self.config.meters if m.id is not None]
        return list(dict.fromkeys([*ids, *self._published]))

    # --- the sink: what pollers and listeners report -------------------------------------

    def identify(self, meter_id: str, identity: MeterIdentity) -> None:
        with self._lock:
            self._meter(meter_id).identity = identity
            self._forget_removed()

    def submit(self, meter_id: str, readings: list[Reading]) -> None:
        """Publish one poll's (or push's) readings of ``meter_id``."""
        if not readings:
            return
        with self._lock:
            state = self._meter(meter_id)
            self._forget_removed()
            for reading in readings:
                device_class, state_class = suggest(reading.obis, reading.unit)
                state.objects[reading.obis.dotted] = ObjectInfo(
                    reading.obis.dotted, reading.name, reading.class_id, reading.unit,
                    device_class, state_class)
            messages = self._info(meter_id, state)
            messages += self._health(meter_id, state, None, HEALTH_OK_MESSAGE)
            messages += self._availability(meter_id, state, True)
            for r in readings:
                messages.append((self.topics.value(meter_id, r.obis.dotted), value_payload(
                    r.value, r.unit, r.timestamp, r.obis.dotted, r.name), 1, True))
            snapshot = {r.obis.dotted: (r.value, r.unit) for r in readings}
            messages.append((self.topics.state(meter_id), state_payload(
                max(r.timestamp for r in readings), snapshot), 1, True))
            self.publisher.publish_many(messages)

    def profile_rows(self, meter_id: str, profile: str, rows: list[ProfileRow], *,
                     replay: bool = False) -> None:
        """Queue the rows (oldest first) of ``meter_id``'s profile ``profile`` in one
        transaction, one message per row; once this returns they are in the durable
        queue. Rows that came through mean the meter is fine: health ok, online.

        The time of the newest row is stored in the queue in the same transaction
        (:meth:`profile_mark`): a restart resumes after exactly what was queued. Rows
        sent again on request (``replay``) carry ``"replay": true`` and leave the mark
        and the peak demand alone: they were counted when first sent."""
        if not rows:
            return
        with self._lock:
            state = self._meter(meter_id)
            messages = self._health(meter_id, state, None, HEALTH_OK_MESSAGE)
            messages += self._availability(meter_id, state, True)
            topic = self.topics.profile(meter_id, profile)
            messages += [(topic, profile_row_payload(row.ts, row.values, row.units, row.status,
                                                     replay=replay), 1, False) for row in rows]
            marks: dict[str, str] = {}
            if not replay:
                marks[f"profile:{topic}"] = rows[-1].ts.isoformat()
                zone = self._profile_zone(meter_id, profile)
                messages += self._peak_from_profile(meter_id, state, topic, rows, marks, zone)
            self.publisher.publish_many(messages, marks)

    def _peak_from_profile(self, meter_id: str, state: _Published, topic: str,
                           rows: list[ProfileRow], marks: dict[str, str],
                           zone: dt.tzinfo | None) -> list[Message]:
        """The month's peak demand from profile rows, while the meter's own maximum demand
        register is not published (:mod:`.peak_demand`); its state joins ``marks``, in
        the rows' transaction (caller holds the lock). Months are those of ``zone`` (the
        profile's ``timezone``; None: the host's)."""
        own = state.objects.get(MAXIMUM_DEMAND)
        if own is not None and own.class_id != PROFILE_CLASS:
            return []
        key = f"peak:{topic}"
        text = self.publisher.queue.mark(key)
        before = json.loads(text) if text else None
        after, peak = ProfilePeak(zone).observe(before, rows)
        if after != before:
            marks[key] = json.dumps(after)
        if peak is None:
            return []
        device_class, state_class = suggest(MAXIMUM_DEMAND, "W")
        state.objects[MAXIMUM_DEMAND] = ObjectInfo(MAXIMUM_DEMAND, PEAK_NAME, PROFILE_CLASS, "W",
                                                   device_class, state_class)
        messages = self._info(meter_id, state)
        messages.append((self.topics.value(meter_id, MAXIMUM_DEMAND), value_payload(
            round(peak.watts, 1), "W", peak.at, MAXIMUM_DEMAND, PEAK_NAME), 1, True))
        return messages

    def history_backlog(self) -> str | None:
        """Why profile rows should wait: the durable queue past HISTORY_HIGH_WATER."""
        queue = self.publisher.queue
        fill = queue.fill
        if fill < HISTORY_HIGH_WATER:
            return None
        return (f"the MQTT queue holds {len(queue)} message(s), {fill:.0%} of its bounds "
                f"(rows are read below {HISTORY_HIGH_WATER:.0%}; the meter keeps them "
                "meanwhile)")

    def profile_mark(self, meter_id: str, profile: str) -> dt.datetime | None:
        """The time of the newest row of the profile ever queued (None: never)."""
        text = self.publisher.queue.mark(f"profile:{self.topics.profile(meter_id, profile)}")
        return None if text is None else dt.datetime.fromisoformat(text)

    def publish_clock(self, meter_id: str, payload: bytes) -> None:
        """The meter's clock (``clock``, retained); a clock read means the meter answers."""
        with self._lock:
            state = self._meter(meter_id)
            messages = self._health(meter_id, state, None, HEALTH_OK_MESSAGE)
            messages += self._availability(meter_id, state, True)
            messages.append((self.topics.clock(meter_id), payload, 1, True))
            self.publisher.publish_many(messages)

    def publish_events(self, meter_id: str, log: str, payloads: list[bytes],
                       mark: str) -> None:
        """Queue events (oldest first) of the event log ``log``, one ``event`` message each
        (QoS 1, not retained), with the log's ``mark`` (where the agent stopped in it) in
        the same transaction (:meth:`events_mark`); once this returns both are in the
        durable queue. Without ``payloads`` the mark alone is stored."""
        key = self._events_key(meter_id, log)
        if not payloads:
            self.publisher.publish_many([], {key: mark})
            return
        with self._lock:
            state = self._meter(meter_id)
            messages = self._health(meter_id, state, None, HEALTH_OK_MESSAGE)
            messages += self._availability(meter_id, state, True)
            topic = self.topics.event(meter_id)
            messages += [(topic, payload, 1, False) for payload in payloads]
            self.publisher.publish_many(messages, {key: mark})

    def events_mark(self, meter_id: str, log: str) -> str | None:
        """The mark of ``meter_id``'s event log ``log`` stored with its events (None:
        none yet)."""
        return self.publisher.queue.mark(self._events_key(meter_id, log))

    def _events_key(self, meter_id: str, log: str) -> str:
        return f"events:{self.topics.event(meter_id)}:{log}"

    def problem(self, meter_id: str, code: str, message: str) -> None:
        """``meter_id`` has a problem: health ``code`` and availability offline.

        A code outside the contract becomes ``unreachable`` (the meter's data does not
        come through), its name kept in the message, so subscribers get no surprises.
        """
        if code not in HEALTH_CODES:
            message = f"{code}: {message}"
            code = "unreachable"
        with self._lock:
            state = self._meter(meter_id)
            messages = self._health(meter_id, state, code, message)
            messages += self._availability(meter_id, state, False)
            if messages:
                self.publisher.publish_many(messages)

    # --- the broker came back -------------------------------------------------------------

    def _connection_changed(self, connected: bool) -> None:
        """On every reconnection, publish each meter's retained documents again: a broker
        without persistence comes back empty, and subscribers (Home Assistant offers a
        meter for removal when its ``info`` stays gone) must find them (paho's thread).

        The first connection has nothing to restore: everything published so far is still
        in the queue, whose bounds keep the newest retained message of every topic, and
        publishing it again would show subscribers each document twice."""
        if not connected:
            return
        if not self._reached_broker:
            self._reached_broker = True
            return
        with self._lock:
            messages: list[Message] = []
            for meter_id, state in self._published.items():
                if state.info is not None:
                    state.info = None  # published again, with its discovery configs
                    messages += self._info(meter_id, state)
                if state.health is not None:
                    code, message = state.health
                    messages.append((self.topics.health(meter_id),
                                     health_payload(code, message, state.since), 1, True))
                if state.available is not None:
                    messages.append((self.topics.availability(meter_id),
                                     status_payload(state.available), 1, True))
            if messages:
                self.publisher.publish_many(messages)

    # --- subscribers asking for profile rows again ----------------------------------------

    def _workers(self) -> Iterator[tuple[Lane, MeterWorker]]:
        for lane in self.lanes:
            for target in lane.targets:
                if isinstance(target, MeterWorker):
                    yield lane, target

    def _replay_requested(self, topic: str, payload: bytes) -> None:
        """A subscriber asks for rows of a profile again (paho's thread): note it with the
        meter's worker and have its lane serve it soon. Requests are not retained; one
        for a meter or profile this agent does not publish is logged and dropped."""
        meter_id = self.topics.meter_of(topic, "replay")
        if meter_id is None or not payload:
            return
        try:
            request = ReplayRequest.decode(payload)
        except DecodeError as exc:
            log.warning("meter %s: replay request ignored: %s", meter_id, exc,
                        extra={"meter": meter_id})
            return
        found = next(((lane, worker) for lane, worker in self._workers()
                      if worker.meter_id == meter_id), None)
        if found is None:
            log.warning("meter %s: replay request for profile %s ignored: this agent polls no "
                        "meter of that id", meter_id, request.profile, extra={"meter": meter_id})
            return
        lane, worker = found
        try:
            profile = worker.request_replay(request)
        except ConfigError as exc:
            log.warning("meter %s: replay request ignored: %s", meter_id, exc,
                        extra={"meter": meter_id})
            return
        lane.hurry(worker, profile.name)

    def _profile_zone(self, meter_id: str, profile: str) -> dt.tzinfo:
        """The time zone configured for ``profile`` of ``meter_id`` (None: the host's)."""
        name = next((p.timezone for _, worker in self._workers() if worker.meter_id == meter_id
                     for p in worker.meter.profiles if p.obis == profile), None)
        return zone_named(name)

    def _profiles_of(self, meter_id: str) -> tuple[str, ...]:
        return next((tuple(p.obis for p in worker.meter.profiles)
                     for _, worker in self._workers() if worker.meter_id == meter_id), ())

    # --- meters removed from the config --------------------------------------------------

    def _retained_info(self, topic: str, payload: bytes) -> None:
        """A (retained) ``info`` of this agent arrived from the broker (paho's thread)."""
        meter = self.topics.meter_of(topic, "info")
        if meter is None or not payload:
            return  # an empty payload is a clearing, ours or a ``forget``'s
        with self._lock:
            self._stale_infos[meter] = payload
            self._forget_removed()

    def _configured_ids(self) -> tuple[set[str], int]:
        """Ids of the configured meters known now, and how many are not named yet."""
        ids = {m.id for m in self.config.meters if m.id is not None} | set(self._published)
        unnamed = 0
        for worker in (w for lane in self.lanes for w in lane.targets):
            if worker.meter_id is None:
                unnamed += 1
            else:
                ids.add(worker.meter_id)
        unnamed += sum(1 for listener in self.listeners if not listener.named)
        return ids, unnamed

    def _forget_removed(self) -> None:
        """Clear the retained topics of meters the broker holds but the config has not
        (caller holds the lock)."""
        if not self._stale_infos:
            return
        configured, unnamed = self._configured_ids()
        for meter in configured & set(self._stale_infos):
            del self._stale_infos[meter]
        if not self._stale_infos or unnamed:
            return  # an unnamed configured meter may be one of them: wait until it is named
        discovery = self.config.mqtt.discovery_prefix if self.config.mqtt.discovery else None
        for meter, info in self._stale_infos.items():
            messages = forget_messages(self.topics, meter, info, discovery)
            log.info("meter %s is not in the config any more: clearing its %d retained "
                     "topic(s) from the broker", meter, len(messages), extra={"meter": meter})
            self.publisher.publish_many(messages)
        self._stale_infos.clear()

    # --- change detection ---------------------------------------------------------------

    def _meter(self, meter_id: str) -> _Published:
        state = self._published.get(meter_id)
        if state is None:
            self.topics.meter(meter_id)  # ConfigError for an id that cannot be a topic
            state = self._published[meter_id] = _Published()
        return state

    def _info(self, meter_id: str, state: _Published) -> list[Message]:
        identity = state.identity
        info = MeterInfo(self.config.agent_id, meter_id, identity.serial,
                         identity.manufacturer, identity.model, identity.firmware,
                         identity.system_title, __version__,
                         objects_info(state.objects.values()), self._profiles_of(meter_id))
        payload = info.encode()
        if payload == state.info:
            return []
        state.info = payload
        messages: list[Message] = [(self.topics.info(meter_id), payload, 1, True)]
        if self.config.mqtt.discovery:
            messages += [(topic, body, 1, True) for topic, body in discovery_messages(
                self.topics, info, self.config.mqtt.discovery_prefix)]
        return messages

    def _health(self, meter_id: str, state: _Published, code: str | None,
                message: str) -> list[Message]:
        if state.health == (code, message):
            return []
        if state.health is None or state.health[0] != code:
            state.since = self.wall_clock()
        state.health = (code, message)
        if code is not None:
            log.info("meter %s: health %s", meter_id, code,
                     extra={"meter": meter_id, "code": code})
        return [(self.topics.health(meter_id), health_payload(code, message, state.since), 1,
                 True)]

    def _availability(self, meter_id: str, state: _Published, online: bool
                      ) -> list[Message]:
        if state.available is online:
            return []
        state.available = online
        log.info("meter %s: %s", meter_id, "online" if online else "offline",
                 extra={"meter": meter_id})
        return [(self.topics.availability(meter_id), status_payload(online), 1, True)]
