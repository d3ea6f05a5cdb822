"""The power failure event log as DSMR meters keep it (1.0.99.97.0.255, profile generic).

DSMR 5.0.2 (P1 companion standard, "Power failure event log"): one row per long power
failure -- one longer than the long power failure threshold, 180 s by default -- with the
time the power came back (the clock, meter time) and the failure's duration in seconds
(0.0.96.7.19.255, register, attribute 2). The log keeps the last :data:`CAPACITY`
failures. No event code: the rows are failures by construction.

The failures are the household curve's outages (the ones that also take energy out of
the load profile and put power down / power up into the standard event log), so a new
row appears whenever the simulated time passes the end of a long outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from edge_agent.dlms.encoding.axdr import DoubleLongUnsigned, OctetString
from edge_agent.simulator.event_log import clock_offset_at
from edge_agent.simulator.loadprofile import (
    CLOCK_CAPTURE,
    CaptureObject,
    Column,
    EntrySource,
    ProfileBuffer,
)
from edge_agent.simulator.model import DAY_SECONDS, Meter
from edge_agent.simulator.objects import CosemObject, Request

POWER_FAILURE_LOG_LN = bytes((1, 0, 99, 97, 0, 255))
DURATION_LN = bytes((0, 0, 96, 7, 19, 255))
CAPACITY = 10
LONG_POWER_FAILURE_THRESHOLD = 180  # seconds (DSMR 5.0.2 default, 0-0:96.7.20 ... setting)


@dataclass(frozen=True, slots=True)
class Failure:
    ended: datetime  # meter clock, UTC: when the power came back
    seconds: int
    world: datetime  # world time the power came back: the log's entry order


class PowerFailureSource(EntrySource):
    """The last ``capacity`` long power failures up to now, oldest first."""

    def __init__(self, meter: Meter, capacity: int = CAPACITY) -> None:
        self.meter = meter
        self.capacity = capacity
        self.cleared_at: datetime | None = None  # world time of the last reset

    def entries(self, request: Request) -> list[Failure]:
        meter = self.meter
        curve = meter.curve
        now = curve.seconds(request.world_now)
        floor = 0.0 if self.cleared_at is None else curve.seconds(self.cleared_at)
        found: list[Failure] = []
        day = int(now // DAY_SECONDS)
        while day >= 0 and day * DAY_SECONDS + DAY_SECONDS > floor \
                and len(found) < self.capacity:
            outage = curve.outage(day)
            if outage is not None and outage.duration > LONG_POWER_FAILURE_THRESHOLD:
                end = day * DAY_SECONDS + outage.end
                if floor < end <= now:
                    world = curve.origin + timedelta(seconds=end)
                    found.append(Failure(world + clock_offset_at(meter, world),
                                         int(outage.duration), world))
            day -= 1
        return sorted(found, key=lambda f: f.world)

    def time_of(self, entry: Failure) -> datetime:
        return entry.ended

    def reset(self, request: Request) -> None:
        self.cleared_at = request.world_now


def power_failure_log(meter: Meter) -> CosemObject:
    """The log (class 7): clock and duration per long power failure."""
    source = PowerFailureSource(meter)
    buffer = ProfileBuffer(source, (
        Column(CLOCK_CAPTURE, lambda f, r: OctetString(meter.cosem_time(f.ended).encode())),
        Column(CaptureObject(3, DURATION_LN, 2), lambda f, r: DoubleLongUnsigned(f.seconds)),
    ), capture_period=0, profile_entries=CAPACITY, local_to_utc=meter.local_to_utc)
    return buffer.cosem_object(POWER_FAILURE_LOG_LN, source.reset)


__all__ = ["CAPACITY", "POWER_FAILURE_LOG_LN", "PowerFailureSource", "power_failure_log"]
