"""Reading a profile generic (class 7) buffer by time range, in chunks, as scaled rows.

    reader = ProfileReader(meter, Obis.parse("1.0.99.1.0.255"), zone=ZoneInfo("Europe/Vienna"))
    layout = reader.layout()                  # capture objects, units, period, entries
    for row in reader.rows(start, end, progress=callback):
        row["timestamp"], row["1.0.1.8.0.255"]
    reader.report                             # gaps, duplicates, clock status, DST

How the buffer is asked for (Blue Book 4.3.6, attribute 2), chosen per association:

- ``range``: one GET per chunk (a calendar day by default) with a range_descriptor
  (access selector 1) restricted by the clock column, so a caller can show progress and a
  meter with a small PDU never has to send weeks at once;
- ``entry``: when the meter refuses the range descriptor, by entry_descriptor (access
  selector 2): the newest entry's time and the capture period place the first entry
  wanted, then chunks of entries are read forward until the end of the range;
- ``whole``: when the negotiated conformance lacks selective-access (Green Book 9.4.6.1,
  bit 21), neither selector may be sent: the whole buffer is read once per call of
  :meth:`ProfileReader.rows` (in blocks, GET with block transfer, when the meter needs
  them) and filtered here. A caller that reads a long range should ask once for all of it,
  not day by day: each call costs the whole buffer (the agent's feed does so).

The range is half-open, ``start <= time < end``: a meter answers inclusive ranges, so
the row at a chunk's end is dropped there and comes with the next chunk; a day of a
15-minute profile is 96 rows.

Times are absolute. Rows whose time stamp carries a deviation (4.1.6.1) are exact. A time
stamp without deviation is the meter's local time: it is placed with the reader's
``zone`` (the meter's time zone; the host's by default), using the clock status'
daylight-saving bit when the meter sends one (that settles the hour that repeats in
autumn), else the order of the rows. The order only tells the two passes of the repeated
hour apart when the first pass is read too: a range that starts inside a repeated hour is
asked for from the first pass of that hour (the rows before the start are placed, then
dropped), so its second-pass rows are not taken for first-pass ones and lost. Bounds
without offset are local times of ``zone``.

A read sees the gaps between its own rows; ``rows(..., after=t)`` tells it the time of
the newest row the caller already has (an earlier chunk's), so that a gap across the
edge -- a power failure over midnight, or since the last row published -- is reported too.
Nothing is moved silently: every row placed by a guess, every gap, duplicate, row with an
invalid or doubtful clock and every change of daylight saving ends in the
:class:`ProfileReport`.

Scalers and units of the captured registers are read once (attribute 3 of class 3/4,
attribute 4 of class 5) and applied to every row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from edge_agent.client.client import MeterClient
from edge_agent.client.profile_report import (
    Findings,
    Gap,
    Placer,
    ProfileReport,
    host_zone,
    localize,
    zone_named,
)
from edge_agent.client.values import plain
from edge_agent.dlms.apdu.conformance import Conformance
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.cosem import obis as obis_names
from edge_agent.dlms.cosem.interface_classes import (
    CaptureObject,
    entry_descriptor,
    parse_buffer,
    parse_capture_objects,
    range_descriptor,
)
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import ConfigError, DecodeError, ServiceError

log = logging.getLogger(__name__)

LOAD_PROFILE = Obis(1, 0, 99, 1, 0, 255)
PROFILE_CLASS = 7
# Profile generic attributes (Blue Book 4.3.6).
BUFFER, CAPTURE_OBJECTS, CAPTURE_PERIOD, ENTRIES_IN_USE, PROFILE_ENTRIES = 2, 3, 4, 7, 8
# Captured (class, attribute) whose scaler_unit lives in another attribute of the object:
# register and extended register value (2) -> 3; demand register averages (2, 3) -> 4.
SCALER_OF: dict[tuple[int, int], int] = {(3, 2): 3, (4, 2): 3, (5, 2): 4, (5, 3): 4}
# Value groups C.D of the status registers (0-x:96.10.x; DSMR 5 / IDIS "AMR profile
# status", one octet per row) that profiles capture beside their values.
STATUS_REGISTER = (96, 10)
# How the buffer is read (module docstring), and the refusals of a range descriptor after
# which the entry descriptor is tried: meters that implement only selector 2 answer one
# of these (Blue Book 4.3.6 leaves the selectors a meter supports to the meter).
MODES = ("auto", "range", "entry", "whole")
RANGE_REFUSALS = frozenset({"other-reason", "scope-of-access-violated", "type-unmatched",
                            "object-unavailable", "read-write-denied"})
ENTRIES_PER_CHUNK = 96  # entry mode: rows per request (a day of a 15-minute profile)
ROW_KEYS = ("timestamp", "clock_status")

# done chunks, total chunks, rows so far
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True, slots=True)
class ProfileColumn:
    """One value column of the buffer: what it captures and how its values read."""

    capture: CaptureObject
    key: str  # the row key: the OBIS code, with ":attribute" when a code fills several columns
    scaler_unit: ScalerUnit | None = None

    @property
    def unit(self) -> str | None:
        return self.scaler_unit.symbol if self.scaler_unit is not None else None

    @property
    def header(self) -> str:
        """Column title with its unit, as tables show it: ``1.0.1.8.0.255 [Wh]``."""
        return f"{self.key} [{self.unit}]" if self.unit else self.key

    @property
    def name(self) -> str:
        return obis_names.name(self.capture.logical_name)

    @property
    def is_status(self) -> bool:
        code = self.capture.logical_name
        return (code.c, code.d) == STATUS_REGISTER

    def value(self, raw: Any) -> Any:
        if self.scaler_unit is not None and isinstance(raw, int | float) and not isinstance(raw, bool):
            return self.scaler_unit.apply(raw)
        return plain(raw)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "obis": self.capture.logical_name.dotted, "name": self.name,
                "unit": self.unit, "class_id": self.capture.class_id,
                "attribute": self.capture.attribute_index,
                "scaler": self.scaler_unit.scaler if self.scaler_unit else None}


@dataclass(frozen=True, slots=True)
class ProfileLayout:
    """What a profile captures: the time column, the value columns, the capture period,
    and how full its buffer is."""

    profile: Obis
    capture_objects: tuple[CaptureObject, ...]
    time_column: CaptureObject
    columns: tuple[ProfileColumn, ...]
    capture_period: int  # seconds; 0 = captured on events, not periodically
    entries_in_use: int | None = None  # attribute 7, when the meter gives it
    profile_entries: int | None = None  # attribute 8: how many entries the buffer holds

    @property
    def status_column(self) -> ProfileColumn | None:
        return next((c for c in self.columns if c.is_status), None)

    @property
    def value_columns(self) -> tuple[ProfileColumn, ...]:
        return tuple(c for c in self.columns if not c.is_status)

    @property
    def depth(self) -> dt.timedelta | None:
        """How far back the meter keeps rows: entries in use × capture period (the buffer's
        capacity while the meter reports no entries in use; None: unknown)."""
        entries = self.entries_in_use or self.profile_entries
        if not entries or not self.capture_period:
            return None
        return dt.timedelta(seconds=entries * self.capture_period)


# --- chunks and time ----------------------------------------------------------------------


def day_chunks(start: dt.datetime, end: dt.datetime, size: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut into pieces of ``size``, aligned to midnight of start's day so that
    chunks are calendar days (what a person asks for, and what meters index quickly).

    Aware bounds: the edges are wall-clock times of start's zone (a calendar day with a DST
    change is 23 or 25 hours long), the chunks absolute times in UTC."""
    if size <= dt.timedelta(0):
        raise ConfigError(f"the chunk size must be positive, got {size}")
    zone = start.tzinfo
    wall = start.replace(tzinfo=None, fold=0) if zone is not None else start
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)

    def edge(k: int) -> dt.datetime:
        moment = midnight + k * size
        return moment if zone is None else moment.replace(tzinfo=zone).astimezone(dt.UTC)

    if zone is not None:
        start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    chunks = []
    low, k = start, 0
    while low < end:
        while edge(k) <= low:
            k += 1
        high = min(edge(k), end)
        chunks.append((low, high))
        low = high
    return chunks


