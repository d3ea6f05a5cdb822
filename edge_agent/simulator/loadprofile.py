"""Profile generic (class 7) objects whose buffer is generated on demand, never stored.

A buffer is a sequence of entries (oldest first, sort method FIFO) and a list of columns;
each column names its capture object and computes its value for an entry. The load
profile's entries are the 15-minute boundaries since the installation (a lazy sequence:
30+ days of rows cost nothing until read); the event log's entries are its events.

Selective access (Blue Book 4.3.6, Profile generic, attribute 2 buffer):

- selector 1, range_descriptor: ``{restricting_object, from_value, to_value,
  selected_values}``; the restricting object must be the clock column and the limits are
  date-times (octet-string(12) or date-time); rows with from <= time <= to are returned.
- selector 2, entry_descriptor: ``{from_entry, to_entry, from_selected_value,
  to_selected_value}``, 1-based, 0 in ``to_*`` means "up to the last".

What this meter does with odd requests, chosen to match the meters we know: an empty or
inverted range, or one outside the history, gives an empty array; a from_entry beyond
the entries in use gives an empty array; a zero from_entry / from_selected_value, a
to_* below its from_*, a column not in the capture objects or a restricting object other
than the clock give scope-of-access-violated; parameters of the wrong shape or type give
type-unmatched.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from edge_agent.dlms.apdu.results import ActionResult, DataAccessResult
from edge_agent.dlms.encoding.axdr import (
    Array,
    DoubleLongUnsigned,
    Enum,
    Integer,
    LongUnsigned,
    OctetString,
    Structure,
)
from edge_agent.dlms.encoding.date_time import CosemDateTime, date_time_from_octets
from edge_agent.dlms.errors import DecodeError
from edge_agent.simulator.model import DAY_SECONDS, SLOT_SECONDS, SLOTS_PER_DAY, Meter
from edge_agent.simulator.objects import Attribute, CosemObject, Refused, Request

RANGE_DESCRIPTOR = 1
ENTRY_DESCRIPTOR = 2
SORT_FIFO = 1  # sort_method (Blue Book 4.3.6): fifo, first in first out
CLOCK_LN = bytes((0, 0, 1, 0, 0, 255))


@dataclass(frozen=True, slots=True)
class CaptureObject:
    """capture_object_definition: class, logical name, attribute and data index."""

    class_id: int
    logical_name: bytes
    attribute_index: int
    data_index: int = 0

    def to_data(self) -> Structure:
        return Structure((LongUnsigned(self.class_id), OctetString(self.logical_name),
                          Integer(self.attribute_index), LongUnsigned(self.data_index)))

    @classmethod
    def from_data(cls, value: Any) -> CaptureObject:
        if not (isinstance(value, tuple) and len(value) == 4
                and all(isinstance(v, int) for v in (value[0], value[2], value[3]))
                and isinstance(value[1], bytes) and len(value[1]) == 6):
            raise Refused(DataAccessResult.TYPE_UNMATCHED,
                          f"capture_object_definition must be a structure {{long-unsigned, "
                          f"octet-string(6), integer, long-unsigned}}, got {value!r}")
        return cls(int(value[0]), bytes(value[1]), int(value[2]), int(value[3]))


CLOCK_CAPTURE = CaptureObject(8, CLOCK_LN, 2)


@dataclass(frozen=True, slots=True)
class Column:
    """One buffer column: its capture object and the value of an entry."""

    capture: CaptureObject
    value: Callable[[Any, Request], Any]


class EntrySource:
    """Where the entries of a buffer come from (overridden by the load profile and the
    event log)."""

    def entries(self, request: Request) -> Sequence[Any]:
        """All entries in the buffer now, oldest first."""
        raise TypeError(f"{type(self).__name__} does not define entries()")

    def time_of(self, entry: Any) -> datetime:
        """The capture time (meter clock, UTC) of one entry."""
        raise TypeError(f"{type(self).__name__} does not define time_of()")


def point_in_time(value: Any, refusal: str) -> datetime:
    """A date-time Data value (octet-string or date-time) as a datetime, naive when the
    meter left the deviation unspecified; anything else is refused as type-unmatched."""
    try:
        if isinstance(value, bytes):
            value = date_time_from_octets(value)
        if not isinstance(value, CosemDateTime):
            raise DecodeError(f"expected a date-time, got {type(value).__name__}")
        return value.to_datetime()
    except DecodeError as exc:
        raise Refused(DataAccessResult.TYPE_UNMATCHED, f"{refusal}: {exc}") from None


class ProfileBuffer:
    """Buffer, capture objects and selective access of one profile generic object."""

    def __init__(self, source: EntrySource, columns: Sequence[Column], capture_period: int,
                 profile_entries: int, local_to_utc: Callable[[datetime], datetime]) -> None:
        if columns[0].capture != CLOCK_CAPTURE:
            raise ValueError("the first column of a simulated profile must be the clock")
        self.local_to_utc = local_to_utc
        self.source = source
        self.columns = tuple(columns)
        self.capture_period = capture_period
        self.profile_entries = profile_entries

    # --- rows ------------------------------------------------------------------------

    def _rows(self, request: Request, entries: Sequence[Any], first: int, last: int,
              columns: Sequence[Column]) -> Array:
        """Entries [first, last) (0-based) restricted to ``columns``."""
        return Array([Structure(tuple(c.value(entries[i], request) for c in columns))
                      for i in range(first, last)])

    def read(self, request: Request) -> Array:
        entries = self.source.entries(request)
        return self._rows(request, entries, 0, len(entries), self.columns)

    def select(self, request: Request, selector: int, parameters: Any) -> Array:
        if selector == RANGE_DESCRIPTOR:
            return self._by_range(request, parameters)
        if selector == ENTRY_DESCRIPTOR:
            return self._by_entry(request, parameters)
        raise Refused(DataAccessResult.OTHER_REASON,
                      f"access selector {selector} is not supported by a profile buffer "
                      "(1 range, 2 entry)")

    def _structure(self, parameters: Any, size: int, what: str) -> tuple:
        if not isinstance(parameters, tuple) or len(parameters) != size:
            raise Refused(DataAccessResult.TYPE_UNMATCHED,
                          f"{what} must be a structure of {size} elements, got {parameters!r}")
        return parameters

    def _selected_columns(self, selected: Any) -> tuple[Column, ...]:
        if not isinstance(selected, list):
            raise Refused(DataAccessResult.TYPE_UNMATCHED,
                          f"selected_values must be an array, got {selected!r}")
        if not selected:
            return self.columns
        by_capture = {c.capture: c for c in self.columns}
        chosen = []
        for item in selected:
            capture = CaptureObject.from_data(item)
            if capture not in by_capture:
                raise Refused(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED,
                              f"selected value {capture} is not a capture object of this profile")
            chosen.append(by_capture[capture])
        return tuple(chosen)

    def _limit(self, value: Any, what: str) -> datetime:
        when = point_in_time(value, f"range {what} is not one point in time")
        if when.tzinfo is None:  # deviation not specified: the meter's local time
            return self.local_to_utc(when)
        return when.astimezone(UTC)

    def _by_range(self, request: Request, parameters: Any) -> Array:
        restricting, start, end, selected = self._structure(parameters, 4, "range_descriptor")
        if CaptureObject.from_data(restricting) != CLOCK_CAPTURE:
            raise Refused(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED,
                          "this meter restricts profile ranges by the clock column only")
        columns = self._selected_columns(selected)
        low = self._limit(start, "from_value")
        high = self._limit(end, "to_value")
        entries = self.source.entries(request)
        time_of = self.source.time_of
        first = bisect.bisect_left(entries, low, key=time_of)
        last = bisect.bisect_right(entries, high, key=time_of)
        return self._rows(request, entries, first, max(first, last), columns)

    def _by_entry(self, request: Request, parameters: Any) -> Array:
        fields = self._structure(parameters, 4, "entry_descriptor")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in fields):
            raise Refused(DataAccessResult.TYPE_UNMATCHED,
                          f"entry_descriptor holds {{double-long-unsigned x2, long-unsigned x2}}, "
                          f"got {parameters!r}")
        from_entry, to_entry, from_value, to_value = (int(v) for v in fields)
        if from_entry == 0 or from_value == 0:
            raise Refused(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED,
                          "from_entry and from_selected_value count from 1")
        if (to_entry and to_entry < from_entry) or (to_value and to_value < from_value):
            raise Refused(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED,
                          "to_entry/to_selected_value below from_entry/from_selected_value")
        if from_value > len(self.columns) or to_value > len(self.columns):
            raise Refused(DataAccessResult.SCOPE_OF_ACCESS_VIOLATED,
                          f"this profile has {len(self.columns)} capture objects")
        columns = self.columns[from_value - 1:to_value or len(self.columns)]
        entries = self.source.entries(request)
        last = min(to_entry or len(entries), len(entries))
        return self._rows(request, entries, min(from_entry - 1, last), last, columns)

    # --- the object -----------------------------------------------------------------

    def cosem_object(self, logical_name: bytes, reset: Callable[[Request], None]) -> CosemObject:
        """The class 7 (version 1) object serving this buffer."""

        def do_reset(request: Request, parameters: Any) -> None:
            if parameters not in (None, 0):
                raise Refused(ActionResult.TYPE_UNMATCHED, "reset takes integer 0")
            reset(request)

        return CosemObject(7, 1, logical_name, {
            2: Attribute(get=self.read, select=self.select,
                         selectors=(RANGE_DESCRIPTOR, ENTRY_DESCRIPTOR)),
            3: Attribute(get=lambda r: Array([c.capture.to_data() for c in self.columns])),
            4: Attribute(get=lambda r: DoubleLongUnsigned(self.capture_period)),
            5: Attribute(get=lambda r: Enum(SORT_FIFO)),
            6: Attribute(get=lambda r: CaptureObject(0, bytes(6), 0, 0).to_data()),
            7: Attribute(get=lambda r: DoubleLongUnsigned(len(self.source.entries(r)))),
            8: Attribute(get=lambda r: DoubleLongUnsigned(self.profile_entries)),
        }, {1: do_reset})


# --- the load profile -------------------------------------------------------------------


class _Boundaries(Sequence[datetime]):
    """Capture times ``origin + n * step`` for the slot numbers ``slots`` (ascending): a
    lazy, bisectable sequence."""

    __slots__ = ("origin", "slots", "step")

    def __init__(self, origin: datetime, slots: Sequence[int], step: timedelta) -> None:
        self.origin, self.slots, self.step = origin, slots, step

    def __len__(self) -> int:
        return len(self.slots)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.slots)))]
        return self.origin + self.slots[index] * self.step


class LoadProfileSource(EntrySource):
    """Rows at the end of each capture period since the installation (or the last reset),
    at most ``capacity`` of them (the oldest are overwritten first).

    A meter without power captures nothing: a period boundary that falls into a power
    failure of the household curve has no row (the gap a real meter's profile shows); the
    row after the failure carries the power-down bit in its status (:func:`amr_status`)
    and the event log has the failure (:mod:`.event_log`).
    """

    def __init__(self, meter: Meter, capacity: int, period: int = SLOT_SECONDS) -> None:
        self.meter = meter
        self.capacity = capacity
        self.step = timedelta(seconds=period)
        self.cleared_at: datetime | None = None  # meter time of the last reset

    def _powerless(self, low: int, high: int) -> set[int]:
        """Slot numbers in [low, high] whose boundary falls into a power failure."""
        meter, step = self.meter, self.step.total_seconds()
        # Boundary n is at meter time installed + n * step, i.e. curve seconds
        # n * step - clock_offset (the curve counts world time since the installation).
        offset = meter.clock_offset.total_seconds()
        skipped: set[int] = set()
        first_day = int((low * step - offset) // DAY_SECONDS) - 1
        last_day = int((high * step - offset) // DAY_SECONDS) + 1
        for day in range(max(0, first_day), last_day + 1):
            outage = meter.curve.outage(day)
            if outage is None:
                continue
            begin = day * DAY_SECONDS + outage.start + offset
            end = day * DAY_SECONDS + outage.end + offset
            # Power off on [begin, end): boundaries n * step in that interval.
            skipped.update(n for n in range(math.ceil(begin / step), math.ceil(end / step))
                           if low <= n <= high)
        return skipped

    def entries(self, request: Request) -> _Boundaries:
        installed = self.meter.installed
        newest = (request.meter_now - installed) // self.step
        oldest = 1  # the first period ends one step after the installation
        if self.cleared_at is not None:
            oldest = max(oldest, (self.cleared_at - installed) // self.step + 1)
        if newest < oldest:
            return _Boundaries(installed, (), self.step)
        # Look back a little further than the capacity: skipped slots make room for
        # older ones.
        low = max(oldest, newest - self.capacity - 4 * SLOTS_PER_DAY)
        skipped = self._powerless(low, newest)
        slots = [n for n in range(low, newest + 1) if n not in skipped]
        return _Boundaries(installed, slots[-self.capacity:], self.step)

    def time_of(self, entry: datetime) -> datetime:
        return entry

    def reset(self, request: Request) -> None:
        self.cleared_at = request.meter_now


# AMR profile status (DSMR 5.0 / IDIS "AMR profile status code", one octet per row): which
# conditions touched the capture period that ends at the row's time.
STATUS_CLOCK_ADJUSTED = 0x20
STATUS_DAYLIGHT_SAVING = 0x08
STATUS_POWER_DOWN = 0x80


def amr_status(meter: Meter, row_time: datetime) -> int:
    """The status octet of the load-profile row captured at ``row_time`` (meter clock)."""
    status = 0
    if meter.utc_offset_minutes(row_time) != meter.std_offset_minutes:
        status |= STATUS_DAYLIGHT_SAVING
    world_end = meter.to_world(row_time)
    world_start = world_end - timedelta(seconds=SLOT_SECONDS)
    curve = meter.curve
    start_s, end_s = curve.seconds(world_start), curve.seconds(world_end)
    for day in {int(start_s // 86_400), int(end_s // 86_400)}:
        outage = curve.outage(day)
        if outage is not None:
            begin = day * 86_400 + outage.start
            if begin < end_s and begin + outage.duration > start_s:
                status |= STATUS_POWER_DOWN
    if any(world_start < e.world <= world_end and e.code in (4, 5)
           for e in meter.recorded_events):
        status |= STATUS_CLOCK_ADJUSTED
    return status
