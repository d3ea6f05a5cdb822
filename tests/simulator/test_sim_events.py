"""Standard event log 0.0.99.98.0.255 and the profiles' identities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sim_support import START, make, request

from edge_agent.dlms.encoding.axdr import DoubleLongUnsigned, LongUnsigned, OctetString, Unsigned
from edge_agent.dlms.encoding.date_time import date_time_from_octets
from edge_agent.dlms.errors import ConfigError
from edge_agent.simulator.event_log import CAPACITY, EVENT_CODE_LN, EVENT_LOG_LN, EventCode
from edge_agent.simulator.loadprofile import CLOCK_CAPTURE
from edge_agent.simulator.meter_models import build, ln


def log(sim, selector=None, parameters=None):
    attribute = sim.objects[EVENT_LOG_LN].attributes[2]
    if selector is None:
        return attribute.get(request(sim))
    return attribute.select(request(sim), selector, parameters)


def when(row) -> datetime:
    return date_time_from_octets(row[0]).to_datetime().astimezone(UTC)


def test_the_log_is_deterministic_full_and_ordered() -> None:
    first, _ = make(seed=5)
    second, _ = make(seed=5)
    rows = log(first)
    assert rows == log(second) and len(rows) == CAPACITY
    times = [when(r) for r in rows]
    assert times == sorted(times) and times[-1] <= START
    assert {r[1] for r in rows} <= {code.value for code in EventCode}
    assert all(isinstance(r[1], Unsigned) for r in rows)
    assert log(make(seed=6)[0]) != rows


def test_power_failures_come_as_down_then_up_matching_the_curve() -> None:
    sim, _ = make(seed=5)
    rows = log(sim)
    downs = [i for i, r in enumerate(rows) if r[1] == EventCode.POWER_DOWN]
    assert downs
    curve = sim.meter.curve
    for i in downs[:-1]:  # the newest outage may still be going on
        up = rows[i + 1]
        assert up[1] == EventCode.POWER_UP
        day = int(curve.seconds(when(rows[i])) // 86_400)
        outage = curve.outage(day)
        assert outage is not None
        assert (when(up) - when(rows[i])).total_seconds() == outage.duration


def test_setting_the_clock_is_logged_with_old_and_new_time() -> None:
    sim, _ = make(seed=5)
    sim.meter.set_clock(START + timedelta(minutes=10))
    rows = log(sim)
    assert [r[1] for r in rows[-2:]] == [EventCode.CLOCK_ADJUSTED_OLD_TIME,
                                         EventCode.CLOCK_ADJUSTED_NEW_TIME]
    assert when(rows[-1]) - when(rows[-2]) == timedelta(minutes=10)
    assert sim.objects[EVENT_CODE_LN].attributes[2].get(request(sim)) == 5


def test_range_and_entry_selection_of_the_log() -> None:
    sim, _ = make(seed=5)
    rows = log(sim)
    low, high = when(rows[10]), when(rows[20])
    selected = log(sim, 1, (CLOCK_CAPTURE.to_data(),
                            OctetString(sim.meter.cosem_time(low).encode()),
                            OctetString(sim.meter.cosem_time(high).encode()), []))
    assert selected == [r for r in rows if low <= when(r) <= high] and len(selected) >= 11
    last = log(sim, 2, (DoubleLongUnsigned(CAPACITY), DoubleLongUnsigned(0), LongUnsigned(2),
                        LongUnsigned(0)))
    assert [tuple(r) for r in last] == [(rows[-1][1],)]


def test_a_meter_installed_yesterday_has_almost_no_events() -> None:
    sim, _ = make(seed=5, now=datetime(2015, 1, 2, tzinfo=UTC))
    assert len(log(sim)) < 4


def test_reset_clears_the_log_and_logs_that() -> None:
    sim, _ = make(seed=5)
    sim.objects[EVENT_LOG_LN].methods[1](request(sim), 0)
    assert [r[1] for r in log(sim)] == [EventCode.EVENT_LOG_CLEARED]


def test_t210d_identity_is_sagemcom_like_and_deterministic() -> None:
    sim, _ = make("t210d", seed=3)
    again, _ = make("t210d", seed=3)
    assert sim.serial.startswith("1SAG") and len(sim.serial) == 14
    assert sim.system_title[:3] == b"SAG" and len(sim.system_title) == 8
    assert sim.logical_device_name.startswith(b"SAG") and len(sim.logical_device_name) == 16
    assert (sim.serial, sim.system_title) == (again.serial, again.system_title)
    assert make("t210d", seed=4)[0].serial != sim.serial
    assert sim.objects[ln("0.0.96.1.0.255")].attributes[2].get(request(sim)) == \
        sim.serial.encode()
    assert {r.mechanism_id for r in sim.roles.values()} == {0, 5}


def test_generic_profile_has_lls_management_and_the_same_objects() -> None:
    generic, _ = make("generic", seed=3)
    t210d, _ = make("t210d", seed=3)
    assert generic.objects.keys() == t210d.objects.keys()
    assert generic.roles[1].password is not None and "0000" not in repr(generic.roles[1])


def test_configuration_mistakes_are_named() -> None:
    with pytest.raises(ConfigError, match="generic, t210d"):
        build("t211", 1, lambda: START)
    with pytest.raises(ConfigError, match="SAP 16"):
        build("t210d", 1, lambda: START, management_sap=16)
    sim = build("t210d", 1, lambda: START, management_sap=2)
    assert sorted(sim.roles) == [2, 16]
    with pytest.raises(ConfigError, match="no client SAP 1;"):
        sim.view_for(1)
