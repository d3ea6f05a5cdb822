"""Time and findings of a profile read: time zones, placing time stamps, the report.

A profile generic buffer (Blue Book 4.3.6) is read as absolute times. Time stamps with a
deviation (4.1.6.1) are exact; one without deviation is the meter's local time, placed
with the meter's zone (:func:`zone_named`; the host's by default) and the clock status'
daylight-saving bit when there is one, else by the order of the rows. Whatever needed a
guess, and whatever is odd about the rows (gaps, duplicates, rows with a clock flagged
invalid or doubtful, DST changes), is collected into a :class:`ProfileReport`: rows are
never moved to hide it.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from edge_agent.dlms.encoding.date_time import ClockStatus, CosemDateTime
from edge_agent.dlms.errors import ConfigError


def host_zone() -> dt.tzinfo:
    """The host's time zone with its DST rules (TZ, else /etc/localtime, else UTC)."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as file:
            return zoneinfo.ZoneInfo.from_file(file, key="localtime")
    except OSError:
        return dt.UTC


def zone_named(name: str | None) -> dt.tzinfo:
    """An IANA zone by name (``Europe/Vienna``), or the host's for None."""
    if not name:
        return host_zone()
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}: expected an IANA name such as "
                          "Europe/Vienna or UTC") from None


@dataclass(frozen=True, slots=True)
class Gap:
    """Rows missing between two rows of a periodic profile (power failure, reset, ...)."""

    after: dt.datetime
    before: dt.datetime
    missing: int

    def as_json(self) -> dict[str, Any]:
        return {"after": _utc(self.after), "before": _utc(self.before), "missing": self.missing}


# Report field -> (what a line calls it, what it means and what was done).
FINDINGS: dict[str, tuple[str, str]] = {
    "duplicates": ("duplicate", "identical rows sent twice; one kept"),
    "conflicts": ("conflict", ("two rows with one time stamp and other values, or a row "
                               "older than one already given; the first kept")),
    "invalid": ("clock invalid", "the meter flagged these time stamps invalid"),
    "doubtful": ("clock doubtful", "the meter flagged these time stamps doubtful"),
    "dst_changes": ("daylight saving", "the UTC offset changes here"),
    "repeated_hour": ("repeated hour", ("local times without deviation met twice (autumn); "
                                        "placed by the DST bit or the order")),
    "skipped_hour": ("skipped hour", ("local times without deviation that do not exist in "
                                      "the time zone (spring), taken as standard time; "
                                      "check the meter's time zone and DST setting")),
}


