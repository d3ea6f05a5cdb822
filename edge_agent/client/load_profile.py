"""Reading a profile generic (class 7) buffer by time range, in chunks, as scaled rows.

    reader = ProfileReader(meter, Obis.parse("1.0.99.1.0.255"))
    layout = reader.layout()                  # capture objects, units, capture period
    for row in reader.rows(start, end, progress=callback):
        row["timestamp"], row["1.0.1.8.0.255"]

The buffer is asked for one chunk (a day by default) per request with a range_descriptor
(Blue Book 4.3.6, access selector 1, restricted by the clock column), so a caller can
show progress and a meter with a small PDU never has to send weeks at once. The range is
half-open, ``start <= time < end``: a meter answers inclusive ranges, so the row at a
chunk's end is dropped there and comes with the next chunk; a day of a 15-minute profile
is 96 rows.

Times: a naive ``datetime`` is the meter's local time and travels with the deviation
"not specified" (4.1.6.1), which the meter reads as its own local time; an aware one
carries its offset. Rows are compared in the same frame: wall-clock time for naive
bounds, absolute time for aware ones.

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
from edge_agent.client.values import plain
from edge_agent.dlms.cosem import obis as obis_names
from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.cosem.interface_classes import (
    CaptureObject,
    parse_buffer,
    parse_capture_objects,
    range_descriptor,
)
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.dlms.errors import ConfigError, DecodeError, ServiceError
from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.cosem.units import ScalerUnit

log = logging.getLogger(__name__)

LOAD_PROFILE = Obis(1, 0, 99, 1, 0, 255)
PROFILE_CLASS = 7
# Profile generic attributes (Blue Book 4.3.6).
BUFFER, CAPTURE_OBJECTS, CAPTURE_PERIOD = 2, 3, 4
# Captured (class, attribute) whose scaler_unit lives in another attribute of the object:
# register and extended register value (2) -> 3; demand register averages (2, 3) -> 4.
SCALER_OF: dict[tuple[int, int], int] = {(3, 2): 3, (4, 2): 3, (5, 2): 4, (5, 3): 4}

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
        """Column title with its unit, as CSV and tables show it: ``1.0.1.8.0.255 [Wh]``."""
        return f"{self.key} [{self.unit}]" if self.unit else self.key

    @property
    def name(self) -> str:
        return obis_names.name(self.capture.logical_name)

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
    """What a profile captures: the time column, the value columns, the capture period."""

    profile: Obis
    capture_objects: tuple[CaptureObject, ...]
    time_column: CaptureObject
    columns: tuple[ProfileColumn, ...]
    capture_period: int  # seconds; 0 = captured on events, not periodically


def day_chunks(start: dt.datetime, end: dt.datetime, size: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut into pieces of ``size``, aligned to midnight of start's day so that
    chunks are calendar days (what a person asks for, and what meters index quickly)."""
    if size <= dt.timedelta(0):
        raise ConfigError(f"the chunk size must be positive, got {size}")
    edge = start.replace(hour=0, minute=0, second=0, microsecond=0)
    chunks = []
    low = start
    while low < end:
        while edge <= low:
            edge += size
        high = min(edge, end)
        chunks.append((low, high))
        low = high
    return chunks


def _check_range(start: dt.datetime, end: dt.datetime) -> None:
    if (start.tzinfo is None) != (end.tzinfo is None):
        raise ConfigError("give both ends of the range in meter local time (no offset) or both "
                          f"with an offset; got {start.isoformat()} and {end.isoformat()}")
    if end <= start:
        raise ConfigError(f"the range is empty: the end {end.isoformat()} must come after the "
                          f"start {start.isoformat()} (the end is exclusive)")


def _in_frame(moment: dt.datetime, aware: bool, reference: dt.datetime) -> dt.datetime:
    """``moment`` comparable with the range bounds: wall-clock time for naive bounds; for
    aware bounds, a row without deviation is taken in the bounds' offset."""
    if not aware:
        return moment.replace(tzinfo=None)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=reference.tzinfo)