def repeated_hour_start(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The first pass of the wall-clock hour ``moment`` (aware) falls in when that hour
    repeats in ``zone`` (the autumn change: 02:00-03:00 twice in Europe/Vienna), else
    ``moment``: where a read must begin for a :class:`Placer` to tell the passes of local
    time stamps without deviation apart by their order."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    if local.replace(tzinfo=zone, fold=0).utcoffset() == local.replace(tzinfo=zone,
                                                                       fold=1).utcoffset():
        return moment
    hour = local.replace(minute=0, second=0, microsecond=0, tzinfo=zone, fold=0)
    return min(moment, hour.astimezone(dt.UTC))


def _check_range(start: dt.datetime, end: dt.datetime) -> None:
    if (start.tzinfo is None) != (end.tzinfo is None):
        raise ConfigError("give both ends of the range in meter local time (no offset) or both "
                          f"with an offset; got {start.isoformat()} and {end.isoformat()}")
    if end <= start:
        raise ConfigError(f"the range is empty: the end {end.isoformat()} must come after the "
                          f"start {start.isoformat()} (the end is exclusive)")


# --- the reader -----------------------------------------------------------------------


class ProfileReader:
    """Reads one profile generic object of a connected :class:`MeterClient`."""

    def __init__(self, meter: MeterClient, profile: Obis = LOAD_PROFILE,
                 chunk: dt.timedelta = dt.timedelta(days=1), *,
                 zone: dt.tzinfo | None = None, mode: str = "auto",
                 entries_per_chunk: int = ENTRIES_PER_CHUNK) -> None:
        if mode not in MODES:
            raise ConfigError(f"profile access mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.meter = meter
        self.profile = profile
        self.chunk = chunk
        self.zone = zone if zone is not None else host_zone()
        self.requested_mode = mode
        self.entries_per_chunk = max(1, entries_per_chunk)
        self._layout: ProfileLayout | None = None
        self._mode: str | None = None
        self.requests = 0
        self.report: ProfileReport | None = None

    # --- what the profile is ----------------------------------------------------------

    def layout(self) -> ProfileLayout:
        """Capture objects, capture period, entries and the scalers of the captured
        registers (read once per reader)."""
        if self._layout is not None:
            return self._layout
        meter, profile = self.meter, self.profile
        captures = tuple(parse_capture_objects(self._get(CAPTURE_OBJECTS)))
        clocks = [c for c in captures if c.is_clock]
        if not clocks:
            raise ServiceError(
                f"profile {profile.dotted} captures no clock (its columns: "
                f"{', '.join(c.logical_name.dotted for c in captures) or 'none'}); it cannot be "
                "read by time range")
        time_column = clocks[0]
        values = [c for c in captures if c != time_column]
        wanted = [(c, SCALER_OF[c.class_id, c.attribute_index]) for c in values
                  if (c.class_id, c.attribute_index) in SCALER_OF]
        items = [(profile, PROFILE_CLASS, a) for a in (CAPTURE_PERIOD, ENTRIES_IN_USE,
                                                       PROFILE_ENTRIES)]
        items += [(c.logical_name, c.class_id, a) for c, a in wanted]
        answers = meter.get_many(items)
        self.requests += 1
        period, in_use, entries = (_count(a) for a in answers[:3])
        scalers = self._scalers(wanted, answers[3:])
        counts: dict[Obis, int] = {}
        for capture in values:
            counts[capture.logical_name] = counts.get(capture.logical_name, 0) + 1
        columns = []
        for capture in values:
            key = capture.logical_name.dotted
            if counts[capture.logical_name] > 1:
                key += f":{capture.attribute_index}" + (f".{capture.data_index}" if capture.data_index else "")
            columns.append(ProfileColumn(capture, key, scalers.get(capture)))
        self._layout = ProfileLayout(profile, captures, time_column, tuple(columns),
                                     period or 0, in_use, entries)
        return self._layout

    @staticmethod
    def _scalers(wanted: list[tuple[CaptureObject, int]], answers: list[Any]
                 ) -> dict[CaptureObject, ScalerUnit]:
        scalers = {}
        for (capture, attribute), answer in zip(wanted, answers):
            if isinstance(answer, DataAccessResult):
                log.warning("scaler_unit of %s (attribute %d) not readable (%s): its column "
                            "stays unscaled and without unit", capture.logical_name.dotted,
                            attribute, answer.name.lower().replace("_", "-"))
                continue
            try:
                scalers[capture] = ScalerUnit.from_axdr(answer)
            except DecodeError as error:
                log.warning("scaler_unit of %s: %s; its column stays unscaled",
                            capture.logical_name.dotted, error)
        return scalers

    @property
    def mode(self) -> str:
        """How the buffer is read on this association (module docstring)."""
        if self._mode is None:
            if Conformance.SELECTIVE_ACCESS not in self.meter.conformance:
                self._mode = "whole"
            else:
                self._mode = "range" if self.requested_mode == "auto" else self.requested_mode
            if self.requested_mode in ("range", "entry") and self._mode == "whole":
                raise ConfigError(
                    f"{self.requested_mode} access needs selective access, which this "
                    "association did not negotiate (conformance bit 21); read the whole "
                    "buffer instead (access auto or whole)")
        return self._mode

    # --- rows ---------------------------------------------------------------------------

    def chunks(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """The requests a range read makes (calendar days of the reader's zone by default)."""
        _check_range(start, end)
        return day_chunks(localize(start, self.zone).astimezone(self.zone),
                          localize(end, self.zone).astimezone(self.zone), self.chunk)

    def rows(self, start: dt.datetime, end: dt.datetime,
             progress: Progress | None = None, *,
             after: dt.datetime | None = None) -> Iterator[dict[str, Any]]:
        """Rows with ``start <= timestamp < end``, oldest first, each time once:
        ``{"timestamp": aware datetime, "clock_status": int | None, column key: scaled
        value, ...}``. When the iteration ends, :attr:`report` says what was odd.

        ``after``: the time of the newest row the caller already has (the last row of an
        earlier read), for gap detection only: a gap between it and this read's first row
        is reported like one between two rows of the read. It filters nothing."""
        chunks = self.chunks(start, end)
        low, high = chunks[0][0], chunks[-1][1]
        layout = self.layout()
        findings = Findings()
        placer = Placer(self.zone, findings)
        mode = self.mode
        # Asked for from the first pass of a repeated hour the range starts in (module
        # docstring); the rows before ``low`` only teach the placer the order.
        reach = repeated_hour_start(low, self.zone)
        source: Iterator[tuple[int, int, list[Any], tuple[dt.datetime, dt.datetime]]]
        if mode == "range":
            source = self._by_range(layout, [(reach, chunks[0][1]), *chunks[1:]])
        elif mode == "entry":
            source = self._by_entry(layout, reach, high)
        else:
            source = self._whole(reach, high)
        count = 0
        kept: dict[str, Any] | None = None
        kept_at = low
        # The newest row given, by the caller (``after``) or here: gaps are counted from it.
        newest: dt.datetime | None = None if after is None else localize(after, self.zone)
        if progress:
            progress(0, len(chunks) if mode == "range" else 1, 0)
        try:
            for done, total, buffer, (first, before) in source:
                for row in self._decode(layout, buffer, placer):
                    moment = row["timestamp"].astimezone(dt.UTC)
                    # A meter's range is inclusive: the row at a chunk's end comes again
                    # with the next chunk (module docstring); only that one counts.
                    if not max(first, low) <= moment < before:
                        continue
                    if kept is not None and moment <= kept_at:
                        self._same_time(row, kept, moment == kept_at, findings)
                        continue
                    if newest is None or moment > newest:
                        if newest is not None and layout.capture_period:
                            self._gap(newest, row["timestamp"], layout.capture_period, findings)
                        newest = row["timestamp"]
                    kept, kept_at = row, moment
                    count += 1
                    yield row
                if progress:
                    progress(done, total, count)
        finally:
            self.report = findings.freeze(self.profile.dotted, self._mode or mode, count,
                                          self.requests, low, high)

    @staticmethod
    def _same_time(row: dict[str, Any], kept: dict[str, Any], same_time: bool,
                   findings: Findings) -> None:
        moment = row["timestamp"]
        if same_time:
            same = {k: v for k, v in row.items() if k not in ROW_KEYS} == \
                   {k: v for k, v in kept.items() if k not in ROW_KEYS}
            (findings.duplicates if same else findings.conflicts).append(moment)
        else:  # older than a row already given: the meter's clock went back
            findings.conflicts.append(moment)

    @staticmethod
    def _gap(previous: dt.datetime, moment: dt.datetime, period: int, findings: Findings) -> None:
        step = (moment.astimezone(dt.UTC) - previous.astimezone(dt.UTC)).total_seconds()
        if step > period:
            missing = int(step // period) - (1 if step % period == 0 else 0)
            if missing:
                findings.gaps.append(Gap(previous, moment, missing))

    def _get(self, attribute: int, access: Any = None) -> Any:
        self.requests += 1
        return self.meter.get(self.profile, PROFILE_CLASS, attribute, access)

    def _by_range(self, layout: ProfileLayout, chunks: list[tuple[dt.datetime, dt.datetime]]
                  ) -> Iterator[tuple[int, int, list[Any], tuple[dt.datetime, dt.datetime]]]:
        for done, (low, high) in enumerate(chunks, 1):
            # Bounds in the meter's local time with their deviation: exact for meters that
            # honour the deviation, and right for those that read the local time only.
            selection = range_descriptor(CosemDateTime.from_datetime(self._meter_time(low)),
                                         CosemDateTime.from_datetime(self._meter_time(high)),
                                         layout.time_column)
            try:
                buffer = self._get(BUFFER, selection)
            except ServiceError as error:
                if done > 1 or self.requested_mode != "auto" or error.reason not in RANGE_REFUSALS:
                    raise
                log.info("profile %s: the meter refused a range descriptor (%s); reading by "
                         "entry", self.profile.dotted, error.reason)
                self._mode = "entry"
                yield from self._by_entry(layout, low, chunks[-1][1])
                return
            yield done, len(chunks), buffer, (low, high)

    def _meter_time(self, moment: dt.datetime) -> dt.datetime:
        return moment if moment.tzinfo is None else moment.astimezone(self.zone)

    def _entries_in_use(self) -> int:
        value = _count(self._get(ENTRIES_IN_USE))
        if value is None:
            raise ServiceError(f"profile {self.profile.dotted}: entries_in_use (attribute 7) "
                               "is not a number; it cannot be read by entry")
        return value

    def _entry_rows(self, first: int, last: int) -> list[Any]:
        rows: list[Any] = self._get(BUFFER, entry_descriptor(first, last))  # an array
        return rows

    def _entry_time(self, layout: ProfileLayout, entry: int) -> dt.datetime | None:
        rows = self._decode(layout, self._entry_rows(entry, entry),
                            Placer(self.zone, Findings()))
        return rows[0]["timestamp"].astimezone(dt.UTC) if rows else None

    def _by_entry(self, layout: ProfileLayout, low: dt.datetime, high: dt.datetime
                  ) -> Iterator[tuple[int, int, list[Any], tuple[dt.datetime, dt.datetime]]]:
        """Entries from the first at or before ``low`` forward until past ``high``.

        The first entry is placed from the newest one's time and the capture period, then
        moved back while its time is after ``low`` (missing rows make the estimate too
        late, never too early). Chunks overlap by one entry: a FIFO buffer that captured a
        row meanwhile shifts every entry number by one, and the overlap (deduplicated by
        time) keeps that from losing a row."""
        in_use = self._entries_in_use()
        if not in_use:
            return
        newest = self._entry_time(layout, in_use)
        if newest is None or newest < low:
            if newest is not None:
                yield 1, 1, self._entry_rows(in_use, in_use), (low, high)
            return
        period = layout.capture_period or 1
        behind = int((newest - low).total_seconds() // period)
        first = max(1, in_use - behind - 1)
        size = self.entries_per_chunk
        while first > 1:
            moment = self._entry_time(layout, first)
            if moment is None or moment <= low:
                break
            first = max(1, first - size)
        total = max(1, -(-(in_use - first + 1) // size))
        done = 0
        entry = first
        seen: dt.datetime | None = None  # the newest time of the previous chunk
        while entry <= in_use:
            last = min(in_use, entry + size - 1)
            buffer = list(self._entry_rows(entry, last))
            times = [r["timestamp"].astimezone(dt.UTC) for r in
                     self._decode(layout, buffer, Placer(self.zone, Findings()))]
            skip = 0
            while seen is not None and skip < len(times) and times[skip] <= seen:
                skip += 1  # the overlap: rows the previous chunk already gave
            done += 1
            yield done, max(total, done), buffer[skip:], (low, high)
            if not times or times[-1] >= high or last == in_use:
                return
            seen = times[-1]
            entry = last  # one entry of overlap (docstring)

    def _whole(self, low: dt.datetime, high: dt.datetime
               ) -> Iterator[tuple[int, int, list[Any], tuple[dt.datetime, dt.datetime]]]:
        yield 1, 1, self._get(BUFFER), (low, high)

    def _decode(self, layout: ProfileLayout, buffer: Any, placer: Placer) -> list[dict[str, Any]]:
        return self.decode_rows(layout, buffer, placer=placer)

    @staticmethod
    def decode_rows(layout: ProfileLayout, buffer: Any, *, zone: dt.tzinfo | None = None,
                    placer: Placer | None = None) -> list[dict[str, Any]]:
        """The decoded buffer value as rows. A time stamp the meter left out (null-data,
        allowed for periodic profiles by 4.3.6) is the previous one plus the capture period."""
        if placer is None:
            placer = Placer(zone if zone is not None else host_zone(), Findings())
        rows = []
        previous: dt.datetime | None = None
        step = dt.timedelta(seconds=layout.capture_period)
        for position, cells in enumerate(parse_buffer(buffer, layout.capture_objects)):
            stamp = cells[layout.time_column]
            status: int | None = None
            if isinstance(stamp, CosemDateTime):
                try:
                    moment = placer.place(stamp)
                except DecodeError as error:
                    raise DecodeError(f"row {position} of profile {layout.profile.dotted}: "
                                      f"{error}") from None
                status = stamp.status
            elif stamp is None and previous is not None and layout.capture_period:
                moment = previous + step
            else:
                raise DecodeError(
                    f"row {position} of profile {layout.profile.dotted} has no usable time "
                    f"stamp ({stamp!r}) and none precedes it to count from")
            previous = moment
            row: dict[str, Any] = {"timestamp": moment, "clock_status": status}
            for column in layout.columns:
                row[column.key] = column.value(cells[column.capture])
            rows.append(row)
        return rows


def _count(value: Any) -> int | None:
    value = plain(value) if not isinstance(value, DataAccessResult) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


__all__ = ["LOAD_PROFILE", "MODES", "Gap", "ProfileColumn", "ProfileLayout", "ProfileReader",
           "ProfileReport", "day_chunks", "host_zone", "localize", "repeated_hour_start",
           "zone_named"]
