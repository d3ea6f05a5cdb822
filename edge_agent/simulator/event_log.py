"""The standard event log (0.0.99.98.0.255) and its event object (0.0.96.11.0.255).

Rows are ``{clock, event code}`` with the IDIS / DSMR standard event codes. The log holds
the last :data:`CAPACITY` events: power failures from the household curve (the same
outages that take energy out of the profile and set the power-down bit in its status),
the head end's occasional clock synchronisations, and what clients did (a SET of the
clock logs 4 and 5 with the old and the new time).

Those come at the pace of simulated days (an outage about every 25 days), so a log
watched in real time would never change. With an :class:`EventPace` (``dlms-edge
simulate --events-every 10m``) the meter also logs, from its start on, one head-end event
at every multiple of the interval since its installation: in turn a clock
synchronisation that moved nothing (4 and 5 with the same time) and a clearing of the
alarm register (11). Neither changes a measured value, the clock or the profile; the
times are a function of the world's clock, so an injected clock decides them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from functools import lru_cache

from edge_agent.dlms.encoding.axdr import OctetString, Unsigned
from edge_agent.simulator.loadprofile import (
    CLOCK_CAPTURE,
    CaptureObject,
    Column,
    EntrySource,
    ProfileBuffer,
)
from edge_agent.simulator.model import DAY_SECONDS, Meter
from edge_agent.simulator.objects import Attribute, CosemObject, Request

EVENT_LOG_LN = bytes((0, 0, 99, 98, 0, 255))
EVENT_CODE_LN = bytes((0, 0, 96, 11, 0, 255))
CAPACITY = 100


class EventCode(IntEnum):
    """Standard event log codes (IDIS package 2, DSMR 5.0 table "Standard Event Log")."""

    POWER_DOWN = 1
    POWER_UP = 2
    CLOCK_ADJUSTED_OLD_TIME = 4
    CLOCK_ADJUSTED_NEW_TIME = 5
    ALARM_REGISTER_CLEARED = 11
    EVENT_LOG_CLEARED = 255


#: What a paced event logs, in turn (grid index modulo its length): a head end's clock
#: synchronisation that found nothing to correct, then its clearing of the alarm register.
PACED_EVENTS: tuple[tuple[EventCode, ...], ...] = (
    (EventCode.CLOCK_ADJUSTED_OLD_TIME, EventCode.CLOCK_ADJUSTED_NEW_TIME),
    (EventCode.ALARM_REGISTER_CLEARED,),
)

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$", re.IGNORECASE)
_EVERY_UNITS = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    """``--events-every``: a duration in seconds (``90``, ``30s``, ``10m``, ``1h``, ``1d``);
    0 switches paced events off."""
    match = _EVERY.match(text)
    if match is None:
        raise ValueError(f"expected a duration such as 30s, 10m, 1h or 0 (off), got {text!r}")
    seconds = float(match[1]) * _EVERY_UNITS[match[2] and match[2].lower()]
    if 0 < seconds < 0.01:
        raise ValueError(f"events cannot come more often than every 0.01 s (the clock's "
                         f"hundredths), got {text!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class EventPace:
    """Head-end events at every multiple of ``every`` since the installation, after
    ``since`` (world time: when the simulator started)."""

    since: datetime
    every: timedelta

    @classmethod
    def starting(cls, now: datetime, every_seconds: float) -> EventPace:
        # Whole hundredths, the resolution of a COSEM date-time: logged times are exact.
        every = timedelta(milliseconds=round(every_seconds * 1000 / 10) * 10)
        if every <= timedelta(0):
            raise ValueError(f"the pace of events must be positive, got {every_seconds} s")
        return cls(now.astimezone(UTC), every)

    def events(self, origin: datetime, after: datetime, until: datetime, limit: int
               ) -> list[tuple[datetime, EventCode]]:
        """The paced events in (max(since, after), until], the last ``limit`` grid points
        at most, oldest first."""
        start = max(self.since, after)
        if until <= start:
            return []
        first = (start - origin) // self.every + 1
        last = (until - origin) // self.every
        found: list[tuple[datetime, EventCode]] = []
        for k in range(max(first, last - limit + 1), last + 1):
            at = origin + k * self.every
            found.extend((at, code) for code in PACED_EVENTS[k % len(PACED_EVENTS)])
        return found


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    when: datetime  # meter clock, UTC
    code: int
    world: datetime | None = None  # when it happened (world time): the log's entry order


def clock_offset_at(meter: Meter, world: datetime) -> timedelta:
    """The meter clock's offset from world time when ``world`` happened: an event keeps
    the time stamp its meter wrote then, whatever later settings of the clock did. The
    meter's records of clock settings (codes 4 and 5, old and new time) tell it."""
    offset = meter.clock_offset
    for record in reversed(meter.recorded_events):
        if record.code == EventCode.CLOCK_ADJUSTED_NEW_TIME and record.world <= world:
            return record.when - record.world
        if record.code == EventCode.CLOCK_ADJUSTED_OLD_TIME:
            offset = record.when - record.world  # the offset before that setting
    return offset


