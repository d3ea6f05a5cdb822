"""The meter's clock and event logs, for the ``clock`` and ``event`` topics.

Both run on a meter's lane like poll groups (config ``clock:`` and ``events:``, each with
its ``interval``; on by default for polled meters) over the worker's association.

**Clock** (:class:`ClockWatch`): one read of the Clock object (0.0.1.0.0.255, class 8,
Blue Book 4.5.1: time, time_zone, status, daylight-saving settings, clock_base) in one
GET-with-list. The agent's time of the reading is the middle of the exchange; the drift
is meter time minus agent time (positive: the meter is ahead). With ``clock_sync`` the
clock is then moved by minus the drift, only when

* the drift lies within ``[min_step, max_step]`` (a larger error needs a person: the
  agent's own clock may be the wrong one),
* the clock's status does not flag its time invalid or doubtful (4.1.6.1), and
* the meter handles daylight saving as configured: ``daylight_saving: true`` means the
  meter switches to summer time itself (attribute 8 daylight_savings_enabled true), in
  step with the configured zone (the profiles' ``timezone``, else the host's); a meter
  whose attribute 8 says otherwise, whose status bit "daylight saving active" is set
  while ``daylight_saving`` is false, or -- with ``daylight_saving: true`` -- whose status
  bit disagrees with whether that zone is in summer time at the reading, is never set,
  since moving it would mix two time bases. A status "not specified" (0xFF) says
  nothing either way.

It moves the clock with the method ``shift_time`` (method 6, -900..900 s), which touches
neither the time zone nor the DST state; where the association grants only a write of
``time`` (attribute 2), it SETs the time read plus the step, with the deviation and
status the meter sent. Every sync and every refusal is logged and reported in the
payload's ``sync`` member.

**Events** (:class:`EventFeed`): every event log in the association view (profile
generic objects whose capture objects are the clock and an event object 0.0.96.11.x.255,
:mod:`edge_agent.dlms.cosem.event_log`), or the configured ``logs``, read by entry
(Blue Book 4.3.6 entry_descriptor, selector 2) from the last event seen. Where each log
was -- its *mark*: entry number, the last event's time stamp octets and code, its time --
is stored in the durable queue in the same SQLite transaction as the events it follows
(:meth:`edge_agent.mqtt.queue.OfflineQueue.append_many` marks, as the load profile's
newest row is): the events and the mark are committed together or not at all, so a
restart, even after the process was killed between the two, neither repeats nor skips
one. The meter's facts keep a copy (``events_seen``: log OBIS -> mark), written after the
queue, for tools that read the state dir and for a queue file that was deleted; when
the queue holds a mark it wins. The rows from the mark's entry on are read and the last
seen event is looked for at its entry number, then further back (a full log shifts its
entries as the oldest drop out; a cleared log starts again at 1). Events after it are
published oldest first, one message each. When the last seen event is not in the log
any more (cleared, or overwritten while the agent was away), the events newer than its
time are published and a warning says some may have been lost. The first read of a log
publishes the events of the last ``backfill``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from edge_agent.agent.config_model import ClockConfig, ClockSyncConfig, EventsConfig
from edge_agent.client.client import MeterClient
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.cosem import clock as cosem_clock
from edge_agent.dlms.cosem.clock import ClockReading, status_names
from edge_agent.dlms.cosem.event_log import (
    STANDARD_EVENT_LOG,
    Event,
    EventLogShape,
    event_log_shape,
)
from edge_agent.dlms.cosem.interface_classes import (
    ObjectListEntry,
    entry_descriptor,
    parse_buffer,
    parse_capture_objects,
)
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.axdr import Long
from edge_agent.dlms.errors import DecodeError, ServiceError
from edge_agent.mqtt.payloads import clock_payload, event_payload
from edge_agent.state.facts import FactStore

log = logging.getLogger(__name__)

#: The fact holding, per event log OBIS, where the agent stopped (see the docstring).
EVENTS_SEEN = "events_seen"
PROFILE_CLASS = 7
BUFFER, CAPTURE_OBJECTS, ENTRIES_IN_USE = 2, 3, 7  # profile generic (Blue Book 4.3.6)
WINDOW = 32  # entries per look back for the last seen event (doubling)


class ClockEventsSink(Protocol):
    """Where the clock and the events go (the agent)."""

    def publish_clock(self, meter_id: str, payload: bytes) -> None: ...

    def publish_events(self, meter_id: str, log: str, payloads: list[bytes],
                       mark: str) -> None:
        """Queue the events (oldest first) of the event log ``log`` and its ``mark`` (JSON,
        where the agent stopped in that log) in one transaction; returns once queued.
        ``payloads`` may be empty: the mark alone moves."""
        ...

    def events_mark(self, meter_id: str, log: str) -> str | None:
        """The mark of ``log`` stored with its events (None: none stored)."""
        ...


def _entry(view: Sequence[ObjectListEntry] | None, code: Obis) -> ObjectListEntry | None:
    return next((e for e in view or () if e.logical_name == code), None)


def _aware(moment: dt.datetime) -> dt.datetime:
    """A meter time without deviation is local time in the meter's zone (the
    ``timezone`` of the meter's profiles, applied when the rows are read), else the
    host's: the agent sits next to the meter."""
    return moment if moment.tzinfo is not None else moment.astimezone()


