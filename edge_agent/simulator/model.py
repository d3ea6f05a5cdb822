"""The simulated meter's physics and state: what it measures, when, and what it remembers.

Everything here is a pure function of ``(seed, time)`` plus the few things a client can
change (the clock offset, the disconnector, runtime event records). There is no hidden
clock: the meter asks the injected ``clock`` callable for the world's time (an aware UTC
``datetime``), so tests decide what "now" is.

Energy is the integral of a plausible household power curve, piecewise constant per
15-minute slot (the load profile's capture period):

- a day's energy per channel (import A+, export A- from a PV system) and tariff comes from a
  table of 364 days (52 weeks: seasons and weekdays repeat together), so the energy of any
  number of whole days is ``(n // 364) * year_total + prefix[n % 364]``: O(1), no loop
  over the meter's life;
- within a day the energy of each tariff window is spread over its slots by a noise-free
  shape (base load, morning and evening peaks; the sun for export) times a noise factor
  from a keyed hash of the absolute slot number. Because the noise is renormalised inside
  each window, it never changes the day totals the closed form relies on;
- power failures remove energy from the slot they fall in; a remote disconnect removes the
  energy of the disconnected interval (the registers stand still, as on a real meter).

So a register read twice at the same instant gives the same value, registers never
decrease, and a load-profile row at time T holds exactly the register values at T.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from edge_agent.dlms.encoding.date_time import ClockStatus, CosemDateTime

if TYPE_CHECKING:
    from edge_agent.simulator.event_log import EventPace

#: The meter was installed at 2015-01-01 00:00 local standard time (this date in UTC, less
#: the standard offset); registers hold their initial values before it and the load
#: profile has no rows before it.
INSTALLATION = datetime(2015, 1, 1, tzinfo=UTC)
SLOT_SECONDS = 900  # capture period of the load profile (15 min)
SLOTS_PER_DAY = 96
DAY_SECONDS = 86_400
SEASON_DAYS = 364  # 52 weeks: weekday and season tables repeat together
_INSTALLATION_WEEKDAY = 3  # 2015-01-01 was a Thursday (Monday = 0)

# Tariff T1 (high) applies 06:00-22:00 local standard time, Monday to Friday; T2 otherwise.
_T1_SLOTS = frozenset(range(6 * 4, 22 * 4))


class Channel(IntEnum):
    """Energy directions the meter integrates (OBIS C = 1 and 2)."""

    IMPORT = 0  # A+ (1.8.x): energy taken from the grid
    EXPORT = 1  # A- (2.8.x): energy fed into the grid


class Tariff(IntEnum):
    T1 = 1
    T2 = 2


def _key(seed: int) -> bytes:
    return hashlib.blake2b(str(seed).encode(), digest_size=32, person=b"dlms-edge-sim").digest()


class Noise:
    """Uniform numbers in [0, 1) from a keyed hash of (purpose, index): no RNG state, so
    the value for slot 123456 is the same whenever and in whatever order it is asked for."""

    __slots__ = ("_key",)

    def __init__(self, seed: int) -> None:
        self._key = _key(seed)

    def __call__(self, purpose: bytes, index: int) -> float:
        digest = hashlib.blake2b(purpose + index.to_bytes(8, "big", signed=True),
                                 key=self._key, digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((hour - centre) / width) ** 2)


def _import_shape(slot: int) -> float:
    """Relative household demand in a slot: base load, breakfast, lunch, evening peak."""
    hour = (slot + 0.5) / 4
    return (0.35 + 0.55 * _bump(hour, 7.5, 1.0) + 0.30 * _bump(hour, 12.5, 1.2)
            + 1.00 * _bump(hour, 19.0, 1.6) + 0.15 * _bump(hour, 22.5, 0.8))


def _export_shape(slot: int) -> float:
    """Relative PV surplus: a sine bow between 07:00 and 19:00, nothing at night."""
    hour = (slot + 0.5) / 4
    return math.sin(math.pi * (hour - 7) / 12) ** 1.5 if 7 < hour < 19 else 0.0


_SHAPES = {
    Channel.IMPORT: tuple(_import_shape(k) for k in range(SLOTS_PER_DAY)),
    Channel.EXPORT: tuple(_export_shape(k) for k in range(SLOTS_PER_DAY)),
}


@dataclass(frozen=True, slots=True)
class Outage:
    """A power failure: seconds since the day's local midnight, and its duration."""

    day: int
    start: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class _Day:
    """Slot energies of one day (Wh) and their running sums per tariff."""

    energy: tuple[tuple[float, ...], ...]  # [channel][slot]
    before: tuple[tuple[tuple[float, ...], ...], ...]  # [channel][tariff - 1][slot + 1]


