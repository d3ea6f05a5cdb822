"""Hourly statistics from the rows of a load profile: pure arithmetic, no Home Assistant.

A meter's load profile (Blue Book 4.3.6, profile generic) captures cumulative registers
(1.0.1.8.0.255 and peers, value group D = 8 "time integral 1") every 15 minutes. Home
Assistant's long-term statistics want, per hour, the register at the end of the hour
(`state`) and the growth since the series began (`sum`); a chart's hourly change is the
difference of two consecutive `sum`s. `HourlySeries` turns rows, as they come, into
those hours:

- Growth between two rows is `later - earlier`; a register that drops was reset
  (meter exchange, counter wrap): a new cycle starts at zero, its value is growth, and
  `sum` keeps growing, as Home Assistant counts a `total_increasing` sensor.
- The register at an hour boundary is the row at that time, else the straight line
  between the rows on both sides. A boundary with no row after it is not known yet:
  that hour is not written. So hours are written contiguously from the first one on and
  never skip a boundary: a gap never piles its growth onto one hour (a spike).
- A series continues from the last stored hour (its end, `state` and `sum`); rows at or
  before it were counted then and are ignored. Without a stored hour, the first row is
  where `sum` is 0, and the hour ending at the first boundary is written as well, so the
  series has its start after a restart.
- The same rows give the same hours, in any order: a row that arrives late or twice
  rewrites the hours it changes with the values they would have had anyway.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)
# Rows kept in memory per series (four days of 15-minute rows); older ones are folded
# into the series' fixed start, and a row older than that is then ignored.
MAX_ROWS = 400
# Statistics keep this many decimals (mWh for a kWh series): enough for a meter's
# resolution, without the float noise of Wh / 1000 and of interpolation.
DECIMALS = 6


@dataclass(frozen=True, slots=True)
class HourStat:
    """One hour of the series: `start` (UTC), register at its end, growth since the start."""

    start: datetime
    state: float
    sum: float


@dataclass(frozen=True, slots=True)
class _Point:
    ts: datetime
    value: float
    cumulative: float  # the series' `sum` at ts


def hour_floor(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _growth(earlier: float, later: float) -> tuple[float, float]:
    """(growth, value the growth starts from) between two readings of a register."""
    if later >= earlier:
        return later - earlier, earlier
    return later, 0.0  # reset: a new cycle from zero


class HourlySeries:
    """The hours of one register, fed row by row."""

    def __init__(self) -> None:
        self._times: list[datetime] = []
        self._values: list[float] = []
        self._cumulative: list[float] = []
        # The first point is fixed (a stored hour, or rows folded away): rows at or
        # before it are ignored. A loose first point is the first row seen, sum 0.
        self._fixed = False
        self._written: dict[datetime, HourStat] = {}

    @property
    def empty(self) -> bool:
        return not self._times

    def continue_from(self, last: HourStat) -> None:
        """Continue after `last`, the newest hour stored (call before any row)."""
        if self._times:
            raise RuntimeError("continue_from must come before the first row")
        end = last.start + HOUR
        self._times, self._values, self._cumulative = [end], [last.state], [last.sum]
        self._fixed = True
        self._written[last.start] = last

    def add(self, ts: datetime, value: float) -> list[HourStat]:
        """Take one row; return the hours to (re)write, oldest first (often none)."""
        ts = ts.astimezone(UTC)
        times = self._times
        if self._fixed and ts <= times[0]:
            return []
        index = bisect.bisect_left(times, ts)
        if index < len(times) and times[index] == ts:
            if self._values[index] == value:
                return []  # the same row again (QoS 1 may deliver twice)
            self._values[index] = value  # a corrected row: recount from here
        else:
            times.insert(index, ts)
            self._values.insert(index, value)
            self._cumulative.insert(index, 0.0)
        self._recount(index)
        hours = self._hours_after(times[index - 1] if index > 0 else None)
        self._fold()
        return hours

    def _recount(self, index: int) -> None:
        start = max(index, 1)
        if index == 0:
            self._cumulative[0] = 0.0  # a new first row: the loose start moved
        for i in range(start, len(self._times)):
            growth, _base = _growth(self._values[i - 1], self._values[i])
            self._cumulative[i] = self._cumulative[i - 1] + growth

    def _at(self, boundary: datetime) -> tuple[float, float] | None:
        """(register, sum) at `boundary`: its row, else between the rows around it."""
        times = self._times
        index = bisect.bisect_left(times, boundary)
        if index < len(times) and times[index] == boundary:
            return self._values[index], self._cumulative[index]
        if index == 0 or index == len(times):
            return None  # not bounded on both sides: unknown
        before, after = index - 1, index
        growth, base = _growth(self._values[before], self._values[after])
        fraction = (boundary - times[before]) / (times[after] - times[before])
        return base + growth * fraction, self._cumulative[before] + growth * fraction

    def _hours_after(self, earliest_changed: datetime | None) -> list[HourStat]:
        """Hours ending at boundaries after `earliest_changed` (None: all) that changed."""
        times = self._times
        first = hour_floor(times[0])
        if first < times[0]:
            first += HOUR
        if self._fixed and first == times[0]:
            first += HOUR  # the hour ending at the fixed start is stored already
        if earliest_changed is not None:
            first = max(first, hour_floor(earliest_changed) + HOUR)
        changed: list[HourStat] = []
        boundary = first
        while boundary <= times[-1]:
            known = self._at(boundary)
            if known is None:
                break
            hour = HourStat(boundary - HOUR, round(known[0], DECIMALS), round(known[1], DECIMALS))
            if self._written.get(hour.start) != hour:
                self._written[hour.start] = hour
                changed.append(hour)
            boundary += HOUR
        return changed

    def _fold(self) -> None:
        """Keep at most MAX_ROWS rows; the oldest kept one becomes the fixed start."""
        excess = len(self._times) - MAX_ROWS
        if excess <= 0:
            return
        del self._times[:excess], self._values[:excess], self._cumulative[:excess]
        self._fixed = True
        horizon = hour_floor(self._times[0]) - HOUR
        for start in [start for start in self._written if start < horizon]:
            del self._written[start]