# --- clock -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What clock_sync does with one reading: ``result`` and, to act, the step (s)."""

    result: str  # in_tolerance | out_of_bounds | refused | shift | set
    step: int | None
    message: str


@dataclass(frozen=True, slots=True)
class ZoneSeason:
    """Whether the configured zone is in summer time at the reading, and its name."""

    summer: bool
    name: str

    @classmethod
    def at(cls, moment: dt.datetime, zone: dt.tzinfo | None) -> ZoneSeason:
        """``zone`` None: the host's, whose rules only the C library knows (``astimezone()``
        gives a fixed offset without them)."""
        if zone is None:
            local = time.localtime(moment.timestamp())
            return cls(local.tm_isdst > 0, f"the host's zone ({local.tm_zone})")
        local_time = moment.astimezone(zone)
        key = getattr(zone, "key", None)  # a ZoneInfo's IANA name
        name = f"{key or zone} ({local_time.tzname() or '?'})"
        return cls(bool(local_time.dst()), name)


def plan_sync(reading: ClockReading, drift: float, sync: ClockSyncConfig, *,
              may_shift: bool, may_write: bool, season: ZoneSeason | None = None) -> SyncPlan:
    """The decision of ``clock_sync`` for one reading (no I/O); see the module docstring.
    ``season``: the configured zone at the reading (None: not compared)."""
    if not reading.trusted:
        return SyncPlan("refused", None, f"the clock's status flags its time "
                        f"{', '.join(status_names(reading.status) or [])}; not setting a "
                        "clock that does not know its own time: set it by hand")
    enabled = reading.daylight_savings_enabled
    if enabled is not None and enabled != sync.daylight_saving:
        return SyncPlan("refused", None, (
            f"the meter {'switches' if enabled else 'does not switch'} to summer time itself "
            f"(daylight_savings_enabled {str(enabled).lower()}) but clock_sync.daylight_saving "
            f"is {str(sync.daylight_saving).lower()}; fix the config (or the meter) first"))
    if not sync.daylight_saving and reading.daylight_saving_active:
        return SyncPlan("refused", None, (
            "the clock's status says daylight saving is active but clock_sync.daylight_saving "
            "is false; fix the config (or the meter) first"))
    active = reading.daylight_saving_active
    if sync.daylight_saving and season is not None and active is not None \
            and active != season.summer:
        return SyncPlan("refused", None, (
            f"the clock's status says daylight saving is {'active' if active else 'not active'}"
            f" but the configured zone {season.name} is in "
            f"{'summer' if season.summer else 'standard'} time; the meter and the agent "
            "disagree on summer time: set profiles[].timezone to the meter's zone (or fix the "
            "meter's daylight-saving settings) first"))
    magnitude = abs(drift)
    if magnitude < sync.min_step:
        return SyncPlan("in_tolerance", None, f"drift {drift:+.2f} s is within min_step "
                                              f"{sync.min_step:g} s")
    if magnitude > sync.max_step:
        return SyncPlan("out_of_bounds", None, (
            f"drift {drift:+.2f} s exceeds max_step {sync.max_step:g} s; not set (check the "
            "agent's own time first, then set the meter's clock by hand)"))
    step = -round(drift)
    if may_shift:
        return SyncPlan("shift", step, f"shift_time by {step:+d} s")
    if may_write:
        return SyncPlan("set", step, f"time set {step:+d} s")
    return SyncPlan("refused", None, "the association may neither call the clock's shift_time "
                                     "(method 6) nor write its time (attribute 2): use a "
                                     "client with those rights")


