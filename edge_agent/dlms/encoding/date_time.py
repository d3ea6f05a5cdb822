"""COSEM date, time and date-time (Blue Book, DLMS UA 1000-1, 4.1.6.1).

Wire formats, all big-endian:

    date       5 octets  year-highbyte year-lowbyte month day-of-month day-of-week
    time       4 octets  hour minute second hundredths
    date-time 12 octets  date time deviation(int16, minutes) clock-status

"Not specified" is 0xFF in every one-octet field, 0xFFFF for the year and 0x8000 for the
deviation; these decode to ``None``. Month 0xFD/0xFE mean daylight-savings end/begin and
day-of-month 0xFD/0xFE the second-last/last day of the month (they occur in schedules and
in the clock's DST begin/end attributes); they are kept as the integers below.

Deviation sign (4.1.6.1): "deviation ... in minutes of local time to UTC", i.e.
``UTC = local time + deviation``. A meter in Paris in winter (UTC+01:00) sends -60.
Some national companion specifications (India, Saudi Arabia, Italy) send the opposite
sign; pass ``deviation_is_utc_offset=True`` to the converters for those meters.

Meters often send the clock as an octet-string of 12 octets (tag 9) instead of the
date-time type (tag 25); :func:`date_time_from_octets` interprets those.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import IntFlag
from functools import partial

from edge_agent.dlms.errors import DecodeError, EncodeError, TruncatedError

# --- special field values (4.1.6.1) ----------------------------------------------------

NOT_SPECIFIED = 0xFF
YEAR_NOT_SPECIFIED = 0xFFFF
DEVIATION_NOT_SPECIFIED = -0x8000  # 0x8000 read as a signed int16
MONTH_DST_END = 0xFD
MONTH_DST_BEGIN = 0xFE
DAY_SECOND_LAST = 0xFD
DAY_LAST = 0xFE

# Real time zones span UTC-12:00..UTC+14:00; the Blue Book range is -720..+720, which
# leaves out Kiribati and Tonga in summer, so decoding accepts the wider span.
_DEVIATION_LIMIT = 840


class ClockStatus(IntFlag):
    """Clock status bits (4.1.6.1); 0xFF on the wire means "not specified"."""

    INVALID_VALUE = 0x01
    DOUBTFUL_VALUE = 0x02
    DIFFERENT_CLOCK_BASE = 0x04
    INVALID_CLOCK_STATUS = 0x08
    DAYLIGHT_SAVING_ACTIVE = 0x80


# Allowed values per field: (name, low, high, extra allowed values). Out-of-range values
# are rejected both ways so that decode and encode are exact inverses.
_Fields = tuple[tuple[str, int, int, tuple[int, ...]], ...]
_FIELDS_DATE: _Fields = (
    ("month", 1, 12, (MONTH_DST_END, MONTH_DST_BEGIN)),
    ("day", 1, 31, (DAY_SECOND_LAST, DAY_LAST)),
    ("weekday", 1, 7, ()),
)
_FIELDS_TIME: _Fields = (
    ("hour", 0, 23, ()),
    ("minute", 0, 59, ()),
    ("second", 0, 59, ()),
    ("hundredths", 0, 99, ()),
)

_DATE = struct.Struct(">HBBB")
_TIME = struct.Struct(">BBBB")
_DATE_TIME = struct.Struct(">HBBBBBBBhB")


def _check(get: Callable[[str], int | None], fields: _Fields, error: type[Exception],
           what: str) -> None:
    for name, low, high, extra in fields:
        value = get(name)
        if value is not None and not (low <= value <= high or value in extra):
            allowed = f"{low}..{high}" + "".join(f", 0x{v:02X}" for v in extra)
            raise error(f"COSEM {what}: {name} must be {allowed} or not specified, got {value}")


def _check_year(year: int | None, error: type[Exception], what: str) -> None:
    if year is not None and not 0 <= year < YEAR_NOT_SPECIFIED:
        raise error(f"COSEM {what}: year must be 0..65534 or not specified, got {year}")


def _opt(value: int, not_specified: int) -> int | None:
    return None if value == not_specified else value


def _raw(value: int | None, not_specified: int) -> int:
    return not_specified if value is None else value


def _need(view: bytes | bytearray | memoryview, offset: int, size: int, what: str) -> None:
    if offset < 0 or len(view) - offset < size:
        raise TruncatedError(
            f"COSEM {what}: expected {size} octets at offset {offset}, "
            f"got {max(len(view) - offset, 0)}")


@dataclass(frozen=True, slots=True)
class CosemDate:
    """COSEM date (5 octets). ``None`` fields are "not specified"."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    weekday: int | None = None  # 1 = Monday .. 7 = Sunday

    SIZE = 5

    def __post_init__(self) -> None:
        _check_year(self.year, EncodeError, "date")
        _check(partial(getattr, self), _FIELDS_DATE, EncodeError, "date")

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> CosemDate:
        _need(data, offset, 5, "date")
        year, month, day, weekday = _DATE.unpack_from(data, offset)
        try:
            return cls(_opt(year, YEAR_NOT_SPECIFIED), _opt(month, 0xFF), _opt(day, 0xFF),
                       _opt(weekday, 0xFF))
        except EncodeError as exc:
            raise DecodeError(f"{exc} (at offset {offset})") from None

    def encode(self) -> bytes:
        return _DATE.pack(_raw(self.year, YEAR_NOT_SPECIFIED), _raw(self.month, 0xFF),
                          _raw(self.day, 0xFF), _raw(self.weekday, 0xFF))

    @classmethod
    def from_date(cls, value: date) -> CosemDate:
        return cls(value.year, value.month, value.day, value.isoweekday())

    def to_date(self) -> date:
        if self.year is None or self.month is None or self.day is None:
            raise DecodeError(f"{self} has unspecified fields; it is not one calendar date")
        if self.month > 12 or self.day > 31:
            raise DecodeError(f"{self} is a recurring DST/last-day pattern, not a calendar date")
        try:
            return date(self.year, self.month, self.day)
        except ValueError as exc:
            raise DecodeError(f"{self} is not a valid date: {exc}") from None


