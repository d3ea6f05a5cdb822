"""Event logs: which profile generic objects are logs of events, and their rows as events.

An event log (Blue Book 4.3.6 profile generic, OBIS 0.0.99.98.x.255; 7.4.3 "event
objects") captures, per event, the clock and the value of an event object: a Data
object 0.0.96.11.x.255 holding the code of the last event (codes:
:mod:`edge_agent.dlms.cosem.event_codes`). Meters add columns of their own (a counter, a
status); they are kept as the event's ``raw`` cells. The Dutch power failure log
(DSMR 5.0.2, 1-0:99.97.0.255) has no code: each row is the end of a long power failure
and its duration (0-0:96.7.19.255, seconds).

:func:`event_log_shape` tells from the capture objects whether a profile is such a log
and which columns carry the time and the code; :meth:`EventLogShape.event` turns one
decoded buffer row into an :class:`Event`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.dlms.cosem.event_codes import LONG_POWER_FAILURE, EventCode, event_code
from edge_agent.dlms.cosem.interface_classes import CaptureObject
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import DecodeError

STANDARD_EVENT_LOG = Obis(0, 0, 99, 98, 0, 255)
POWER_FAILURE_LOG = Obis(1, 0, 99, 97, 0, 255)  # DSMR 5.0.2; IDIS meters use A = 0
# Value groups C.D of event objects (7.4.3) and of the long power failure duration.
EVENT_OBJECT = (96, 11)
POWER_FAILURE_DURATION = (96, 7)


def _is_event_code(capture: CaptureObject) -> bool:
    code = capture.logical_name
    return capture.class_id == 1 and capture.attribute_index == 2 and code.a == 0 \
        and (code.c, code.d) == EVENT_OBJECT


def _is_duration(capture: CaptureObject) -> bool:
    code = capture.logical_name
    return capture.attribute_index == 2 and (code.c, code.d) == POWER_FAILURE_DURATION


def is_power_failure_log(code: Obis) -> bool:
    """0.0.99.97.x.255 (IDIS) or 1.0.99.97.x.255 (DSMR): a power failure event log."""
    return code.a in (0, 1) and (code.c, code.d) == (99, 97)


@dataclass(frozen=True, slots=True)
class Event:
    """One row of an event log."""

    log: Obis
    ts: dt.datetime  # aware when the meter sent a deviation; naive: meter local time
    code: int | None  # None: a log without event codes (power failure durations)
    kind: EventCode
    raw: Mapping[str, Any]  # column key -> cell as decoded (CosemDateTime for the clock)
    stamp: CosemDateTime  # the time stamp as the meter wrote it

    @property
    def identity(self) -> tuple[str, int | None]:
        """What tells two events of one log apart besides their position: the time
        stamp's 12 octets as sent and the code."""
        return (self.stamp.encode().hex(), self.code)


@dataclass(frozen=True, slots=True)
class EventLogShape:
    """Where an event log keeps the time, the code (or the duration) and other columns."""

    log: Obis
    capture_objects: tuple[CaptureObject, ...]
    time: CaptureObject
    code: CaptureObject | None
    duration: CaptureObject | None

    def keys(self) -> dict[CaptureObject, str]:
        """A ``raw`` key per column: the OBIS code, with ``:attribute`` when one code fills
        several columns."""
        counts: dict[Obis, int] = {}
        for capture in self.capture_objects:
            counts[capture.logical_name] = counts.get(capture.logical_name, 0) + 1
        return {c: c.logical_name.dotted + (f":{c.attribute_index}"
                                            if counts[c.logical_name] > 1 else "")
                for c in self.capture_objects}

    def event(self, cells: Mapping[CaptureObject, Any]) -> Event:
        """One row (from :func:`~edge_agent.dlms.cosem.interface_classes.parse_buffer`)."""
        stamp = cells.get(self.time)
        if not isinstance(stamp, CosemDateTime):
            raise DecodeError(f"event log {self.log.dotted}: a row's time stamp is "
                              f"{stamp!r}, not a date-time; the row cannot be placed")
        moment = stamp.to_datetime()
        keys = self.keys()
        raw = {keys[capture]: value for capture, value in cells.items()}
        if self.code is not None:
            value = cells.get(self.code)
            if isinstance(value, bool) or not isinstance(value, int):
                raise DecodeError(f"event log {self.log.dotted}: event code {value!r} is "
                                  "not an integer (expected unsigned or long-unsigned)")
            return Event(self.log, moment, int(value), event_code(int(value)), raw, stamp)
        return Event(self.log, moment, None, LONG_POWER_FAILURE, raw, stamp)


def event_log_shape(log: Obis, capture_objects: Sequence[CaptureObject]
                    ) -> EventLogShape | None:
    """The shape of ``log`` if its capture objects make it an event log: the clock and an
    event object (0.0.96.11.x.255, attribute 2), or -- for a power failure log -- the
    clock and a duration (x.x.96.7.x.255). None for any other profile."""
    captures = tuple(capture_objects)
    time = next((c for c in captures if c.is_clock), None)
    if time is None:
        return None
    code = next((c for c in captures if _is_event_code(c)), None)
    if code is not None:
        return EventLogShape(log, captures, time, code, None)
    duration = next((c for c in captures if _is_duration(c)), None)
    if duration is not None and is_power_failure_log(log):
        return EventLogShape(log, captures, time, None, duration)
    return None


def is_event_log_name(code: Obis) -> bool:
    """OBIS codes of event logs (0.0.99.98.x.255) and power failure logs (x.0.99.97.x):
    the profiles whose capture objects are worth reading to find out."""
    return (code.c, code.d) == (99, 98) and code.a == 0 or is_power_failure_log(code)


__all__ = ["POWER_FAILURE_LOG", "STANDARD_EVENT_LOG", "Event", "EventLogShape",
           "event_log_shape", "is_event_log_name", "is_power_failure_log"]
