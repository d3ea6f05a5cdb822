"""Load profile 1.0.99.1.0.255: rows generated on demand, consistent with the registers,
and the selective access edge cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sim_support import START, make, request

from edge_agent.dlms.apdu.results import DataAccessResult
from edge_agent.dlms.encoding.axdr import (
    Array,
    DoubleLongUnsigned,
    Integer,
    LongUnsigned,
    OctetString,
)
from edge_agent.dlms.encoding.date_time import CosemDateTime, date_time_from_octets
from edge_agent.simulator.loadprofile import (
    CLOCK_CAPTURE,
    STATUS_CLOCK_ADJUSTED,
    STATUS_POWER_DOWN,
    CaptureObject,
)
from edge_agent.simulator.meter_models import LOAD_PROFILE, LOAD_PROFILE_CAPACITY, ln
from edge_agent.simulator.objects import Refused

ENERGY = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.3.8.0.255", "1.0.4.8.0.255")


def buffer(sim, selector=None, parameters=None) -> Array:
    attribute = sim.objects[LOAD_PROFILE].attributes[2]
    if selector is None:
        return attribute.get(request(sim))
    return attribute.select(request(sim), selector, parameters)


def when(row) -> datetime:
    return date_time_from_octets(row[0]).to_datetime().astimezone(UTC)


def clock_value(at: datetime, sim) -> OctetString:
    return OctetString(sim.meter.cosem_time(at).encode())


def by_range(sim, start: datetime, end: datetime, columns=()) -> Array:
    return buffer(sim, 1, (CLOCK_CAPTURE.to_data(), clock_value(start, sim),
                           clock_value(end, sim), list(columns)))


def test_the_buffer_holds_32_weeks_of_quarter_hours_ending_now() -> None:
    sim, _ = make()
    rows = buffer(sim)
    assert len(rows) == LOAD_PROFILE_CAPACITY
    assert when(rows[-1]) == datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    assert when(rows[0]) <= START - timedelta(days=224)
    # Both DST changes of 2024 (31 March, 27 October) are in the history.
    assert when(rows[0]) < datetime(2024, 10, 27, 1, tzinfo=UTC)
    steps = [when(b) - when(a) for a, b in pairwise(rows)]
    assert all(step >= timedelta(minutes=15) and step % timedelta(minutes=15) == timedelta(0)
               for step in steps)
    attributes = sim.objects[LOAD_PROFILE].attributes
    r = request(sim)
    assert attributes[7].get(r) == attributes[8].get(r) == LOAD_PROFILE_CAPACITY
    assert attributes[4].get(r) == 900
    assert [CaptureObject.from_data(c).logical_name for c in attributes[3].get(r)][2:] == \
        [ln(o) for o in ENERGY]


def test_rows_hold_the_register_values_at_their_time() -> None:
    sim, clock = make()
    rows = buffer(sim)
    for row in rows[-5:] + rows[:2] + rows[1000:1003]:
        clock.now = when(row)  # read the registers when the row was captured
        r = request(sim)
        for column, obis in enumerate(ENERGY, start=2):
            register = sim.objects[ln(obis)].attributes[2].get(r)
            assert row[column] == register and isinstance(row[column], DoubleLongUnsigned)


def test_rows_do_not_change_when_read_later() -> None:
    sim, clock = make()
    first = buffer(sim)
    clock.advance(minutes=16)
    later = buffer(sim)
    assert later[:-1] == first[1:]  # one more row; the oldest fell out (FIFO)
    assert when(later[-1]) == when(first[-1]) + timedelta(minutes=15)


def test_range_selection_is_inclusive_and_restricts_columns() -> None:
    sim, _ = make()
    start = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)
    rows = by_range(sim, start, start + timedelta(hours=1))
    assert [when(r) for r in rows] == [start + timedelta(minutes=15 * i) for i in range(5)]
    import_only = CaptureObject(3, ln("1.0.1.8.0.255"), 2).to_data()
    narrow = by_range(sim, start, start + timedelta(hours=1), [CLOCK_CAPTURE.to_data(),
                                                              import_only])
    assert [tuple(r) for r in narrow] == [(r[0], r[2]) for r in rows]


def test_range_limits_between_rows_and_without_deviation() -> None:
    sim, _ = make()
    start = datetime(2025, 3, 9, 0, 1, tzinfo=UTC)
    rows = by_range(sim, start, start + timedelta(minutes=28))
    assert [when(r) for r in rows] == [datetime(2025, 3, 9, 0, 15, tzinfo=UTC)]
    local = CosemDateTime(2025, 3, 9, 7, 1, 15, 0, 0, None, None)  # 01:15 CET, no deviation
    same = buffer(sim, 1, (CLOCK_CAPTURE.to_data(), local, local, []))
    assert [when(r) for r in same] == [datetime(2025, 3, 9, 0, 15, tzinfo=UTC)]


@pytest.mark.parametrize("start, end", [
    (datetime(2025, 3, 9, 0, 1, tzinfo=UTC), datetime(2025, 3, 9, 0, 14, tzinfo=UTC)),  # gap
    (datetime(2025, 3, 9, 1, 0, tzinfo=UTC), datetime(2025, 3, 9, 0, 0, tzinfo=UTC)),  # inverted
    (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),  # in the future
    (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)),  # overwritten
    (datetime(2000, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, tzinfo=UTC)),  # before install
])
def test_empty_ranges_give_an_empty_array(start: datetime, end: datetime) -> None:
    sim, _ = make()
    assert by_range(sim, start, end) == []


def test_a_range_over_the_whole_history_is_the_whole_buffer() -> None:
    sim, _ = make()
    everything = by_range(sim, datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1,
                                                                          tzinfo=UTC))
    assert everything == buffer(sim)


@pytest.mark.parametrize("parameters, count, first_column", [
    ((1, 0, 1, 0), LOAD_PROFILE_CAPACITY, 0),
    ((1, 3, 1, 0), 3, 0),
    ((LOAD_PROFILE_CAPACITY, 0, 3, 3), 1, 2),
    ((LOAD_PROFILE_CAPACITY - 1, LOAD_PROFILE_CAPACITY + 50, 2, 0), 2, 1),  # clipped
    ((LOAD_PROFILE_CAPACITY + 1, 0, 1, 0), 0, 0),  # beyond the entries in use
])
def test_entry_selection(parameters: tuple, count: int, first_column: int) -> None:
    sim, _ = make()
    whole = buffer(sim)
    from_entry, to_entry, from_value, to_value = parameters
    rows = buffer(sim, 2, (DoubleLongUnsigned(from_entry), DoubleLongUnsigned(to_entry),
                           LongUnsigned(from_value), LongUnsigned(to_value)))
    assert len(rows) == count
    if count:
        assert rows[0][0] == whole[from_entry - 1][first_column]
        assert len(rows[0]) == (to_value or 6) - from_value + 1


@pytest.mark.parametrize("selector, parameters, result", [
    (2, (DoubleLongUnsigned(0), DoubleLongUnsigned(0), LongUnsigned(1), LongUnsigned(0)),
     DataAccessResult.SCOPE_OF_ACCESS_VIOLATED),  # entries count from 1
    (2, (DoubleLongUnsigned(5), DoubleLongUnsigned(2), LongUnsigned(1), LongUnsigned(0)),
     DataAccessResult.SCOPE_OF_ACCESS_VIOLATED),  # to below from
    (2, (DoubleLongUnsigned(1), DoubleLongUnsigned(2), LongUnsigned(1), LongUnsigned(9)),
     DataAccessResult.SCOPE_OF_ACCESS_VIOLATED),  # only 6 columns
    (2, (DoubleLongUnsigned(1), DoubleLongUnsigned(2)), DataAccessResult.TYPE_UNMATCHED),
    (2, (OctetString(b"x"), 0, 1, 0), DataAccessResult.TYPE_UNMATCHED),
    (1, (CaptureObject(3, ln("1.0.1.8.0.255"), 2).to_data(), 1, 2, []),
     DataAccessResult.SCOPE_OF_ACCESS_VIOLATED),  # restricting object is not the clock
    (1, (CLOCK_CAPTURE.to_data(), OctetString(b"\xff" * 12), OctetString(b"\xff" * 12), []),
     DataAccessResult.TYPE_UNMATCHED),  # a wildcard date-time is no point in time
    (1, (CLOCK_CAPTURE.to_data(), Integer(1), Integer(2), []), DataAccessResult.TYPE_UNMATCHED),
    (1, (CLOCK_CAPTURE.to_data(), OctetString(bytes(12)), OctetString(bytes(12)),
         [CaptureObject(3, ln("1.0.9.9.9.255"), 2).to_data()]),
     DataAccessResult.SCOPE_OF_ACCESS_VIOLATED),  # not a capture object
    (3, (), DataAccessResult.OTHER_REASON),
])
def test_bad_selective_access_is_refused(selector: int, parameters, result) -> None:
    sim, _ = make()
    with pytest.raises(Refused) as refusal:
        buffer(sim, selector, parameters)
    assert refusal.value.result == result


def test_reset_empties_the_buffer_then_it_fills_again() -> None:
    sim, clock = make()
    lp = sim.objects[LOAD_PROFILE]
    lp.methods[1](request(sim), Integer(0))
    assert buffer(sim) == []
    clock.advance(minutes=31)
    assert [when(r) for r in buffer(sim)] == [datetime(2025, 3, 10, 12, 15, tzinfo=UTC),
                                              datetime(2025, 3, 10, 12, 30, tzinfo=UTC)]


def test_a_young_meter_has_few_rows() -> None:
    sim, _ = make(now=datetime(2014, 12, 31, 23, 50, tzinfo=UTC))  # installed 23:00 UTC
    rows = buffer(sim)
    assert [when(r) for r in rows] == [datetime(2014, 12, 31, 23, 15, tzinfo=UTC),
                                       datetime(2014, 12, 31, 23, 30, tzinfo=UTC),
                                       datetime(2014, 12, 31, 23, 45, tzinfo=UTC)]


def test_status_marks_power_failures_and_clock_adjustments() -> None:
    sim, clock = make()
    curve = sim.meter.curve
    rows = buffer(sim)
    flagged = [r for r in rows if r[1] & STATUS_POWER_DOWN]
    days = {curve.seconds(when(r)) // 86_400 for r in flagged}
    assert flagged and all(curve.outage(int(d)) or curve.outage(int(d) - 1) for d in days)
    sim.meter.set_clock(sim.meter.now() + timedelta(seconds=30))
    clock.advance(minutes=15)
    assert buffer(sim)[-1][1] & STATUS_CLOCK_ADJUSTED


def test_power_failures_leave_a_gap_with_the_power_down_bit_after_it() -> None:
    """No power, no capture: a boundary inside a failure has no row, the row after the
    gap has the power-down bit, and the event log has the failure at its time."""
    sim, _ = make()
    rows = buffer(sim)
    curve = sim.meter.curve
    gaps = [(a, b) for a, b in pairwise(rows) if when(b) - when(a) > timedelta(minutes=15)]
    assert gaps
    events = sim.objects[ln("0.0.99.98.0.255")].attributes[2].get(request(sim))
    downs = {when(e) for e in events if e[1] == 1}
    for before, after in gaps:
        assert after[1] & STATUS_POWER_DOWN
        day = int(curve.seconds(when(after)) // 86_400)
        outage = curve.outage(day) or curve.outage(day - 1)
        assert outage is not None and outage.duration >= 1
        failed = curve.origin + timedelta(seconds=outage.day * 86_400 + outage.start)
        assert when(before) <= failed < when(after)
        if failed >= min(downs, default=failed):  # the event log keeps the last 100 events
            assert failed in downs