class HouseholdCurve:
    """Deterministic power and energy of one household, from a seed.

    Times are seconds since :data:`INSTALLATION` in local standard time (``std_offset``
    minutes east of UTC), so days and tariff windows follow the household's clock.
    """

    def __init__(self, seed: int, std_offset_minutes: int = 60) -> None:
        self.seed = seed
        self.noise = noise = Noise(seed)
        self.origin = INSTALLATION - timedelta(minutes=std_offset_minutes)
        import_kwh = 6.0 + 8.0 * noise(b"household-size", 0)
        export_kwh = 3.0 + 7.0 * noise(b"pv-size", 0)
        self.initial = {
            Channel.IMPORT: 1_000_000.0 + 4_000_000.0 * noise(b"initial", 0),
            Channel.EXPORT: 100_000.0 + 900_000.0 * noise(b"initial", 1),
        }
        self.reactive_ratio = {
            Channel.IMPORT: 0.15 + 0.15 * noise(b"reactive", 0),
            Channel.EXPORT: 0.03 + 0.05 * noise(b"reactive", 1),
        }
        self.phase_share = self._phase_shares()
        # Day tables [channel][tariff] over one 364-day season, and their prefix sums.
        self._table: dict[tuple[Channel, Tariff], tuple[float, ...]] = {}
        self._prefix: dict[tuple[Channel, Tariff], tuple[float, ...]] = {}
        for channel, mean_kwh in ((Channel.IMPORT, import_kwh), (Channel.EXPORT, export_kwh)):
            for tariff in Tariff:
                days = tuple(self._day_energy(channel, mean_kwh, tariff, r)
                             for r in range(SEASON_DAYS))
                prefix = [0.0]
                for value in days:
                    prefix.append(prefix[-1] + value)
                self._table[channel, tariff] = days
                self._prefix[channel, tariff] = tuple(prefix)
        self._day = lru_cache(maxsize=256)(self._compute_day)

    # --- day totals --------------------------------------------------------------------

    def _phase_shares(self) -> tuple[float, float, float]:
        raw = [1.0 + self.noise(b"phase", i) for i in range(3)]
        total = sum(raw)
        return (raw[0] / total, raw[1] / total, raw[2] / total)

    def _day_energy(self, channel: Channel, mean_kwh: float, tariff: Tariff, r: int) -> float:
        weekday = (_INSTALLATION_WEEKDAY + r) % 7
        season = math.cos(2 * math.pi * r / SEASON_DAYS)  # +1 in early January
        weather = 0.8 + 0.4 * self.noise(b"weather", r)
        if channel is Channel.IMPORT:
            level = (1 + 0.25 * season) * (1.12 if weekday >= 5 else 1.0)
        else:
            level = 1 - 0.6 * season
        return 1000.0 * mean_kwh * level * weather * self._tariff_fraction(channel, tariff,
                                                                           weekday)

    @staticmethod
    def _tariff_fraction(channel: Channel, tariff: Tariff, weekday: int) -> float:
        shape = _SHAPES[channel]
        t1 = sum(shape[k] for k in _T1_SLOTS) / sum(shape) if weekday < 5 else 0.0
        return t1 if tariff is Tariff.T1 else 1.0 - t1

    @staticmethod
    def tariff_of(day: int, slot: int) -> Tariff:
        weekday = (_INSTALLATION_WEEKDAY + day) % 7
        return Tariff.T1 if weekday < 5 and slot in _T1_SLOTS else Tariff.T2

    def _whole_days(self, channel: Channel, tariff: Tariff, days: int) -> float:
        prefix = self._prefix[channel, tariff]
        return (days // SEASON_DAYS) * prefix[-1] + prefix[days % SEASON_DAYS]

    # --- within a day ---------------------------------------------------------------

    def outage(self, day: int) -> Outage | None:
        """The power failure of ``day``, if any: about one day in 25, 20 s to 40 min."""
        if day < 0 or self.noise(b"outage", day) >= 0.04:
            return None
        # Whole seconds, so that the event log's time stamps are exact.
        start = float(int(self.noise(b"outage-start", day) * (DAY_SECONDS - 3600)))
        duration = float(int(20 + 2380 * self.noise(b"outage-length", day) ** 3))
        return Outage(day, start, duration)

    def _compute_day(self, day: int) -> _Day:
        outage = self.outage(day)
        energy: list[tuple[float, ...]] = []
        before: list[tuple[tuple[float, ...], ...]] = []
        r = day % SEASON_DAYS
        for channel in Channel:
            shape = _SHAPES[channel]
            weights = []
            for k in range(SLOTS_PER_DAY):
                u = self.noise(b"slot-%d" % channel, day * SLOTS_PER_DAY + k)
                weight = shape[k] * ((0.6 + 0.8 * u) if channel is Channel.IMPORT
                                     else (0.25 + 0.75 * u))  # clouds
                if outage is not None:
                    lost = (min(outage.end, (k + 1) * SLOT_SECONDS)
                            - max(outage.start, k * SLOT_SECONDS))
                    weight *= 1.0 - max(lost, 0.0) / SLOT_SECONDS
                weights.append(weight)
            slots = [0.0] * SLOTS_PER_DAY
            for tariff in Tariff:
                window = [k for k in range(SLOTS_PER_DAY) if self.tariff_of(day, k) is tariff]
                total = sum(weights[k] for k in window)
                day_energy = self._table[channel, tariff][r]
                for k in window:
                    slots[k] = day_energy * weights[k] / total if total else 0.0
            running = []
            for tariff in Tariff:
                sums = [0.0]
                for k in range(SLOTS_PER_DAY):
                    add = slots[k] if self.tariff_of(day, k) is tariff else 0.0
                    sums.append(sums[-1] + add)
                running.append(tuple(sums))
            energy.append(tuple(slots))
            before.append(tuple(running))
        return _Day(tuple(energy), tuple(before))

    # --- public -------------------------------------------------------------------------

    def seconds(self, when: datetime) -> float:
        """Seconds since the installation, local standard time."""
        return (when - self.origin).total_seconds()

    def energy(self, channel: Channel, seconds: float, tariff: Tariff | None = None) -> float:
        """Register content in Wh at ``seconds`` (one tariff, or the total)."""
        if tariff is None:
            return sum(self.energy(channel, seconds, t) for t in Tariff)
        initial = self.initial[channel] * (0.6 if tariff is Tariff.T1 else 0.4)
        if seconds <= 0:
            return initial
        day, within = divmod(seconds, DAY_SECONDS)
        day = int(day)
        slot = min(int(within // SLOT_SECONDS), SLOTS_PER_DAY - 1)
        today = self._day(day)
        value = (initial + self._whole_days(channel, tariff, day)
                 + today.before[channel][tariff - 1][slot])
        if self.tariff_of(day, slot) is tariff:
            value += today.energy[channel][slot] * (within - slot * SLOT_SECONDS) / SLOT_SECONDS
        return value

    def slot_power(self, channel: Channel, seconds: float) -> float:
        """Mean power in W of the slot that contains ``seconds`` (0 during an outage)."""
        if seconds <= 0:
            return 0.0
        day, within = divmod(seconds, DAY_SECONDS)
        outage = self.outage(int(day))
        if outage is not None and outage.start <= within < outage.end:
            return 0.0
        slot = min(int(within // SLOT_SECONDS), SLOTS_PER_DAY - 1)
        return self._day(int(day)).energy[channel][slot] * 3600 / SLOT_SECONDS


# --- the meter's mutable state ------------------------------------------------------------


class ControlState(IntEnum):
    """Disconnect control (class 70) control_state."""

    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


# control_mode -> does remote_reconnect connect at once (modes 2 and 4) or only arm the
# manual reconnection (1, 3, 5, 6)? Mode 0: the disconnector is always connected.
# Blue Book 4.5.8 (Disconnect control), state transitions a-h.
_RECONNECTS_DIRECTLY = {1: False, 2: True, 3: False, 4: True, 5: False, 6: False}


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event the meter logged because a client did something (clock set, ...)."""

    when: datetime  # the meter's clock (UTC) as written in the log
    world: datetime  # the world's time it happened
    code: int


class Meter:
    """One simulated meter: the curve, the clock, the disconnector and what happened.

    ``clock`` returns the world's time as an aware UTC datetime. The meter's own clock is
    that time plus ``clock_offset`` (changed by a client's SET of the clock). Physical
    quantities follow world time, so setting the clock never makes an energy register
    run backwards; time stamps (clock, profile rows, events) use the meter's clock.
    """

    def __init__(self, seed: int, clock: Callable[[], datetime], *,
                 std_offset_minutes: int = 60, eu_dst: bool = True) -> None:
        self.seed = seed
        self.curve = HouseholdCurve(seed, std_offset_minutes)
        self.std_offset_minutes = std_offset_minutes
        self.eu_dst = eu_dst
        self._clock = clock
        self.clock_offset = timedelta(0)
        self.control_mode = 4
        self.control_state = ControlState.CONNECTED
        # World-time intervals during which the load was disconnected (end None = ongoing).
        self._off: list[tuple[datetime, datetime | None]] = []
        self.recorded_events: list[RecordedEvent] = []
        #: Head-end events at a real-time pace (event_log.EventPace); None: only the
        #: curve's and the clients' events.
        self.event_pace: EventPace | None = None
        #: The meter's frame counter (0.0.43.1.0.255); the security layer advances it.
        self.invocation_counter = 0
        #: How its date-times look (4.1.6.1): "full" (deviation and clock status),
        #: "local" (deviation not specified, status with the DST bit) or "bare" (neither:
        #: local time only, as some meters send profile time stamps).
        self.time_stamp_style = "full"

    # --- time ---------------------------------------------------------------------

    def world_now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the simulator's clock must return an aware datetime (UTC)")
        return now.astimezone(UTC)

    def now(self) -> datetime:
        """The meter clock, UTC."""
        return self.world_now() + self.clock_offset

    def to_world(self, meter_time: datetime) -> datetime:
        return meter_time - self.clock_offset

    def set_clock(self, meter_time: datetime) -> None:
        """A client set the clock: log events 4 and 5 (old and new time) as IDIS meters do."""
        world = self.world_now()
        self.recorded_events.append(RecordedEvent(world + self.clock_offset, world, 4))
        self.clock_offset = meter_time.astimezone(UTC) - world
        self.recorded_events.append(RecordedEvent(world + self.clock_offset, world, 5))

    @property
    def installed(self) -> datetime:
        """The installation instant (local midnight of 2015-01-01), UTC."""
        return self.curve.origin

    def local_to_utc(self, local: datetime) -> datetime:
        """A naive local time of this meter as UTC (summer time when it applies)."""
        summer = local.replace(tzinfo=UTC) - timedelta(minutes=self.std_offset_minutes + 60)
        if self.eu_dst and _eu_summer(summer):
            return summer
        return local.replace(tzinfo=UTC) - timedelta(minutes=self.std_offset_minutes)

    def utc_offset_minutes(self, when: datetime) -> int:
        """Local time minus UTC at ``when`` (UTC): standard offset, +60 in EU summer time."""
        return self.std_offset_minutes + (60 if self.eu_dst and _eu_summer(when) else 0)

    def clock_status(self, when: datetime) -> ClockStatus:
        """The clock's status at ``when`` (UTC): daylight saving active in summer time
        (Blue Book 4.1.6.1, bit 7), whatever style its date-times are written in."""
        summer = self.utc_offset_minutes(when) != self.std_offset_minutes
        return ClockStatus.DAYLIGHT_SAVING_ACTIVE if summer else ClockStatus(0)

    def cosem_time(self, when: datetime) -> CosemDateTime:
        """``when`` (UTC) as the meter shows it: local time, deviation, DST status bit."""
        offset = self.utc_offset_minutes(when)
        local = when.astimezone(UTC) + timedelta(minutes=offset)
        status = self.clock_status(when)
        style = self.time_stamp_style
        # Blue Book 4.1.6.1: deviation = UTC - local time, in minutes.
        return CosemDateTime(local.year, local.month, local.day, local.isoweekday(),
                             local.hour, local.minute, local.second,
                             local.microsecond // 10_000,
                             -offset if style == "full" else None,
                             None if style == "bare" else int(status))

    # --- energy -------------------------------------------------------------------

    def energy(self, channel: Channel, world: datetime, tariff: Tariff | None = None) -> float:
        """Register content in Wh at world time ``world``, disconnected intervals removed."""
        curve = self.curve
        value = curve.energy(channel, curve.seconds(world), tariff)
        for start, end in self._off:
            if start >= world:
                break
            stop = world if end is None or end > world else end
            value -= (curve.energy(channel, curve.seconds(stop), tariff)
                      - curve.energy(channel, curve.seconds(start), tariff))
        return value

    def reactive_energy(self, channel: Channel, world: datetime) -> float:
        """Reactive energy in varh: Q+ follows A+, Q- follows A- (a fixed power factor)."""
        active = self.energy(channel, world) - self.curve.initial[channel]
        return 50_000.0 * (1 + channel) + self.curve.reactive_ratio[channel] * active

    def connected_at(self, world: datetime) -> bool:
        return not any(start <= world and (end is None or world < end)
                       for start, end in self._off)

    def power(self, channel: Channel, world: datetime) -> float:
        """Instantaneous power in W: the slot's mean power with a per-second ripple."""
        if not self.connected_at(world):
            return 0.0
        curve = self.curve
        seconds = curve.seconds(world)
        ripple = 0.96 + 0.08 * curve.noise(b"ripple-%d" % channel, int(seconds))
        return curve.slot_power(channel, seconds) * ripple

    def voltage(self, phase: int, world: datetime) -> float:
        seconds = int(self.curve.seconds(world))
        daily = 3.0 * math.sin(2 * math.pi * (seconds % DAY_SECONDS) / DAY_SECONDS)
        return 230.0 + daily + 3.0 * (self.curve.noise(b"voltage-%d" % phase, seconds) - 0.5)

    def power_factor(self, phase: int, world: datetime) -> float:
        slot = int(self.curve.seconds(world) // SLOT_SECONDS)
        return 0.90 + 0.09 * self.curve.noise(b"pf-%d" % phase, slot)

    def current(self, phase: int, world: datetime) -> float:
        apparent = (self.power(Channel.IMPORT, world) + self.power(Channel.EXPORT, world)) / \
            self.power_factor(phase, world)
        return self.curve.phase_share[phase] * apparent / self.voltage(phase, world)

    def total_power_factor(self, world: datetime) -> float:
        shares = self.curve.phase_share
        return sum(shares[p] * self.power_factor(p, world) for p in range(3))

    def frequency(self, world: datetime) -> float:
        return 50.0 + 0.06 * (self.curve.noise(b"frequency", int(self.curve.seconds(world)))
                              - 0.5)

    # --- disconnector (Blue Book 4.5.8) ------------------------------------------------

    @property
    def output_state(self) -> bool:
        return self.control_state is ControlState.CONNECTED

    def remote_disconnect(self) -> bool:
        """Transitions b and c; False when the control mode forbids remote disconnection."""
        if self.control_mode == 0:
            return False
        if self.control_state is not ControlState.DISCONNECTED:
            if self.control_state is ControlState.CONNECTED:
                self._off.append((self.world_now(), None))
            self.control_state = ControlState.DISCONNECTED
        return True

    def remote_reconnect(self) -> bool:
        """Transition a (modes 2, 4) or d (modes 1, 3, 5, 6)."""
        if self.control_mode == 0:
            return False
        if self.control_state is ControlState.DISCONNECTED:
            if _RECONNECTS_DIRECTLY[self.control_mode]:
                start, _ = self._off[-1]
                self._off[-1] = (start, self.world_now())
                self.control_state = ControlState.CONNECTED
            else:
                self.control_state = ControlState.READY_FOR_RECONNECTION
        return True


def _last_sunday(year: int, month: int) -> datetime:
    last = datetime(year, month, 31 if month in (3, 10) else 30, 1, tzinfo=UTC)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _eu_summer(when: datetime) -> bool:
    """EU summer time: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC."""
    return _last_sunday(when.year, 3) <= when < _last_sunday(when.year, 10)