class ClockWatch:
    """Reads one meter's clock; publishes it; sets it when configured and allowed."""

    def __init__(self, config: ClockConfig, wall_clock: Callable[[], float],
                 label: str, zone: dt.tzinfo | None = None) -> None:
        self.config = config
        self.zone = zone  # of a meter that sends no deviation; None: the host's
        self.wall_clock = wall_clock
        self.label = label
        self._missing_warned = False

    def run(self, client: MeterClient, view: Sequence[ObjectListEntry] | None,
            publish: Callable[[bytes], None]) -> bool:
        """One reading; False when the association cannot read the clock's time."""
        entry = _entry(view, cosem_clock.CLOCK)
        if view and entry is None:
            if not self._missing_warned:
                self._missing_warned = True
                log.warning("meter %s: no clock (0.0.1.0.0.255) in the association's object "
                            "list; its drift is not published", self.label,
                            extra={"meter": self.label})
            return False
        attributes = [a for a in cosem_clock.ATTRIBUTES
                      if entry is None or entry.attribute_readable(a)]
        before = self.wall_clock()
        answers = client.get_many([(cosem_clock.CLOCK, cosem_clock.CLOCK_CLASS, a)
                                   for a in attributes])
        after = self.wall_clock()
        values = {a: v for a, v in zip(attributes, answers)
                  if not isinstance(v, DataAccessResult)}
        if cosem_clock.TIME not in values:
            refused = answers[attributes.index(cosem_clock.TIME)] \
                if cosem_clock.TIME in attributes else "not readable in the object list"
            if not self._missing_warned:
                self._missing_warned = True
                log.warning("meter %s: the clock's time (0.0.1.0.0.255 attribute 2) is not "
                            "readable (%s); its drift is not published: use a client SAP "
                            "allowed to read it", self.label, refused,
                            extra={"meter": self.label})
            return False
        reading = ClockReading.from_attributes(values)
        agent_time = dt.datetime.fromtimestamp((before + after) / 2, dt.UTC)
        zone = self.zone or agent_time.astimezone().tzinfo
        try:
            meter_time: dt.datetime | None = reading.meter_time(zone)
        except DecodeError as error:
            log.warning("meter %s: clock time unusable (%s)", self.label, error,
                        extra={"meter": self.label})
            meter_time = None
        drift = None if meter_time is None else (meter_time - agent_time).total_seconds()
        sync = self._sync(client, entry, reading, drift, agent_time)
        local = reading.time.to_datetime().replace(tzinfo=None).isoformat() \
            if meter_time is not None else None
        publish(clock_payload(
            agent_time=agent_time, meter_time=meter_time, meter_local_time=local, drift=drift,
            deviation=reading.time.deviation, status=status_names(reading.status),
            status_raw=reading.status, time_zone=reading.time_zone,
            daylight_saving={"enabled": reading.daylight_savings_enabled,
                             "active": reading.daylight_saving_active,
                             "deviation": reading.daylight_savings_deviation,
                             "begin": _pattern(reading.daylight_savings_begin),
                             "end": _pattern(reading.daylight_savings_end)},
            clock_base=reading.clock_base_name, sync=sync))
        return True

    def _sync(self, client: MeterClient, entry: ObjectListEntry | None, reading: ClockReading,
              drift: float | None, agent_time: dt.datetime) -> dict[str, object]:
        settings = self.config.sync
        if settings is None:
            return {"enabled": False}
        if drift is None:
            plan = SyncPlan("refused", None, "the clock's time is unusable")
        else:
            may_shift = entry is None or any(
                m.method_id == cosem_clock.SHIFT_TIME and m.access_mode in (1, 2)
                for m in entry.method_access)
            may_write = entry is not None and any(
                a.attribute_id == cosem_clock.TIME and a.writable for a in entry.attribute_access)
            plan = plan_sync(reading, drift, settings, may_shift=may_shift, may_write=may_write,
                             season=ZoneSeason.at(agent_time, self.zone))
        result, message = plan.result, plan.message
        if plan.step is not None:
            try:
                if plan.result == "shift":
                    client.action(cosem_clock.CLOCK, cosem_clock.CLOCK_CLASS,
                                  cosem_clock.SHIFT_TIME, Long(plan.step))
                else:
                    client.set(cosem_clock.CLOCK, cosem_clock.CLOCK_CLASS, cosem_clock.TIME,
                               cosem_clock.shifted_time(reading, plan.step))
                result = "shifted" if plan.result == "shift" else "set"
                log.info("meter %s: clock drift %+.2f s; %s", self.label, drift, message,
                         extra={"meter": self.label, "drift": drift, "step": plan.step})
            except ServiceError as error:
                result, message = "failed", f"{message} refused by the meter: {error}"
                log.warning("meter %s: clock sync %s", self.label, message,
                            extra={"meter": self.label})
        elif result in ("out_of_bounds", "refused"):
            log.warning("meter %s: clock not set: %s", self.label, message,
                        extra={"meter": self.label})
        return {"enabled": True, "result": result,
                "step": plan.step if result in ("shifted", "set") else None,
                "message": message}