@dataclass(frozen=True, slots=True)
class CosemTime:
    """COSEM time (4 octets). ``None`` fields are "not specified"."""

    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    hundredths: int | None = None

    SIZE = 4

    def __post_init__(self) -> None:
        _check(partial(getattr, self), _FIELDS_TIME, EncodeError, "time")

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> CosemTime:
        _need(data, offset, 4, "time")
        try:
            return cls(*(_opt(v, 0xFF) for v in _TIME.unpack_from(data, offset)))
        except EncodeError as exc:
            raise DecodeError(f"{exc} (at offset {offset})") from None

    def encode(self) -> bytes:
        return _TIME.pack(_raw(self.hour, 0xFF), _raw(self.minute, 0xFF),
                          _raw(self.second, 0xFF), _raw(self.hundredths, 0xFF))

    @classmethod
    def from_time(cls, value: time) -> CosemTime:
        return cls(value.hour, value.minute, value.second, value.microsecond // 10_000)

    def to_time(self) -> time:
        if self.hour is None or self.minute is None:
            raise DecodeError(f"{self} has no hour or minute; it is not one time of day")
        return time(self.hour, self.minute, self.second or 0, (self.hundredths or 0) * 10_000)


def _octet_field(index: int, doc: str) -> property:
    def get(self: CosemDateTime) -> int | None:
        value = self._octets[index]
        return None if value == NOT_SPECIFIED else value

    return property(get, doc=doc)


class CosemDateTime:
    """COSEM date-time (12 octets), immutable. ``None`` fields are "not specified".

    ``deviation`` is in minutes, Blue Book sign (UTC = local + deviation); ``status`` is
    the clock status octet (see :class:`ClockStatus`).

    Unlike :class:`CosemDate` this is not a dataclass: every clock reading and load-profile
    row carries one, so it keeps its 12 wire octets (decoding is one validated slice,
    encoding returns them) and reads fields from them on access.
    """

    __slots__ = ("_octets",)
    SIZE = 12
    _octets: bytes

    month = _octet_field(2, "1..12, MONTH_DST_END, MONTH_DST_BEGIN")
    day = _octet_field(3, "1..31, DAY_SECOND_LAST, DAY_LAST")
    weekday = _octet_field(4, "1 = Monday .. 7 = Sunday")
    hour = _octet_field(5, "0..23")
    minute = _octet_field(6, "0..59")
    second = _octet_field(7, "0..59")
    hundredths = _octet_field(8, "0..99")
    status = _octet_field(11, "clock status octet (ClockStatus bits)")

    @property
    def year(self) -> int | None:
        year = (self._octets[0] << 8) | self._octets[1]
        return None if year == YEAR_NOT_SPECIFIED else year

    @property
    def deviation(self) -> int | None:
        """Minutes, UTC = local time + deviation (4.1.6.1)."""
        deviation = int.from_bytes(self._octets[9:11], "big", signed=True)
        return None if deviation == DEVIATION_NOT_SPECIFIED else deviation

    def __init__(self, year: int | None = None, month: int | None = None,
                 day: int | None = None, weekday: int | None = None, hour: int | None = None,
                 minute: int | None = None, second: int | None = None,
                 hundredths: int | None = None, deviation: int | None = None,
                 status: int | None = None) -> None:
        fields = dict(zip(_DT_NAMES, (year, month, day, weekday, hour, minute, second,
                                      hundredths, deviation, status)))
        _validate_date_time(fields, EncodeError)
        object.__setattr__(self, "_octets", _DATE_TIME.pack(*(
            not_specified if value is None else value
            for value, not_specified in zip(fields.values(), _DT_NOT_SPECIFIED))))

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> CosemDateTime:
        """Decode the 12 octets at ``offset`` (the content of a tag-25 value)."""
        try:
            (_, month, day, weekday, hour, minute, second, hundredths, deviation,
             _) = _DATE_TIME.unpack_from(data, offset)
        except struct.error:
            _need(data, offset, 12, "date-time")
            raise
        self = object.__new__(cls)
        object.__setattr__(self, "_octets", bytes(data[offset:offset + 12]))
        # Set look-ups on the hot path; the generic checks only word the error.
        if not (month in _MONTHS and day in _DAYS and weekday in _WEEKDAYS and hour in _HOURS
                and minute in _MINUTES and second in _MINUTES and hundredths in _HUNDREDTHS
                and (-_DEVIATION_LIMIT <= deviation <= _DEVIATION_LIMIT
                     or deviation == DEVIATION_NOT_SPECIFIED)):
            try:
                _validate_date_time(self.fields(), DecodeError)
            except DecodeError as exc:
                raise DecodeError(f"{exc} (at offset {offset})") from None
        return self

    def encode(self) -> bytes:
        return self._octets

    def fields(self) -> dict[str, int | None]:
        """The ten fields by name (the constructor's keywords)."""
        raw = _DATE_TIME.unpack(self._octets)
        return {name: None if value == not_specified else value
                for name, value, not_specified in zip(_DT_NAMES, raw, _DT_NOT_SPECIFIED)}

    def replace(self, **changes: int | None) -> CosemDateTime:
        return CosemDateTime(**{**self.fields(), **changes})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"CosemDateTime is immutable; use .replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("CosemDateTime is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is CosemDateTime:
            return self._octets == other._octets
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._octets)

    def __reduce__(self) -> tuple[Callable[[bytes], CosemDateTime], tuple[bytes]]:
        return (CosemDateTime.decode, (self._octets,))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.fields().items())
        return f"CosemDateTime({fields})"

    @property
    def clock_status(self) -> ClockStatus | None:
        return None if self.status is None else ClockStatus(self.status)

    @property
    def date(self) -> CosemDate:
        return CosemDate(self.year, self.month, self.day, self.weekday)

    @property
    def time(self) -> CosemTime:
        return CosemTime(self.hour, self.minute, self.second, self.hundredths)

    @classmethod
    def from_datetime(cls, value: datetime, status: int = 0, *,
                      deviation_is_utc_offset: bool = False) -> CosemDateTime:
        """The date-time a meter would send for ``value``.

        Aware datetimes carry their deviation; naive ones leave it not specified. The
        daylight-saving bit is set when ``value.dst()`` is non-zero.
        """
        deviation = None
        offset = value.utcoffset()
        if offset is not None:
            minutes = int(offset.total_seconds() // 60)
            deviation = minutes if deviation_is_utc_offset else -minutes
            dst = value.dst()
            if dst:
                status |= ClockStatus.DAYLIGHT_SAVING_ACTIVE
        return cls(value.year, value.month, value.day, value.isoweekday(), value.hour,
                   value.minute, value.second, value.microsecond // 10_000, deviation,
                   int(status))

    def to_datetime(self, *, deviation_is_utc_offset: bool = False) -> datetime:
        """A ``datetime``: aware when the deviation is specified, naive otherwise.

        Raises DecodeError when a field needed for one point in time is not specified
        or is a recurring pattern (DST begin/end, last day of month).
        """
        year, month, day, hour, minute = self.year, self.month, self.day, self.hour, self.minute
        if year is None or month is None or day is None or hour is None or minute is None:
            raise DecodeError(
                f"{self} has unspecified date or time fields; it is a pattern, "
                "not one point in time")
        tz = None
        if self.deviation is not None:
            minutes = self.deviation if deviation_is_utc_offset else -self.deviation
            tz = timezone(timedelta(minutes=minutes))
        try:
            return datetime(year, month, day, hour, minute,
                            self.second or 0, (self.hundredths or 0) * 10_000, tzinfo=tz)
        except ValueError as exc:
            raise DecodeError(f"{self} is not a valid date-time: {exc}") from None

    def isoformat(self) -> str:
        """ISO 8601 text (for MQTT and JSON output); see :meth:`to_datetime`."""
        return self.to_datetime().isoformat()

    def __str__(self) -> str:
        """``2026-11-24 13:45:00.00 dev=-120 status=0x80``; ``*`` for each digit of a field
        not specified, no ``dev=``/``status=`` when those are not specified (4.1.6.1)."""
        (year, month, day, _, hour, minute, second, hundredths, deviation,
         status) = _DATE_TIME.unpack(self._octets)
        two = _TWO_DIGITS  # one look-up per octet field: every decoded capture line shows one
        text = (f"{'****' if year == YEAR_NOT_SPECIFIED else f'{year:04d}'}-{two[month]}-"
                f"{two[day]} {two[hour]}:{two[minute]}:{two[second]}.{two[hundredths]}")
        if deviation != DEVIATION_NOT_SPECIFIED:
            text += f" dev={deviation:+d}"
        if status != NOT_SPECIFIED:
            text += f" status=0x{status:02X}"
        return text


# An octet field of a date-time as str() shows it: two digits at least, "**" not specified.
_TWO_DIGITS = (*(f"{value:02d}" for value in range(NOT_SPECIFIED)), "**")
_DT_NAMES = ("year", "month", "day", "weekday", "hour", "minute", "second", "hundredths",
             "deviation", "status")
_DT_NOT_SPECIFIED = (YEAR_NOT_SPECIFIED, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                     DEVIATION_NOT_SPECIFIED, 0xFF)


def _accepted(low: int, high: int, *extra: int) -> frozenset[int]:
    """Octet values a field accepts: its range, special values, 0xFF (not specified)."""
    return frozenset(range(low, high + 1)) | {*extra, NOT_SPECIFIED}


_MONTHS = _accepted(1, 12, MONTH_DST_END, MONTH_DST_BEGIN)
_DAYS = _accepted(1, 31, DAY_SECOND_LAST, DAY_LAST)
_WEEKDAYS = _accepted(1, 7)
_HOURS = _accepted(0, 23)
_MINUTES = _accepted(0, 59)
_HUNDREDTHS = _accepted(0, 99)
_OPTIONAL = (*range(0xFF), None)  # octet -> value, 0xFF -> None


def _validate_date_time(fields: dict[str, int | None], error: type[Exception]) -> None:
    _check_year(fields["year"], error, "date-time")
    _check(fields.__getitem__, _FIELDS_DATE, error, "date-time")
    _check(fields.__getitem__, _FIELDS_TIME, error, "date-time")
    deviation = fields["deviation"]
    if deviation is not None and not -_DEVIATION_LIMIT <= deviation <= _DEVIATION_LIMIT:
        raise error(f"COSEM date-time: deviation must be -840..840 minutes or not specified "
                    f"(0x8000), got {deviation}")
    status = fields["status"]
    if status is not None and not 0 <= status < 0xFF:
        raise error(f"COSEM date-time: clock status must be 0..254 or not specified, "
                    f"got {status}")


def date_time_from_octets(value: bytes | memoryview) -> CosemDateTime:
    """Interpret an octet-string value (tag 9) of 12 octets as a COSEM date-time.

    Meters send the clock and profile time stamps this way (Blue Book 4.1.6.1 allows
    date-time attributes to be octet-string(12)).
    """
    if len(value) != CosemDateTime.SIZE:
        raise DecodeError(
            f"a date-time octet-string has 12 octets, got {len(value)}; this value is not a "
            "date-time")
    return CosemDateTime.decode(value)


def looks_like_date_time(value: bytes | memoryview) -> bool:
    """True if ``value`` is 12 octets that decode as a valid COSEM date-time."""
    if len(value) != CosemDateTime.SIZE:
        return False
    try:
        CosemDateTime.decode(value)
    except DecodeError:
        return False
    return True