@dataclass(frozen=True, slots=True)
class ProfileReport:
    """What was odd about the rows read, each with the time stamps concerned (UTC)."""

    profile: str
    mode: str
    rows: int
    requests: int
    gaps: tuple[Gap, ...] = ()
    duplicates: tuple[dt.datetime, ...] = ()  # identical copies, dropped
    conflicts: tuple[dt.datetime, ...] = ()  # same time, other values: the first kept
    invalid: tuple[dt.datetime, ...] = ()  # clock status invalid-value
    doubtful: tuple[dt.datetime, ...] = ()  # clock status doubtful-value
    dst_changes: tuple[dt.datetime, ...] = ()  # first row after a change of UTC offset
    repeated_hour: tuple[dt.datetime, ...] = ()  # local times without deviation, met twice
    skipped_hour: tuple[dt.datetime, ...] = ()  # local times without deviation that do not exist

    @property
    def missing(self) -> int:
        return sum(g.missing for g in self.gaps)

    def lines(self) -> list[str]:
        """One line per finding, for people (the CLI prints them to stderr)."""
        def some(stamps: tuple[dt.datetime, ...]) -> str:
            shown = ", ".join(_utc(s) for s in stamps[:3])
            return shown + (f" and {len(stamps) - 3} more" if len(stamps) > 3 else "")

        out = []
        for gap in self.gaps:
            out.append(f"gap: {gap.missing} row(s) missing between {_utc(gap.after)} and "
                       f"{_utc(gap.before)} (the meter captured nothing: power failure, "
                       "reset or clock change)")
        for name, (what, meaning) in FINDINGS.items():
            stamps = getattr(self, name)
            if stamps:
                out.append(f"{what}: {len(stamps)} row(s) at {some(stamps)}: {meaning}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "mode": self.mode, "rows": self.rows,
                "requests": self.requests, "missing": self.missing,
                "gaps": [g.as_json() for g in self.gaps],
                **{name: [_utc(s) for s in getattr(self, name)] for name in FINDINGS}}


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Findings:
    """The report while rows come in (one per read)."""

    gaps: list[Gap] = field(default_factory=list)
    duplicates: list[dt.datetime] = field(default_factory=list)
    conflicts: list[dt.datetime] = field(default_factory=list)
    invalid: list[dt.datetime] = field(default_factory=list)
    doubtful: list[dt.datetime] = field(default_factory=list)
    dst_changes: list[dt.datetime] = field(default_factory=list)
    repeated_hour: list[dt.datetime] = field(default_factory=list)
    skipped_hour: list[dt.datetime] = field(default_factory=list)

    def freeze(self, profile: str, mode: str, rows: int, requests: int,
               low: dt.datetime, high: dt.datetime) -> ProfileReport:
        """The report of the rows in [low, high) (rows read around the range, as a whole
        buffer or an entry chunk brings them, are not reported)."""
        def inside(stamps: list[Any]) -> tuple[Any, ...]:
            return tuple(s for s in stamps if isinstance(s, Gap)
                         or low <= s.astimezone(dt.UTC) < high)

        return ProfileReport(profile, mode, rows, requests, inside(self.gaps),
                             **{name: inside(getattr(self, name)) for name in FINDINGS})


def localize(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """A bound without offset as an aware time of ``zone`` (the earlier of a repeated hour)."""
    if moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)


class Placer:
    """Time stamps to absolute times, recording what needed a guess (module docstring)."""

    def __init__(self, zone: dt.tzinfo, findings: Findings) -> None:
        self.zone = zone
        self.findings = findings
        self.previous: dt.datetime | None = None
        self.previous_offset: dt.timedelta | None = None

    def place(self, stamp: CosemDateTime) -> dt.datetime:
        moment = stamp.to_datetime()
        status = stamp.status
        if moment.tzinfo is None:
            moment = self._local(moment, status)
        offset = moment.utcoffset()
        if self.previous_offset is not None and offset != self.previous_offset:
            self.findings.dst_changes.append(moment)
        self.previous_offset = offset
        if status is not None:
            if status & ClockStatus.INVALID_VALUE:
                self.findings.invalid.append(moment)
            elif status & ClockStatus.DOUBTFUL_VALUE:
                self.findings.doubtful.append(moment)
        self.previous = moment.astimezone(dt.UTC)
        return moment

    def _local(self, wall: dt.datetime, status: int | None) -> dt.datetime:
        first = wall.replace(tzinfo=self.zone, fold=0)
        second = wall.replace(tzinfo=self.zone, fold=1)
        back = first.astimezone(dt.UTC).astimezone(self.zone).replace(tzinfo=None)
        if back != wall:
            # The hour the clocks skip (spring): no such local time. Taken as the
            # standard time a meter that has not switched yet means, and reported.
            self.findings.skipped_hour.append(first)
            return first
        if first.utcoffset() == second.utcoffset():
            return first
        # The repeated hour (autumn): the DST bit says which pass, else the order.
        if status is not None and not status & ClockStatus.INVALID_CLOCK_STATUS:
            chosen = first if status & ClockStatus.DAYLIGHT_SAVING_ACTIVE else second
        elif self.previous is not None and \
                first.astimezone(dt.UTC) <= self.previous < second.astimezone(dt.UTC):
            chosen = second
        else:
            chosen = first
        self.findings.repeated_hour.append(chosen)
        return chosen



__all__ = ["Findings", "Gap", "Placer", "ProfileReport", "host_zone", "localize", "zone_named"]