def _pattern(value: Any) -> str | None:
    """A DST begin/end pattern in the readable text form (``****-03-FE 02:00:00...``)."""
    return None if value is None else str(value)


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mark:
    """Where the agent stopped in one log: the last event seen and its entry number."""

    entry: int
    identity: tuple[str, int | None]
    ts: dt.datetime

    @classmethod
    def load(cls, raw: Any) -> Mark | None:
        try:
            stamp, code = raw["event"]
            return cls(int(raw["entry"]), (str(stamp), None if code is None else int(code)),
                       dt.datetime.fromisoformat(raw["ts"]))
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def of(cls, event: Event, entry: int) -> Mark:
        return cls(entry, event.identity, _aware(event.ts))

    def dump(self) -> dict[str, Any]:
        return {"entry": self.entry, "event": list(self.identity), "ts": self.ts.isoformat()}

    @classmethod
    def decode(cls, text: str | None) -> Mark | None:
        """A mark from its JSON text (the queue's), None when absent or unreadable."""
        if text is None:
            return None
        try:
            return cls.load(json.loads(text))
        except ValueError:
            return None

    def encode(self) -> str:
        return json.dumps(self.dump(), separators=(",", ":"))


# Where the new events of one log go with the log's new mark, in one transaction.
PublishEvents = Callable[[Obis, list[Event], Mark], None]
# The mark of a log stored with its events in the durable queue (None: none).
QueuedMark = Callable[[Obis], Mark | None]


