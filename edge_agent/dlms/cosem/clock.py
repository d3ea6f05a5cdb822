"""The Clock object (class 8, Blue Book 4.5.1) as a client reads it: one record.

A meter's clock is attribute 2 (``time``, a date-time: local time, deviation, clock
status) plus the settings that say how that local time is made: ``time_zone`` (3),
``status`` (4), the daylight-saving rules (5 begin, 6 end, 7 deviation, 8 enabled) and
``clock_base`` (9). :class:`ClockReading` holds them decoded; nothing here reads a
socket or the host's clock: the caller gives the instant it asked.

Sign conventions (4.1.6.1): the date-time's ``deviation`` is minutes such that
``UTC = local time + deviation`` (a meter in Vienna in winter sends -60). ``drift`` is
meter time minus the reference time, in seconds: positive when the meter is ahead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.dlms.cosem.obis import Obis
from edge_agent.dlms.encoding.date_time import ClockStatus, CosemDateTime, date_time_from_octets
from edge_agent.dlms.errors import DecodeError

CLOCK = Obis(0, 0, 1, 0, 0, 255)
CLOCK_CLASS = 8
# Attribute indexes of class 8 version 0 (Blue Book 4.5.1).
TIME, TIME_ZONE, STATUS = 2, 3, 4
DAYLIGHT_SAVINGS_BEGIN, DAYLIGHT_SAVINGS_END = 5, 6
DAYLIGHT_SAVINGS_DEVIATION, DAYLIGHT_SAVINGS_ENABLED, CLOCK_BASE = 7, 8, 9
ATTRIBUTES = (TIME, TIME_ZONE, STATUS, DAYLIGHT_SAVINGS_BEGIN, DAYLIGHT_SAVINGS_END,
              DAYLIGHT_SAVINGS_DEVIATION, DAYLIGHT_SAVINGS_ENABLED, CLOCK_BASE)
# Method indexes (Blue Book 4.5.1): shift_time takes a long, -900..900 seconds.
ADJUST_TO_QUARTER, SHIFT_TIME = 1, 6
SHIFT_TIME_LIMIT = 900

# The status bits by their Blue Book names (4.1.6.1 "clock_status"), in bit order.
STATUS_NAMES: tuple[tuple[int, str], ...] = (
    (ClockStatus.INVALID_VALUE, "invalid_value"),
    (ClockStatus.DOUBTFUL_VALUE, "doubtful_value"),
    (ClockStatus.DIFFERENT_CLOCK_BASE, "different_clock_base"),
    (ClockStatus.INVALID_CLOCK_STATUS, "invalid_clock_status"),
    (0x10, "reserved_bit_4"),
    (0x20, "reserved_bit_5"),
    (0x40, "reserved_bit_6"),
    (ClockStatus.DAYLIGHT_SAVING_ACTIVE, "daylight_saving_active"),
)
# clock_base enum (4.5.1 attribute 9).
CLOCK_BASES = {0: "not_defined", 1: "internal_crystal", 2: "mains_50_hz", 3: "mains_60_hz",
               4: "gps", 5: "radio_controlled"}
# Bits that say the time itself cannot be trusted: never steer the clock from it.
UNTRUSTED = ClockStatus.INVALID_VALUE | ClockStatus.DOUBTFUL_VALUE | \
    ClockStatus.INVALID_CLOCK_STATUS


def status_names(status: int | None) -> list[str] | None:
    """The names of the bits set in a clock status octet; None when not specified."""
    if status is None:
        return None
    return [name for bit, name in STATUS_NAMES if status & bit]


def _date_time(value: Any, what: str) -> CosemDateTime:
    if isinstance(value, CosemDateTime):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return date_time_from_octets(bytes(value))
        except DecodeError as exc:
            raise DecodeError(f"clock {what}: {exc}") from None
    raise DecodeError(f"clock {what} must be a date-time (octet-string of 12 octets), got "
                      f"{value!r}")


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class ClockReading:
    """The meter's clock and its settings as read; attributes the meter refused are None."""

    time: CosemDateTime
    time_zone: int | None = None  # minutes (attribute 3)
    status: int | None = None  # attribute 4; else the date-time's own status octet
    daylight_savings_begin: CosemDateTime | None = None
    daylight_savings_end: CosemDateTime | None = None
    daylight_savings_deviation: int | None = None  # minutes added in summer time
    daylight_savings_enabled: bool | None = None
    clock_base: int | None = None

    @classmethod
    def from_attributes(cls, values: Mapping[int, Any]) -> ClockReading:
        """From attribute index -> decoded value (a refused attribute: absent, or any
        non-value such as a DataAccessResult). ``time`` (2) is required."""
        if TIME not in values:
            raise DecodeError("the clock's time (attribute 2) was not read; it is what "
                              "every other attribute qualifies")
        time = _date_time(values[TIME], "time (attribute 2)")

        def pattern(index: int) -> CosemDateTime | None:
            value = values.get(index)
            try:
                return _date_time(value, f"attribute {index}") if value is not None else None
            except DecodeError:
                return None  # a settings pattern that does not decode: shown as unknown

        enabled = values.get(DAYLIGHT_SAVINGS_ENABLED)
        status = _optional_int(values.get(STATUS))
        return cls(time, _optional_int(values.get(TIME_ZONE)),
                   status if status is not None else time.status,
                   pattern(DAYLIGHT_SAVINGS_BEGIN), pattern(DAYLIGHT_SAVINGS_END),
                   _optional_int(values.get(DAYLIGHT_SAVINGS_DEVIATION)),
                   enabled if isinstance(enabled, bool) else None,
                   _optional_int(values.get(CLOCK_BASE)))

    @property
    def daylight_saving_active(self) -> bool | None:
        """The status bit 7 (4.1.6.1); None when the status is not specified."""
        if self.status is None:
            return None
        return bool(self.status & ClockStatus.DAYLIGHT_SAVING_ACTIVE)

    @property
    def trusted(self) -> bool:
        """False when the status flags the time invalid or doubtful."""
        return self.status is None or not self.status & UNTRUSTED

    def meter_time(self, assume_offset: dt.tzinfo | None = None) -> dt.datetime:
        """The meter's time as an aware datetime. A time without deviation ("not
        specified") is local time in ``assume_offset`` (DecodeError when None)."""
        moment = self.time.to_datetime()
        if moment.tzinfo is None:
            if assume_offset is None:
                raise DecodeError(f"the clock sends no deviation ({self.time}); its time is "
                                  "local time in an unknown zone")
            moment = moment.replace(tzinfo=assume_offset)
        return moment

    def drift(self, reference: dt.datetime, assume_offset: dt.tzinfo | None = None) -> float:
        """Meter time minus ``reference`` (aware), in seconds: positive = meter ahead."""
        return (self.meter_time(assume_offset) - reference).total_seconds()

    @property
    def clock_base_name(self) -> str | None:
        if self.clock_base is None:
            return None
        return CLOCK_BASES.get(self.clock_base, f"clock_base_{self.clock_base}")


def shifted_time(reading: ClockReading, seconds: float) -> CosemDateTime:
    """The date-time to SET (attribute 2) so that the clock moves by ``seconds``: the
    same deviation and status as the meter sent, local time moved (4.5.1 attribute 2)."""
    moment = reading.time.to_datetime() + dt.timedelta(seconds=seconds)
    time = reading.time
    return CosemDateTime(moment.year, moment.month, moment.day, moment.isoweekday(),
                         moment.hour, moment.minute, moment.second,
                         moment.microsecond // 10_000 if time.hundredths is not None else None,
                         time.deviation, time.status)


__all__ = ["ATTRIBUTES", "CLOCK", "CLOCK_CLASS", "SHIFT_TIME", "SHIFT_TIME_LIMIT",
           "STATUS_NAMES", "ClockReading", "shifted_time", "status_names"]
