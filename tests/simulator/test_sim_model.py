"""The simulated meter's physics: deterministic, monotonic, plausible, consistent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_support import START, FakeClock

from edge_agent.dlms.encoding.date_time import ClockStatus
from edge_agent.simulator.model import (
    DAY_SECONDS,
    Channel,
    ControlState,
    HouseholdCurve,
    Meter,
    Tariff,
)

WHEN = st.datetimes(min_value=datetime(2014, 6, 1), max_value=datetime(2040, 1, 1),
                    timezones=st.just(UTC))


def meter(seed: int = 1, now: datetime = START) -> tuple[Meter, FakeClock]:
    clock = FakeClock(now)
    return Meter(seed, clock), clock


def readings(m: Meter, world: datetime) -> tuple:
    return (tuple(m.energy(c, world, t) for c in Channel for t in (None, *Tariff))
            + tuple(m.reactive_energy(c, world) for c in Channel)
            + tuple(m.power(c, world) for c in Channel)
            + tuple(m.voltage(p, world) for p in range(3))
            + tuple(m.current(p, world) for p in range(3))
            + (m.frequency(world), m.total_power_factor(world)))


def test_same_seed_and_time_give_the_same_values_in_any_order() -> None:
    a, _ = meter(7)
    b, _ = meter(7)
    later = START + timedelta(days=3, minutes=1)
    first = readings(a, START)
    readings(a, later)  # caches filled in another order must not matter
    assert readings(b, later) == readings(a, later)
    assert readings(a, START) == first == readings(b, START)


def test_another_seed_gives_another_household() -> None:
    assert readings(meter(1)[0], START) != readings(meter(2)[0], START)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**64), first=WHEN, second=WHEN)
def test_every_register_is_monotonic(seed: int, first: datetime, second: datetime) -> None:
    m, _ = meter(seed)
    early, late = sorted((first, second))
    for channel in Channel:
        for tariff in (None, *Tariff):
            assert m.energy(channel, early, tariff) <= m.energy(channel, late, tariff)
        assert m.reactive_energy(channel, early) <= m.reactive_energy(channel, late)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), when=WHEN)
def test_tariffs_add_up_to_the_total(seed: int, when: datetime) -> None:
    m, _ = meter(seed)
    for channel in Channel:
        total = m.energy(channel, when)
        assert m.energy(channel, when, Tariff.T1) + m.energy(channel, when, Tariff.T2) == \
            pytest.approx(total, abs=1e-6)


@pytest.mark.parametrize("boundary", [
    datetime(2025, 3, 10, 23, 0, tzinfo=UTC),   # local midnight (day boundary)
    datetime(2025, 3, 10, 5, 0, tzinfo=UTC),    # 06:00 local: T2 -> T1
    datetime(2025, 3, 10, 12, 15, tzinfo=UTC),  # a slot boundary
    datetime(2031, 1, 1, 11, 0, tzinfo=UTC),    # several 364-day seasons later
])
def test_energy_is_continuous_across_boundaries(boundary: datetime) -> None:
    m, _ = meter(3)
    epsilon = timedelta(microseconds=1)
    for channel in Channel:
        for tariff in (None, *Tariff):
            assert m.energy(channel, boundary - epsilon, tariff) == \
                pytest.approx(m.energy(channel, boundary, tariff), abs=1e-3)


def test_a_day_is_a_plausible_household_day() -> None:
    for seed in range(20):
        m, _ = meter(seed)
        day = m.energy(Channel.IMPORT, START) - m.energy(Channel.IMPORT, START - timedelta(1))
        assert 2_000 < day < 30_000  # Wh
        winter_night = datetime(2025, 1, 15, 1, 0, tzinfo=UTC)
        assert m.power(Channel.EXPORT, winter_night) == 0  # no sun at 02:00


def test_power_is_the_slope_of_energy() -> None:
    m, _ = meter(5)
    slot_start = datetime(2025, 3, 10, 11, 0, tzinfo=UTC)
    energy = (m.energy(Channel.IMPORT, slot_start + timedelta(minutes=15))
              - m.energy(Channel.IMPORT, slot_start))
    mean_power = m.curve.slot_power(Channel.IMPORT, m.curve.seconds(slot_start))
    assert mean_power == pytest.approx(energy * 4)
    assert 0.95 * mean_power < m.power(Channel.IMPORT, slot_start) < 1.05 * mean_power


def test_before_installation_registers_hold_their_initial_values() -> None:
    m, _ = meter(9)
    before = datetime(2010, 1, 1, tzinfo=UTC)
    assert m.energy(Channel.IMPORT, before) == m.curve.initial[Channel.IMPORT]
    assert m.power(Channel.IMPORT, before) == 0


def test_an_outage_stops_power_and_takes_its_energy_out_of_the_slot() -> None:
    curve = HouseholdCurve(11)
    outage = next(o for o in map(curve.outage, range(4000)) if o and o.duration > 60)
    inside = outage.day * DAY_SECONDS + outage.start + outage.duration / 2
    assert curve.slot_power(Channel.IMPORT, inside) == 0


def test_remote_disconnect_freezes_the_registers_until_reconnection() -> None:
    m, clock = meter(4)
    assert m.output_state and m.control_state is ControlState.CONNECTED
    assert m.remote_disconnect()
    frozen = m.energy(Channel.IMPORT, clock.now)
    clock.advance(hours=5)
    assert m.energy(Channel.IMPORT, clock.now) == pytest.approx(frozen)
    assert m.power(Channel.IMPORT, clock.now) == 0 and m.current(0, clock.now) == 0
    assert not m.output_state
    assert m.remote_reconnect()  # mode 4: remote reconnection connects at once
    assert m.control_state is ControlState.CONNECTED
    clock.advance(hours=1)
    assert m.energy(Channel.IMPORT, clock.now) > frozen


def test_control_modes_decide_the_transitions() -> None:
    m, _ = meter(4)
    m.control_mode = 1
    m.remote_disconnect()
    m.remote_reconnect()
    assert m.control_state is ControlState.READY_FOR_RECONNECTION and not m.output_state
    m.control_mode = 0
    assert not m.remote_disconnect() and not m.remote_reconnect()


def test_setting_the_clock_moves_time_stamps_not_energy() -> None:
    m, clock = meter(8)
    energy = m.energy(Channel.IMPORT, clock.now)
    m.set_clock(clock.now + timedelta(hours=-2))
    assert m.now() == clock.now - timedelta(hours=2)
    assert m.energy(Channel.IMPORT, m.world_now()) == energy
    assert [e.code for e in m.recorded_events] == [4, 5]
    assert m.recorded_events[0].when - m.recorded_events[1].when == timedelta(hours=2)


def test_the_clock_shows_local_time_with_deviation_and_dst() -> None:
    m, _ = meter()
    winter = m.cosem_time(datetime(2025, 1, 10, 12, 0, tzinfo=UTC))
    summer = m.cosem_time(datetime(2025, 7, 10, 12, 0, tzinfo=UTC))
    assert (winter.hour, winter.deviation, winter.status) == (13, -60, 0)
    assert (summer.hour, summer.deviation) == (14, -120)
    assert summer.status == ClockStatus.DAYLIGHT_SAVING_ACTIVE
    for shown in (winter, summer):
        assert shown.to_datetime().astimezone(UTC) in (
            datetime(2025, 1, 10, 12, 0, tzinfo=UTC), datetime(2025, 7, 10, 12, 0, tzinfo=UTC))
        assert m.local_to_utc(shown.to_datetime().replace(tzinfo=None)) == \
            shown.to_datetime().astimezone(UTC)


def test_a_naive_clock_is_refused() -> None:
    m = Meter(1, lambda: datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        m.now()