class EventFeed:
    """The event logs of one meter: which they are, what was published, what is new."""

    def __init__(self, config: EventsConfig, facts: FactStore, facts_key: str,
                 wall_clock: Callable[[], float], label: str,
                 zone: dt.tzinfo | None = None) -> None:
        self.config = config
        self.zone = zone  # of a meter that sends no deviation; None: the host's
        self.facts = facts
        self.facts_key = facts_key
        self.wall_clock = wall_clock
        self.label = label
        self._shapes: tuple[MeterClient, list[EventLogShape]] | None = None
        self._warned: set[Obis] = set()

    # --- which logs ---------------------------------------------------------------------

    def logs(self, client: MeterClient, view: Sequence[ObjectListEntry] | None
             ) -> list[EventLogShape]:
        """The event logs to read, their capture objects read once per association."""
        if self._shapes is not None and self._shapes[0] is client:
            return self._shapes[1]
        profiles = [e.logical_name for e in view or ()
                    if e.class_id == PROFILE_CLASS and e.attribute_readable(BUFFER)]
        if self.config.logs is not None:
            wanted = [Obis.parse(text) for text in self.config.logs]
            for code in wanted:
                if view and code not in profiles and code not in self._warned:
                    self._warned.add(code)
                    log.warning("meter %s: event log %s is not readable in the association's "
                                "object list; skipped (check the client SAP)", self.label,
                                code.dotted, extra={"meter": self.label})
            candidates = [c for c in wanted if not view or c in profiles]
        else:
            candidates = profiles if view else [STANDARD_EVENT_LOG]
        shapes = []
        answers = client.get_many([(c, PROFILE_CLASS, CAPTURE_OBJECTS) for c in candidates]) \
            if candidates else []
        for code, answer in zip(candidates, answers):
            if isinstance(answer, DataAccessResult):
                if self.config.logs is not None:
                    log.warning("meter %s: capture objects of %s refused (%s); skipped",
                                self.label, code.dotted, answer.name.lower(),
                                extra={"meter": self.label})
                continue
            try:
                shape = event_log_shape(code, parse_capture_objects(answer))
            except DecodeError as error:
                log.warning("meter %s: capture objects of %s: %s", self.label, code.dotted,
                            error, extra={"meter": self.label})
                continue
            if shape is not None:
                shapes.append(shape)
            elif self.config.logs is not None:
                log.warning("meter %s: %s captures no clock and event code; not an event "
                            "log", self.label, code.dotted, extra={"meter": self.label})
        log.info("meter %s: event logs %s", self.label,
                 ", ".join(s.log.dotted for s in shapes) or "none",
                 extra={"meter": self.label})
        self._shapes = (client, shapes)
        return shapes

    # --- marks --------------------------------------------------------------------------

    def mark(self, code: Obis, queued: QueuedMark | None = None) -> Mark | None:
        """Where the agent stopped in ``code``: the queue's mark (stored with the events),
        else the facts' copy (a queue file deleted, or a state dir of an agent that kept
        its marks in the facts only)."""
        in_queue = queued(code) if queued is not None else None
        if in_queue is not None:
            return in_queue
        return Mark.load(self.facts.get_fact(self.facts_key, EVENTS_SEEN, {}).get(code.dotted))

    def _save(self, code: Obis, mark: Mark, events: list[Event],
              publish: PublishEvents) -> None:
        """Queue ``events`` with ``mark`` (one transaction), then copy the mark to the
        facts."""
        publish(code, events, mark)
        marks = dict(self.facts.get_fact(self.facts_key, EVENTS_SEEN, {}))
        marks[code.dotted] = mark.dump()
        self.facts.set(self.facts_key, **{EVENTS_SEEN: marks})

    # --- reading ------------------------------------------------------------------------

    def collect(self, client: MeterClient, view: Sequence[ObjectListEntry] | None,
                publish: PublishEvents, queued: QueuedMark | None = None) -> int:
        """Publish the new events of every log with the log's new mark (``publish``
        queues both in one transaction); how many went out. ``queued(log)``: the mark
        the queue holds, which wins over the facts' copy."""
        count = 0
        for shape in self.logs(client, view):
            try:
                count += self._collect(client, shape, publish, queued)
            except ServiceError as error:
                # One log the association may not read costs that log, not the meter's
                # health: the others and the values go on.
                if shape.log not in self._warned:
                    self._warned.add(shape.log)
                    log.warning("meter %s: event log %s not readable (%s); skipped",
                                self.label, shape.log.dotted, error,
                                extra={"meter": self.label})
        return count

    def _collect(self, client: MeterClient, shape: EventLogShape, publish: PublishEvents,
                 queued: QueuedMark | None) -> int:
        code = shape.log
        in_use = client.get(code, PROFILE_CLASS, ENTRIES_IN_USE)
        if isinstance(in_use, bool) or not isinstance(in_use, int):
            raise DecodeError(f"entries_in_use of {code.dotted} is {in_use!r}, not a number")
        mark = self.mark(code, queued)
        if in_use == 0:
            return 0
        reader = _Entries(client, shape, int(in_use), self.zone)
        if mark is None:
            cutoff = dt.datetime.fromtimestamp(self.wall_clock(), dt.UTC) - dt.timedelta(
                seconds=self.config.backfill)
            first, rows = reader.back_to(lambda event: _aware(event.ts) <= cutoff)
            fresh = [(first + i, e) for i, e in enumerate(rows) if _aware(e.ts) > cutoff]
        else:
            found, first, rows = reader.find(mark)
            if found is None:
                fresh = [(first + i, e) for i, e in enumerate(rows) if _aware(e.ts) > mark.ts]
                log.warning("meter %s: the last event seen in %s (%s) is not in the log any "
                            "more (cleared, or overwritten while the agent was away); "
                            "publishing the %d event(s) after its time: some may be lost",
                            self.label, code.dotted, mark.ts.isoformat(), len(fresh),
                            extra={"meter": self.label})
            else:
                fresh = [(first + i, e) for i, e in enumerate(rows) if i > found]
                if not fresh and first + found != mark.entry:  # shifted: remember where
                    self._save(code, Mark(first + found, mark.identity, mark.ts), [], publish)
        if fresh:
            entry, last = fresh[-1]
            self._save(code, Mark.of(last, entry), [event for _, event in fresh], publish)
            log.info("meter %s: %d event(s) of %s published, up to %s", self.label,
                     len(fresh), code.dotted, _aware(last.ts).isoformat(),
                     extra={"meter": self.label})
        elif mark is None and rows:  # nothing in the backfill: start after the newest
            self._save(code, Mark.of(rows[-1], first + len(rows) - 1), [], publish)
        return len(fresh)