class EventLogSource(EntrySource):
    """The last ``capacity`` events up to now, oldest first."""

    def __init__(self, meter: Meter, capacity: int = CAPACITY) -> None:
        self.meter = meter
        self.capacity = capacity
        self.cleared_at: datetime | None = None  # world time of the last reset
        # Deterministic events of one whole day, in world-time seconds since installation.
        self._day_events = lru_cache(maxsize=4096)(self._events_of_day)

    def _events_of_day(self, day: int) -> tuple[tuple[float, int], ...]:
        curve = self.meter.curve
        events = []
        outage = curve.outage(day)
        if outage is not None:
            events.append((day * DAY_SECONDS + outage.start, EventCode.POWER_DOWN))
            events.append((day * DAY_SECONDS + outage.end, EventCode.POWER_UP))
        if curve.noise(b"clock-sync", day) < 0.02:
            at = day * DAY_SECONDS + int(curve.noise(b"clock-sync-at", day) * DAY_SECONDS)
            events.append((at, EventCode.CLOCK_ADJUSTED_OLD_TIME))
            events.append((at, EventCode.CLOCK_ADJUSTED_NEW_TIME))
        return tuple(sorted(events))

    def entries(self, request: Request) -> list[LoggedEvent]:
        meter = self.meter
        curve = meter.curve
        now = curve.seconds(request.world_now)
        floor = 0.0 if self.cleared_at is None else curve.seconds(self.cleared_at)
        recorded = [LoggedEvent(e.when, e.code, e.world) for e in meter.recorded_events
                    if curve.seconds(e.world) > floor]
        found: list[LoggedEvent] = []
        day = int(now // DAY_SECONDS)
        while day >= 0 and day * DAY_SECONDS + DAY_SECONDS > floor \
                and len(found) < self.capacity:
            for seconds, code in reversed(self._day_events(day)):
                if floor < seconds <= now:
                    world = curve.origin + timedelta(seconds=seconds)
                    found.append(LoggedEvent(world + clock_offset_at(meter, world), code, world))
            day -= 1
        pace = meter.event_pace
        if pace is not None:
            after = curve.origin if self.cleared_at is None else self.cleared_at
            for world, code in pace.events(curve.origin, after, request.world_now, self.capacity):
                found.append(LoggedEvent(world + clock_offset_at(meter, world), code, world))
        if self.cleared_at is not None:
            recorded.append(LoggedEvent(self.cleared_at + clock_offset_at(meter, self.cleared_at),
                                        EventCode.EVENT_LOG_CLEARED, self.cleared_at))
        # Entries in the order they happened (a meter appends to its log; after a clock
        # set backwards, a later entry may carry an earlier time stamp); at one instant,
        # by code: the old time (4) before the new (5).
        merged = sorted(found + recorded, key=lambda e: (e.world or e.when, e.code))
        return merged[-self.capacity:]

    def time_of(self, entry: LoggedEvent) -> datetime:
        return entry.when

    def reset(self, request: Request) -> None:
        self.cleared_at = request.world_now


def event_log_objects(meter: Meter) -> tuple[CosemObject, CosemObject]:
    """The event log (class 7) and the last event code (Data, class 1)."""
    source = EventLogSource(meter)
    code_capture = CaptureObject(1, EVENT_CODE_LN, 2)
    buffer = ProfileBuffer(source, (
        Column(CLOCK_CAPTURE, lambda e, r: OctetString(meter.cosem_time(e.when).encode())),
        Column(code_capture, lambda e, r: Unsigned(e.code)),
    ), capture_period=0, profile_entries=CAPACITY, local_to_utc=meter.local_to_utc)

    def last_code(request: Request) -> Unsigned:
        entries = source.entries(request)
        return Unsigned(entries[-1].code if entries else 0)

    return (buffer.cosem_object(EVENT_LOG_LN, source.reset),
            CosemObject(1, 0, EVENT_CODE_LN, {2: Attribute(get=last_code)}))
