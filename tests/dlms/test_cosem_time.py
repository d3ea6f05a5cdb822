"""COSEM date, time and date-time (Blue Book 4.1.6.1)."""

from __future__ import annotations

import pickle
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.dlms.encoding.date_time import (
    DAY_LAST,
    MONTH_DST_BEGIN,
    ClockStatus,
    CosemDate,
    CosemDateTime,
    CosemTime,
    date_time_from_octets,
    looks_like_date_time,
)
from edge_agent.dlms.errors import DecodeError, DlmsError, EncodeError, TruncatedError

CET = timezone(timedelta(hours=1))

# 2024-03-31 (Sunday) 02:30:15.25, deviation -60 (UTC+1 per 4.1.6.1), status 0x00.
CLOCK_HEX = "07E8 03 1F 07 02 1E 0F 19 FFC4 00"


def test_known_date_time() -> None:
    value = CosemDateTime.decode(bytes.fromhex(CLOCK_HEX))
    assert (value.year, value.month, value.day, value.weekday) == (2024, 3, 31, 7)
    assert (value.hour, value.minute, value.second, value.hundredths) == (2, 30, 15, 25)
    assert value.deviation == -60 and value.status == 0
    assert value.encode() == bytes.fromhex(CLOCK_HEX)
    assert value.to_datetime() == datetime(2024, 3, 31, 2, 30, 15, 250_000, tzinfo=CET)
    assert value.isoformat() == "2024-03-31T02:30:15.250000+01:00"


def test_deviation_sign_follows_the_blue_book() -> None:
    # "deviation: minutes of local time to UTC": UTC = local + deviation, so UTC+1 is -60.
    value = CosemDateTime.from_datetime(datetime(2024, 1, 1, 12, 0, tzinfo=CET))
    assert value.deviation == -60
    assert value.encode()[9:11] == bytes.fromhex("FFC4")
    # Companion specs that use the opposite sign (India, Saudi Arabia, Italy).
    flipped = CosemDateTime.from_datetime(datetime(2024, 1, 1, 12, 0, tzinfo=CET),
                                          deviation_is_utc_offset=True)
    assert flipped.deviation == 60
    assert flipped.to_datetime(deviation_is_utc_offset=True).utcoffset() == timedelta(hours=1)


def test_not_specified_fields() -> None:
    raw = bytes.fromhex("FFFF FF FF FF FF FF FF FF 8000 FF")
    value = CosemDateTime.decode(raw)
    assert value == CosemDateTime()
    assert value.year is None and value.deviation is None and value.status is None
    assert value.encode() == raw
    assert str(value) == "****-**-** **:**:**.**"
    with pytest.raises(DecodeError, match="pattern"):
        value.to_datetime()


def test_naive_when_deviation_not_specified() -> None:
    value = CosemDateTime(2024, 5, 1, None, 0, 15, 0, 0, None, 0)
    assert value.to_datetime() == datetime(2024, 5, 1, 0, 15)
    assert value.to_datetime().tzinfo is None
    assert CosemDateTime.from_datetime(datetime(2024, 5, 1, 0, 15)).deviation is None


def test_special_month_and_day_values() -> None:
    # DST begins on the last Sunday of March: month 3, day 0xFE (last), weekday 7.
    pattern = CosemDateTime(None, 3, DAY_LAST, 7, 2, 0, 0, 0, None, None)
    assert CosemDateTime.decode(pattern.encode()) == pattern
    assert CosemDate(None, MONTH_DST_BEGIN, None, None).encode() == bytes.fromhex("FFFF FE FF FF")
    with pytest.raises(DecodeError):
        pattern.to_datetime()
    with pytest.raises(DecodeError, match="pattern"):
        CosemDate(2024, 3, DAY_LAST).to_date()


def test_clock_status_bits() -> None:
    value = CosemDateTime(2024, 7, 1, 1, 0, 0, 0, 0, -120, 0x81)
    assert value.clock_status == ClockStatus.INVALID_VALUE | ClockStatus.DAYLIGHT_SAVING_ACTIVE
    try:
        vienna = ZoneInfo("Europe/Vienna")
    except ZoneInfoNotFoundError:
        pytest.skip("no tz database on this machine")
    dt = datetime(2024, 7, 1, 12, 0, tzinfo=vienna)
    value = CosemDateTime.from_datetime(dt)
    assert value.deviation == -120
    assert value.status == ClockStatus.DAYLIGHT_SAVING_ACTIVE
    assert value.to_datetime() == dt


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"month": 13}, "month must be 1..12, 0xFD, 0xFE"),
    ({"day": 0}, "day must be 1..31"),
    ({"weekday": 8}, "weekday must be 1..7"),
    ({"hour": 24}, "hour must be 0..23"),
    ({"second": 60}, "second must be 0..59"),
    ({"hundredths": 100}, "hundredths must be 0..99"),
    ({"deviation": 900}, "deviation must be -840..840"),
    ({"status": 0xFF}, "clock status must be 0..254"),
    ({"year": 0xFFFF}, "year must be 0..65534"),
])
def test_out_of_range_fields_are_refused(kwargs: dict, text: str) -> None:
    with pytest.raises(EncodeError, match=text):
        CosemDateTime(**kwargs)