class _Entries:
    """Rows of one log read by entry number (1-based), newest windows first."""

    def __init__(self, client: MeterClient, shape: EventLogShape, in_use: int,
                 zone: dt.tzinfo | None = None) -> None:
        self.zone = zone
        self.client = client
        self.shape = shape
        self.in_use = in_use
        self.selective = Conformance.SELECTIVE_ACCESS in client.conformance

    def read(self, first: int, last: int) -> list[Event]:
        """Entries ``first..last``; without selective access the whole buffer is read
        once and cut (a meter that grants no selector)."""
        code = self.shape.log
        if self.selective:
            value = self.client.get(code, PROFILE_CLASS, BUFFER, entry_descriptor(first, last))
            rows = parse_buffer(value, self.shape.capture_objects)
        else:
            rows = parse_buffer(self.client.get(code, PROFILE_CLASS, BUFFER),
                                self.shape.capture_objects)[first - 1:last]
        events = [self.shape.event(cells) for cells in rows]
        if self.zone is None:
            return events
        return [e if e.ts.tzinfo is not None else replace(e, ts=e.ts.replace(tzinfo=self.zone))
                for e in events]

    def back_to(self, old_enough: Callable[[Event], bool]) -> tuple[int, list[Event]]:
        """From the newest entry back until a row is ``old_enough`` or entry 1:
        (entry number of the first row, rows oldest first)."""
        size = WINDOW if self.selective else self.in_use
        rows: list[Event] = []
        first = self.in_use + 1
        while first > 1:
            start = max(1, first - size)
            older = self.read(start, first - 1)
            rows = older + rows
            first = start
            if not self.selective or (older and old_enough(older[0])):
                break
            size *= 2
        return first, rows

    def find(self, mark: Mark) -> tuple[int | None, int, list[Event]]:
        """Look for the last seen event: at its entry number first, then further back.
        (index of it in the rows or None, entry number of the first row, rows)."""
        first = max(1, min(mark.entry, self.in_use)) if self.selective else 1
        rows = self.read(first, self.in_use)
        if first == mark.entry and rows and rows[0].identity == mark.identity:
            return 0, first, rows
        size = WINDOW
        while True:
            index = next((i for i in range(len(rows) - 1, -1, -1)
                          if rows[i].identity == mark.identity), None)
            if index is not None or first == 1 or not self.selective:
                return index, first, rows
            if rows and _aware(rows[0].ts) < mark.ts:
                return None, first, rows  # already older than the mark: it is gone
            start = max(1, first - size)
            rows = self.read(start, first - 1) + rows
            first = start
            size *= 2


def event_payloads(events: Sequence[Event]) -> list[bytes]:
    """The contract's ``event`` payloads of ``events``."""
    return [event_payload(ts=_aware(e.ts), log=e.log.dotted, code=e.code, name=e.kind.name,
                          text=e.kind.text, status=status_names(e.stamp.status), raw=e.raw)
            for e in events]


# --- both, for the worker ----------------------------------------------------------------


class ClockAndEvents:
    """The clock and events groups of one meter, run by its worker on its association."""

    def __init__(self, clock: ClockConfig | None, events: EventsConfig | None,
                 facts: FactStore, facts_key: str, wall_clock: Callable[[], float],
                 label: str, zone: dt.tzinfo | None = None) -> None:
        self.clock = None if clock is None else ClockWatch(clock, wall_clock, label, zone)
        self.events = None if events is None else EventFeed(events, facts, facts_key,
                                                            wall_clock, label, zone)
        self.groups: tuple[ClockConfig | EventsConfig, ...] = tuple(
            g for g in (clock, events) if g is not None)

    def handles(self, group: object) -> bool:
        return isinstance(group, ClockConfig | EventsConfig)

    def run(self, client: MeterClient, group: object, view: Sequence[ObjectListEntry] | None,
            meter_id: str, sink: ClockEventsSink) -> None:
        """One run of ``group``; meter errors (DlmsError) propagate to the worker."""
        if isinstance(group, ClockConfig) and self.clock is not None:
            self.clock.run(client, view, lambda payload: sink.publish_clock(meter_id, payload))
        elif isinstance(group, EventsConfig) and self.events is not None:
            def publish(code: Obis, events: list[Event], mark: Mark) -> None:
                sink.publish_events(meter_id, code.dotted, event_payloads(events),
                                    mark.encode())

            self.events.collect(client, view, publish, lambda code: Mark.decode(
                sink.events_mark(meter_id, code.dotted)))


__all__ = ["EVENTS_SEEN", "ClockAndEvents", "ClockEventsSink", "ClockWatch", "EventFeed",
           "Mark", "PublishEvents", "QueuedMark", "SyncPlan", "ZoneSeason", "event_payloads",
           "plan_sync"]