class ProfileReader:
    """Reads one profile generic object of a connected :class:`MeterClient`."""

    def __init__(self, meter: MeterClient, profile: Obis = LOAD_PROFILE,
                 chunk: dt.timedelta = dt.timedelta(days=1)) -> None:
        self.meter = meter
        self.profile = profile
        self.chunk = chunk
        self._layout: ProfileLayout | None = None

    def layout(self) -> ProfileLayout:
        """Capture objects, capture period and the scalers of the captured registers (read
        once per reader)."""
        if self._layout is not None:
            return self._layout
        meter, profile = self.meter, self.profile
        captures = tuple(parse_capture_objects(meter.get(profile, PROFILE_CLASS, CAPTURE_OBJECTS)))
        clocks = [c for c in captures if c.is_clock]
        if not clocks:
            raise ServiceError(
                f"profile {profile.dotted} captures no clock (its columns: "
                f"{', '.join(c.logical_name.dotted for c in captures) or 'none'}); it cannot be "
                "read by time range")
        time_column = clocks[0]
        period = plain(meter.get(profile, PROFILE_CLASS, CAPTURE_PERIOD))
        values = [c for c in captures if c != time_column]
        scalers = self._scalers(values)
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
                                     int(period) if isinstance(period, int) else 0)
        return self._layout

    def _scalers(self, values: list[CaptureObject]) -> dict[CaptureObject, ScalerUnit]:
        wanted = [(c, SCALER_OF[c.class_id, c.attribute_index]) for c in values
                  if (c.class_id, c.attribute_index) in SCALER_OF]
        if not wanted:
            return {}
        answers = self.meter.get_many([(c.logical_name, c.class_id, a) for c, a in wanted])
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

    def chunks(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        _check_range(start, end)
        return day_chunks(start, end, self.chunk)

    def rows(self, start: dt.datetime, end: dt.datetime,
             progress: Progress | None = None) -> Iterator[dict[str, Any]]:
        """Rows with ``start <= timestamp < end``, oldest first: ``{"timestamp": datetime,
        column key: scaled value, ...}``."""
        chunks = self.chunks(start, end)
        layout = self.layout()
        aware = start.tzinfo is not None
        count = 0
        if progress:
            progress(0, len(chunks), 0)
        for done, (low, high) in enumerate(chunks, 1):
            for row in self._chunk(layout, low, high):
                moment = _in_frame(row["timestamp"], aware, start)
                if low <= moment < high:
                    count += 1
                    yield row
            if progress:
                progress(done, len(chunks), count)

    def _chunk(self, layout: ProfileLayout, low: dt.datetime, high: dt.datetime) -> list[dict[str, Any]]:
        selection = range_descriptor(CosemDateTime.from_datetime(low),
                                     CosemDateTime.from_datetime(high), layout.time_column)
        buffer = self.meter.get(self.profile, PROFILE_CLASS, BUFFER,
                                selection)
        return self.decode_rows(layout, buffer)

    @staticmethod
    def decode_rows(layout: ProfileLayout, buffer: Any) -> list[dict[str, Any]]:
        """The decoded buffer value as rows. A time stamp the meter left out (null-data,
        allowed for periodic profiles by 4.3.6) is the previous one plus the capture period."""
        rows = []
        previous: dt.datetime | None = None
        step = dt.timedelta(seconds=layout.capture_period)
        for position, cells in enumerate(parse_buffer(buffer, layout.capture_objects)):
            stamp = cells[layout.time_column]
            if isinstance(stamp, CosemDateTime):
                moment = stamp.to_datetime()
            elif stamp is None and previous is not None and layout.capture_period:
                moment = previous + step
            else:
                raise DecodeError(
                    f"row {position} of profile {layout.profile.dotted} has no usable time "
                    f"stamp ({stamp!r}) and none precedes it to count from")
            previous = moment
            row: dict[str, Any] = {"timestamp": moment}
            for column in layout.columns:
                row[column.key] = column.value(cells[column.capture])
            rows.append(row)
        return rows


__all__ = ["LOAD_PROFILE", "ProfileColumn", "ProfileLayout", "ProfileReader", "day_chunks"]
