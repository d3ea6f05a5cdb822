"""The standard event log (0.0.99.98.0.255) and its event object (0.0.96.11.0.255).

Rows are ``{clock, event code}`` with the IDIS / DSMR standard event codes. The log holds
the last :data:`CAPACITY` events: power failures from the household curve (the same
outages that take energy out of the profile and set the power-down bit in its status),
the head end's occasional clock synchronisations, and what clients did (a SET of the
clock logs 4 and 5 with the old and the new time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
    EVENT_LOG_CLEARED = 255


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
        if self.cleared_at is not None:
            recorded.append(LoggedEvent(self.cleared_at + clock_offset_at(meter, self.cleared_at),
                                        EventCode.EVENT_LOG_CLEARED, self.cleared_at))
        # Entries in the order they happened (a meter appends to its log; after a clock
        # set backwards, a later entry may carry an earlier time stamp).
        merged = sorted(found + recorded, key=lambda e: e.world or e.when)
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
