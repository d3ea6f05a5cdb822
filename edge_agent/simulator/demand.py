"""The maximum demand register (1.0.1.6.0.255, class 4 extended register, Blue Book 4.3.4).

Demand is the average import power of one 15-minute period, the load profile's capture
period: the energy the import register (1.0.1.8.0.255) gained in it, times four. The
register holds the largest demand of the current billing period -- the calendar month in
the meter's local time, as power-based grid tariffs bill it -- and ``capture_time``
(attribute 5) the end of the period that set it, on the meter's clock. Before the first
period of a month ends, the value is 0 and the capture time "not specified".

The maximum over a month of periods is kept and extended period by period, so a poll
every few seconds costs the new periods only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from edge_agent.dlms.cosem.units import ScalerUnit, unit_code
from edge_agent.dlms.encoding.axdr import DoubleLongUnsigned, OctetString, Unsigned
from edge_agent.dlms.encoding.date_time import CosemDateTime
from edge_agent.simulator.model import SLOT_SECONDS, Channel, Meter
from edge_agent.simulator.objects import Attribute, CosemObject, Request

MAXIMUM_DEMAND_LN = bytes((1, 0, 1, 6, 0, 255))
PERIOD = timedelta(seconds=SLOT_SECONDS)
PERIODS_PER_HOUR = 3600 // SLOT_SECONDS


@dataclass(frozen=True, slots=True)
class Peak:
    """The largest demand (W) of a billing period so far and the end of its period."""

    month_start: datetime  # meter clock, UTC
    scanned_to: datetime  # end of the last period looked at (meter clock, UTC)
    watts: float
    at: datetime | None


class MaximumDemand:
    """The register's state over one meter: its peak, extended as periods end."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._peak: Peak | None = None

    def month_start(self, meter_now: datetime) -> datetime:
        """The start of the calendar month (meter local time) that holds ``meter_now``."""
        meter = self.meter
        local = meter_now + timedelta(minutes=meter.utc_offset_minutes(meter_now))
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        return meter.local_to_utc(first)

    def peak(self, meter_now: datetime) -> Peak:
        meter = self.meter
        start = self.month_start(meter_now)
        installed = meter.installed
        last_end = installed + (meter_now - installed) // PERIOD * PERIOD
        peak = self._peak
        if peak is None or peak.month_start != start or peak.scanned_to > last_end:
            peak = Peak(start, start, 0.0, None)
        end = max(peak.scanned_to, installed) + PERIOD
        watts, at = peak.watts, peak.at
        while end <= last_end:
            world_end = meter.to_world(end)
            gained = (meter.energy(Channel.IMPORT, world_end)
                      - meter.energy(Channel.IMPORT, world_end - PERIOD))
            if gained * PERIODS_PER_HOUR > watts:
                watts, at = gained * PERIODS_PER_HOUR, end
            end += PERIOD
        self._peak = peak = Peak(start, max(last_end, peak.scanned_to), watts, at)
        return peak

    def cosem_object(self) -> CosemObject:
        """Extended register (class 4, version 0): value, scaler_unit, status,
        capture_time."""
        meter = self.meter

        def capture_time(request: Request) -> OctetString:
            at = self.peak(request.meter_now).at
            if at is None:
                return OctetString(CosemDateTime().encode())  # not specified: none yet
            return OctetString(meter.cosem_time(at).encode())

        return CosemObject(4, 0, MAXIMUM_DEMAND_LN, {
            2: Attribute(get=lambda r: DoubleLongUnsigned(round(self.peak(r.meter_now).watts))),
            3: Attribute(get=lambda r: ScalerUnit(0, unit_code("W")).to_axdr()),
            4: Attribute(get=lambda r: Unsigned(0)),
            5: Attribute(get=capture_time),
        })


__all__ = ["MAXIMUM_DEMAND_LN", "MaximumDemand", "Peak"]