def test_decode_errors() -> None:
    with pytest.raises(TruncatedError, match="expected 12 octets at offset 0, got 11"):
        CosemDateTime.decode(bytes(11))
    bad_minute = bytearray.fromhex(CLOCK_HEX)
    bad_minute[6] = 60
    with pytest.raises(DecodeError, match="minute must be 0..59.*offset 3"):
        CosemDateTime.decode(b"\x00\x00\x00" + bytes(bad_minute), 3)
    with pytest.raises(TruncatedError):
        CosemDate.decode(bytes(4))
    with pytest.raises(TruncatedError):
        CosemTime.decode(bytes(3))
    with pytest.raises(DecodeError, match="hour"):
        CosemTime.decode(bytes.fromhex("30000000"))
    with pytest.raises(DecodeError, match="not a valid date-time"):
        CosemDateTime(2023, 2, 30, None, 0, 0, 0, 0, 0, 0).to_datetime()


def test_immutable_hashable_picklable() -> None:
    value = CosemDateTime.decode(bytes.fromhex(CLOCK_HEX))
    with pytest.raises(AttributeError):
        value.hour = 3  # type: ignore[misc]
    assert {value: 1}[CosemDateTime.decode(bytes.fromhex(CLOCK_HEX))] == 1
    assert pickle.loads(pickle.dumps(value)) == value
    assert value.replace(hour=3).hour == 3 and value.hour == 2
    assert value != CosemDateTime.decode(bytes.fromhex(CLOCK_HEX)).replace(status=1)
    assert "hour=2" in repr(value)


def test_date_and_time_parts() -> None:
    value = CosemDateTime.decode(bytes.fromhex(CLOCK_HEX))
    assert value.date == CosemDate(2024, 3, 31, 7)
    assert value.time == CosemTime(2, 30, 15, 25)
    assert value.date.to_date() == date(2024, 3, 31)
    assert value.time.to_time() == time(2, 30, 15, 250_000)
    assert CosemDate.from_date(date(2024, 3, 31)).encode() == bytes.fromhex("07E8031F07")
    assert CosemTime.from_time(time(23, 59, 58, 990_000)).encode() == bytes.fromhex("173B3A63")


def test_octet_string_clock_values() -> None:
    raw = bytes.fromhex(CLOCK_HEX)
    assert date_time_from_octets(raw) == CosemDateTime.decode(raw)
    assert looks_like_date_time(raw)
    assert not looks_like_date_time(b"1SAG67929081")  # a 12-octet serial number
    assert not looks_like_date_time(raw[:6])
    with pytest.raises(DecodeError, match="12 octets, got 6"):
        date_time_from_octets(raw[:6])


aware = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30),
                     timezones=st.integers(-720, 720).map(
                         lambda m: timezone(timedelta(minutes=m))))


@given(aware)
def test_datetime_round_trip(dt: datetime) -> None:
    dt = dt.replace(microsecond=dt.microsecond // 10_000 * 10_000)
    value = CosemDateTime.from_datetime(dt)
    assert CosemDateTime.decode(value.encode()) == value
    assert value.to_datetime() == dt
    assert value.to_datetime().utcoffset() == dt.utcoffset()
    assert value.weekday == dt.isoweekday()


@given(st.binary(min_size=12, max_size=12))
def test_any_twelve_octets_decode_exactly_or_raise(raw: bytes) -> None:
    try:
        value = CosemDateTime.decode(raw)
    except DlmsError:
        return
    assert value.encode() == raw
    assert CosemDateTime(**value.fields()) == value


@given(st.binary(min_size=5, max_size=5))
def test_any_five_octets_date(raw: bytes) -> None:
    try:
        value = CosemDate.decode(raw)
    except DlmsError:
        return
    assert value.encode() == raw
